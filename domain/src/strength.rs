//! Relationship strength: a score from 0 to 100 and a band, explained by
//! named components. Integer arithmetic throughout (see `decay`), so the
//! same ledger and policy give the same score on every machine.
//! docs/scoring.md explains the formula, with worked examples.

use crate::decay::{ONE, half_life_millis, weight_q16};
use crate::policy::Scoring;
use crate::relationship::Relationship;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Band {
    Lost,
    Cold,
    Cool,
    Warm,
    Strong,
}

impl Band {
    pub const fn as_str(self) -> &'static str {
        match self {
            Band::Strong => "STRONG",
            Band::Warm => "WARM",
            Band::Cool => "COOL",
            Band::Cold => "COLD",
            Band::Lost => "LOST",
        }
    }
}

/// One named part of the score; penalties are negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreComponent {
    pub name: &'static str,
    pub points: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strength {
    pub score: u8,
    pub band: Band,
    pub components: [ScoreComponent; 8],
    pub at: Timestamp,
}

fn scaled(points: u8, fraction_q16: u64) -> i32 {
    ((u64::from(points) * fraction_q16.min(ONE)) >> 16) as i32
}

fn penalty(points_each_q16: u64, cap: u8) -> i32 {
    -((points_each_q16 >> 16).min(u64::from(cap)) as i32)
}

/// The score of `relationship` at `at` under `scoring`.
pub fn strength(relationship: &Relationship, scoring: &Scoring, at: Timestamp) -> Strength {
    let recency = relationship.last_reply_at().map_or(0, |last| {
        let elapsed = at.as_millis().saturating_sub(last.as_millis());
        scaled(
            scoring.recency_points,
            weight_q16(elapsed, half_life_millis(scoring.recency_half_life_secs)),
        )
    });

    let (replies, touches) = (
        u64::from(relationship.replies_total()),
        u64::from(relationship.touches_total()),
    );
    let reciprocity = match (replies, touches) {
        (0, _) => 0,
        // They wrote before we ever did: fully reciprocal.
        (_, 0) => i32::from(scoring.reciprocity_points),
        (replies, touches) => scaled(scoring.reciprocity_points, (replies.min(touches) << 16) / touches),
    };

    let recent_replies = relationship
        .replies()
        .value_q16(at, half_life_millis(scoring.reply_half_life_secs));
    let frequency = scaled(
        scoring.frequency_points,
        (recent_replies << 16) / (recent_replies + u64::from(scoring.frequency_half_replies) * ONE),
    );

    let (mass, one_to_one) = relationship.unanswered_streak();
    let streak = u64::from(mass) + u64::from(one_to_one);
    let unanswered = penalty(
        streak.saturating_sub(1) * u64::from(scoring.unanswered_penalty_points) * ONE,
        scoring.unanswered_penalty_max,
    );

    let recent_mass = relationship
        .mass_touches()
        .value_q16(at, half_life_millis(scoring.mass_half_life_secs));
    let fatigue = penalty(
        recent_mass.saturating_sub(u64::from(scoring.mass_fatigue_free) * ONE) * u64::from(scoring.mass_fatigue_points),
        scoring.mass_fatigue_max,
    );

    let recent_complaints = relationship
        .complaints()
        .value_q16(at, half_life_millis(scoring.complaint_half_life_secs));
    let complaints = penalty(
        recent_complaints * u64::from(scoring.complaint_penalty_points),
        scoring.complaint_penalty_max,
    );

    let groups = relationship.group_signals();
    let recent_speech = groups.map_or(0, |groups| {
        groups
            .speech
            .value_q16(at, half_life_millis(scoring.reply_half_life_secs))
    });
    let group_speech = scaled(
        scoring.group_speech_points,
        (recent_speech << 16) / (recent_speech + u64::from(scoring.frequency_half_replies) * ONE),
    );
    let recent_leaves = groups.map_or(0, |groups| {
        groups
            .leaves_after_posts
            .value_q16(at, half_life_millis(scoring.complaint_half_life_secs))
    });
    let group_leaves = penalty(
        recent_leaves * u64::from(scoring.group_leave_penalty_points),
        scoring.group_leave_penalty_max,
    );

    let components = [
        ScoreComponent {
            name: "replyRecency",
            points: recency,
        },
        ScoreComponent {
            name: "reciprocity",
            points: reciprocity,
        },
        ScoreComponent {
            name: "twoWayFrequency",
            points: frequency,
        },
        ScoreComponent {
            name: "unansweredStreak",
            points: unanswered,
        },
        ScoreComponent {
            name: "massFatigue",
            points: fatigue,
        },
        ScoreComponent {
            name: "complaints",
            points: complaints,
        },
        ScoreComponent {
            name: "groupSpeech",
            points: group_speech,
        },
        ScoreComponent {
            name: "groupLeaves",
            points: group_leaves,
        },
    ];
    let total: i32 = components.iter().map(|component| component.points).sum();
    let score = total.clamp(0, 100) as u8;
    Strength {
        score,
        band: band(relationship, scoring, score),
        components,
        at,
    }
}

fn band(relationship: &Relationship, scoring: &Scoring, score: u8) -> Band {
    if relationship.deleted_us() || relationship.is_blocked_on(relationship.primary_channel()) {
        Band::Lost
    } else if score >= scoring.strong_min {
        Band::Strong
    } else if score >= scoring.warm_min {
        Band::Warm
    } else if score >= scoring.cool_min {
        Band::Cool
    } else {
        Band::Cold
    }
}
