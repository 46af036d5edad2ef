//! The group gate's figures: decisions per second on one core beside the
//! health figures alone (which every decision computes too), and the
//! memory a group's fold holds.

use std::time::Instant;

use rapport_domain::group::{Group, gate};
use rapport_domain::policy::GroupRules;
use rapport_domain::{
    Event, GroupCreated, GroupMemberJoined, GroupMemberLeft, GroupMemberSpoke, GroupPostRecorded, PostKind, Timestamp,
    TouchAuthorization,
};

use crate::figure::Figure;

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;
/// Members of each synthetic group: a full WeChat group.
const MEMBERS: usize = 500;
/// A month of history: five posts and forty speeches a day, a leave every
/// third day.
const HISTORY_DAYS: i64 = 31;

/// `groups` groups, half of them new: each a month of posts, speech and leaves.
fn synthetic(groups: usize, now: Timestamp) -> Vec<Group> {
    let zone = chrono_tz::Asia::Shanghai;
    let mut rng = fastrand::Rng::with_seed(7);
    (0..groups)
        .map(|n| {
            let mut group = Group::default();
            let mut version = 0;
            let mut apply = |group: &mut Group, at: i64, event: Event| {
                group.apply(&event, version, Timestamp::from_millis_unchecked(at), zone);
                version += 1;
            };
            let start = now.as_millis() - HISTORY_DAYS * DAY;
            let created = if n % 2 == 0 {
                start - 60 * DAY
            } else {
                now.as_millis() - 10 * DAY
            };
            let created_event = GroupCreated {
                name: format!("group {n}"),
                owner: "alice".to_owned(),
                kind: "customers".to_owned(),
                time_zone: Some("Asia/Shanghai".to_owned()),
            };
            apply(&mut group, created, created_event.into());
            for member in 0..MEMBERS {
                let joined = GroupMemberJoined {
                    member: format!("member-{member:04}"),
                    contact_id: None,
                };
                apply(&mut group, created + member as i64 * MINUTE, joined.into());
            }
            for day in 0..HISTORY_DAYS {
                let midnight = start.max(created) + day * DAY;
                for post in 0..5 {
                    let kind = [PostKind::Content, PostKind::Content, PostKind::Interaction][post % 3];
                    let kind = if post == 4 && day % 3 == 0 {
                        PostKind::Promotion
                    } else {
                        kind
                    };
                    let posted = GroupPostRecorded {
                        kind,
                        sender: "robot".to_owned(),
                        authorization: TouchAuthorization::External {
                            source: "robot".to_owned(),
                        },
                    };
                    apply(
                        &mut group,
                        midnight + (post as i64 * 3 + 1) * 60 * MINUTE,
                        posted.into(),
                    );
                }
                for _ in 0..40 {
                    let spoke = GroupMemberSpoke {
                        member: format!("member-{:04}", rng.usize(0..MEMBERS)),
                    };
                    apply(&mut group, midnight + rng.i64(0..DAY), spoke.into());
                }
                if day % 3 == 0 {
                    let left = GroupMemberLeft {
                        member: format!("member-{:04}", MEMBERS - 1 - day as usize),
                    };
                    apply(&mut group, midnight + 20 * 60 * MINUTE, left.into());
                }
            }
            group
        })
        .collect()
}

/// Group gate decisions on one thread over `groups` synthetic groups,
/// beside the health figures alone; and the fold's memory per group.
pub fn group_gate(groups: usize, decisions: usize) -> Vec<Figure> {
    let now = Timestamp::from_millis_unchecked(1_795_230_000_000);
    let heap_before = crate::heap_bytes();
    let rss_before = crate::raw::anonymous_rss();
    let folded = synthetic(groups.max(1), now);
    let heap_after = crate::heap_bytes();
    let rss_after = crate::raw::anonymous_rss();
    let (bytes, how) = match (heap_before, heap_after, rss_before, rss_after) {
        (Some(before), Some(after), _, _) => (after.saturating_sub(before) as f64, "live heap"),
        (_, _, Some(before), Some(after)) => (
            after.saturating_sub(before) as f64,
            "anonymous RSS growth (build with --features heap-accounting for the live heap)",
        ),
        _ => (f64::NAN, "not reported by this system"),
    };
    let rules = GroupRules::default();
    let zone = chrono_tz::Asia::Shanghai;
    let moment = |i: usize| now.plus_millis((i as i64 % 1_440) * MINUTE);
    let started = Instant::now();
    let mut allowed = 0usize;
    for i in 0..decisions {
        let kind = PostKind::ALL[i % 3];
        let decision = gate(&folded[i % folded.len()], &rules, 1, zone, kind, moment(i));
        allowed += usize::from(std::hint::black_box(decision).allowed());
    }
    let rate = decisions as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..decisions {
        std::hint::black_box(folded[i % folded.len()].health(&rules, zone, moment(i)));
    }
    let health_rate = decisions as f64 / started.elapsed().as_secs_f64();
    vec![
        Figure::new(
            "group_gate_decisions",
            "group gate decision in process, one core",
            rate,
            "decisions/s",
        )
        .beside("the health figures alone", health_rate)
        .note(format!(
            "{decisions} decisions over {} groups of {MEMBERS} members and a month of posts, speech and leaves; {:.1} % allowed",
            folded.len(),
            allowed as f64 * 100.0 / decisions.max(1) as f64
        )),
        Figure::new(
            "group_memory",
            "group health projection memory",
            bytes / folded.len() as f64,
            "B/group",
        )
        .note(format!(
            "{how} while folding {} groups of {MEMBERS} members ({:.0} B a member)",
            folded.len(),
            bytes / (folded.len() * MEMBERS) as f64
        )),
    ]
}
