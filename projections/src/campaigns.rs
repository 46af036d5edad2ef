//! The aftermath of every campaign: within a window after each contact's
//! touch (or holdout mark), who replied, deleted us, blocked us, complained
//! or opted out, for the contacts sent to and, apart, for the holdout, and
//! who deleted or blocked us with their score and band before the send.
//! A fold like the rest: rebuilding gives the same numbers.

use std::collections::HashMap;

use rapport_domain::event::ResolvedAudience;
use rapport_domain::policy::CampaignRules;
use rapport_domain::{Band, CampaignId, Channel, ContactId, Event, Position, RecordedEvent, SendMode, Timestamp};
/// Campaigns a contact is followed in at once: the most recent ones (the
/// window of an older one has long closed).
const PARTICIPATIONS_PER_CONTACT_MAX: usize = 8;

/// What contacts did after a campaign, each counted once per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcomes {
    /// Contacts in the group.
    pub contacts: u32,
    pub replied: u32,
    pub deleted_us: u32,
    pub blocked: u32,
    pub complained: u32,
    pub opted_out: u32,
    /// Contacts who deleted or blocked us (once, if they did both).
    pub lost: u32,
    /// Delivery outcomes the sending tool reported for this campaign.
    pub failed: u32,
    pub read: u32,
    pub clicked: u32,
}

/// A contact of a campaign's groups, as a resumed launch needs to know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub contact_id: ContactId,
    pub held_out: bool,
    /// Deleted or blocked us, opted out or complained since the send.
    pub turned_away: bool,
}

/// What happened to someone after a campaign that cost the relationship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Loss {
    DeletedUs,
    Blocked,
}

/// A contact lost after a campaign, as they stood before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lost {
    pub contact_id: ContactId,
    pub loss: Loss,
    pub at: Timestamp,
    pub held_out: bool,
    pub score_before: u8,
    pub band_before: Band,
}

/// The aftermath rules a campaign is judged by: the policy's in force
/// when it started (the defaults for a campaign the ledger never started).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AftermathRules {
    pub window_millis: i64,
    pub failed_alert_percent: u8,
    pub complaint_alert_percent: u8,
    pub loss_alert_percent: u8,
}

impl From<&CampaignRules> for AftermathRules {
    fn from(rules: &CampaignRules) -> Self {
        AftermathRules {
            window_millis: i64::try_from(rules.aftermath_window_secs.saturating_mul(1_000)).unwrap_or(i64::MAX),
            failed_alert_percent: rules.failed_delivery_alert_percent,
            complaint_alert_percent: rules.complaint_alert_percent,
            loss_alert_percent: rules.loss_alert_percent,
        }
    }
}

impl Default for AftermathRules {
    fn default() -> Self {
        AftermathRules::from(&CampaignRules::default())
    }
}

/// What one member of a campaign did after it, as flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Did(u16);

impl Did {
    pub const REPLIED: Did = Did(1);
    pub const DELETED_US: Did = Did(2);
    pub const BLOCKED: Did = Did(4);
    pub const COMPLAINED: Did = Did(8);
    pub const OPTED_OUT: Did = Did(16);
    /// Deleted or blocked us: the relationship the send may have cost.
    pub const LOST: Did = Did(32);
    pub const FAILED: Did = Did(64);
    pub const READ: Did = Did(128);
    pub const CLICKED: Did = Did(256);

    pub fn has(self, what: Did) -> bool {
        self.0 & what.0 != 0
    }

    fn with(self, what: Did) -> Did {
        Did(self.0 | what.0)
    }
}

/// A member's part: which group, and what they did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct MemberState {
    held_out: bool,
    did: Did,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CampaignRecord {
    pub id: CampaignId,
    /// Absent when touches name a campaign whose start the ledger lacks.
    pub name: Option<String>,
    pub mode: SendMode,
    pub channel: Option<Channel>,
    pub started_at: Option<Timestamp>,
    pub started_position: Option<Position>,
    pub holdout_percent: u8,
    /// What the gate made of the audience at launch; absent for campaigns
    /// other tools sent.
    pub at_launch: Option<ResolvedAudience>,
    pub sent: Outcomes,
    pub holdout: Outcomes,
    pub rules: AftermathRules,
    /// In the order the ledger learned of them.
    pub lost: Vec<Lost>,
}

/// One contact's part in a campaign whose window may still be open: when
/// it was touched (or held out), and how they stood just before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Participation {
    campaign: u32,
    at: Timestamp,
    held_out: bool,
    /// Score and band just before the send, for whoever is lost after it.
    score_before: u8,
    band_before: Band,
}

/// Every campaign's aftermath, as the ledger has it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Campaigns {
    records: Vec<CampaignRecord>,
    /// Per record, every contact in its groups.
    members: Vec<HashMap<ContactId, MemberState>>,
    index: HashMap<CampaignId, u32>,
    participations: HashMap<ContactId, Vec<Participation>>,
}

/// A member as a report counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberOutcome {
    pub contact_id: ContactId,
    pub held_out: bool,
    pub did: Did,
}

impl Campaigns {
    /// Whether every index points where the fold relies on it pointing:
    /// what a snapshot's campaigns must pass before they are used.
    pub fn is_consistent(&self) -> bool {
        let records = self.records.len();
        self.members.len() == records
            && self.index.len() == records
            && self
                .index
                .iter()
                .all(|(id, at)| self.records.get(*at as usize).is_some_and(|record| record.id == *id))
            && self
                .participations
                .values()
                .flatten()
                .all(|part| (part.campaign as usize) < records)
    }

    fn record(&mut self, id: CampaignId) -> u32 {
        if let Some(index) = self.index.get(&id) {
            return *index;
        }
        let index = u32::try_from(self.records.len()).unwrap_or(u32::MAX);
        self.records.push(CampaignRecord {
            id,
            name: None,
            mode: SendMode::Mass,
            channel: None,
            started_at: None,
            started_position: None,
            holdout_percent: 0,
            at_launch: None,
            sent: Outcomes::default(),
            holdout: Outcomes::default(),
            rules: AftermathRules::default(),
            lost: Vec::new(),
        });
        self.members.push(HashMap::new());
        self.index.insert(id, index);
        index
    }

    pub fn all(&self) -> &[CampaignRecord] {
        &self.records
    }

    pub fn get(&self, id: CampaignId) -> Option<&CampaignRecord> {
        self.index.get(&id).map(|index| &self.records[*index as usize])
    }

    /// The contacts in campaign `id`'s groups, in id order: whether each
    /// was held out, and whether they have deleted or blocked us, opted
    /// out or complained since (within the window).
    pub fn members(&self, id: CampaignId) -> Vec<Member> {
        let Some(campaign) = self.index.get(&id).copied() else {
            return Vec::new();
        };
        let mut members: Vec<Member> = self.members[campaign as usize]
            .iter()
            .map(|(contact_id, state)| Member {
                contact_id: *contact_id,
                held_out: state.held_out,
                turned_away: state.did.has(Did::LOST)
                    || state.did.has(Did::OPTED_OUT)
                    || state.did.has(Did::COMPLAINED),
            })
            .collect();
        members.sort_unstable_by_key(|member| member.contact_id);
        members
    }

    /// Every member of campaign `id` and what they did, in no order.
    pub fn member_outcomes(&self, id: CampaignId) -> impl Iterator<Item = MemberOutcome> + '_ {
        self.index
            .get(&id)
            .map(|campaign| &self.members[*campaign as usize])
            .into_iter()
            .flatten()
            .map(|(contact_id, state)| MemberOutcome {
                contact_id: *contact_id,
                held_out: state.held_out,
                did: state.did,
            })
    }

    /// Folds a campaign's start, judged by `rules` (the policy's in force).
    pub fn started(&mut self, id: CampaignId, event: &RecordedEvent, rules: &CampaignRules) {
        let Event::CampaignStarted(started) = &event.event else {
            return;
        };
        let index = self.record(id) as usize;
        let record = &mut self.records[index];
        record.name = Some(started.name.clone());
        record.mode = started.mode;
        record.channel = Some(started.channel);
        record.started_at = Some(event.occurred_at);
        record.started_position = Some(event.position);
        record.holdout_percent = started.holdout_percent;
        record.at_launch = started.resolved;
        record.rules = AftermathRules::from(rules);
    }

    /// A contact joins a campaign's group: touched, or held out. `before`
    /// is their score and band just before.
    pub fn joined(&mut self, contact_id: ContactId, id: CampaignId, at: Timestamp, held_out: bool, before: (u8, Band)) {
        let campaign = self.record(id);
        // In a group once: whichever it joined first.
        match self.members[campaign as usize].entry(contact_id) {
            std::collections::hash_map::Entry::Occupied(_) => return,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(MemberState {
                    held_out,
                    did: Did::default(),
                });
            }
        }
        let part = self.participations.entry(contact_id).or_default();
        if part.len() == PARTICIPATIONS_PER_CONTACT_MAX {
            // Stop following the campaign whose window closed first (or,
            // if every window is open, the earliest).
            let earliest = part
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.at)
                .map_or(0, |(index, _)| index);
            part.remove(earliest);
        }
        part.push(Participation {
            campaign,
            at,
            held_out,
            score_before: before.0,
            band_before: before.1,
        });
        let record = &mut self.records[campaign as usize];
        let group = if held_out {
            &mut record.holdout
        } else {
            &mut record.sent
        };
        group.contacts += 1;
    }

    /// What a contact did, counted for every campaign whose window it
    /// falls in; a delivery outcome only for the campaign it names.
    pub fn observed(&mut self, contact_id: ContactId, event: &Event, at: Timestamp) {
        let (what, loss, only) = match event {
            Event::ReplyReceived(_) => (Did::REPLIED, None, None),
            Event::ContactDeletedUs(_) => (Did::DELETED_US, Some(Loss::DeletedUs), None),
            Event::ContactBlocked(_) => (Did::BLOCKED, Some(Loss::Blocked), None),
            Event::ComplaintFiled(_) => (Did::COMPLAINED, None, None),
            Event::ConsentWithdrawn(_) => (Did::OPTED_OUT, None, None),
            Event::DeliveryFailed(e) => (Did::FAILED, None, Some(e.campaign_id)),
            Event::MessageRead(e) => (Did::READ, None, Some(e.campaign_id)),
            Event::LinkClicked(e) => (Did::CLICKED, None, Some(e.campaign_id)),
            _ => return,
        };
        // Most ledgers' contacts are in no campaign: ask the map only when
        // someone is.
        if self.participations.is_empty() {
            return;
        }
        let Some(parts) = self.participations.get(&contact_id) else {
            return;
        };
        for part in parts {
            let record = &mut self.records[part.campaign as usize];
            if let Some(named) = only
                && named != Some(record.id)
            {
                continue;
            }
            let in_window =
                at >= part.at && at.as_millis() < part.at.as_millis().saturating_add(record.rules.window_millis);
            let Some(state) = self.members[part.campaign as usize].get_mut(&contact_id) else {
                continue;
            };
            if !in_window || state.did.has(what) {
                continue;
            }
            state.did = state.did.with(what);
            let group = if part.held_out {
                &mut record.holdout
            } else {
                &mut record.sent
            };
            let count = match what {
                Did::REPLIED => &mut group.replied,
                Did::DELETED_US => &mut group.deleted_us,
                Did::BLOCKED => &mut group.blocked,
                Did::COMPLAINED => &mut group.complained,
                Did::OPTED_OUT => &mut group.opted_out,
                Did::FAILED => &mut group.failed,
                Did::READ => &mut group.read,
                _ => &mut group.clicked,
            };
            *count += 1;
            if let Some(loss) = loss {
                if state.did.has(Did::LOST) {
                    continue;
                }
                state.did = state.did.with(Did::LOST);
                group.lost += 1;
                record.lost.push(Lost {
                    contact_id,
                    loss,
                    at,
                    held_out: part.held_out,
                    score_before: part.score_before,
                    band_before: part.band_before,
                });
            }
        }
    }
}

/// A rate of a campaign's group that crossed its threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Alert {
    /// Deletions plus blocks.
    Losses {
        rate: f64,
        threshold: f64,
    },
    Complaints {
        rate: f64,
        threshold: f64,
    },
    FailedDeliveries {
        rate: f64,
        threshold: f64,
    },
}

impl Outcomes {
    fn rate(&self, count: u32) -> f64 {
        if self.contacts == 0 {
            0.0
        } else {
            f64::from(count) / f64::from(self.contacts)
        }
    }

    pub fn reply_rate(&self) -> f64 {
        self.rate(self.replied)
    }

    /// Contacts who deleted or blocked us: the relationships a send cost.
    pub fn loss_rate(&self) -> f64 {
        self.rate(self.lost)
    }

    pub fn complaint_rate(&self) -> f64 {
        self.rate(self.complained)
    }

    pub fn opt_out_rate(&self) -> f64 {
        self.rate(self.opted_out)
    }

    pub fn failed_rate(&self) -> f64 {
        self.rate(self.failed)
    }

    pub fn read_rate(&self) -> f64 {
        self.rate(self.read)
    }

    pub fn click_rate(&self) -> f64 {
        self.rate(self.clicked)
    }

    /// Counts one member in the group.
    pub fn count(&mut self, did: Did) {
        self.contacts += 1;
        for (what, count) in [
            (Did::REPLIED, &mut self.replied),
            (Did::DELETED_US, &mut self.deleted_us),
            (Did::BLOCKED, &mut self.blocked),
            (Did::COMPLAINED, &mut self.complained),
            (Did::OPTED_OUT, &mut self.opted_out),
            (Did::LOST, &mut self.lost),
            (Did::FAILED, &mut self.failed),
            (Did::READ, &mut self.read),
            (Did::CLICKED, &mut self.clicked),
        ] {
            if did.has(what) {
                *count += 1;
            }
        }
    }

    /// The rates above the thresholds of `rules`.
    pub fn alerts(&self, rules: &AftermathRules) -> Vec<Alert> {
        let threshold = |percent: u8| f64::from(percent) / 100.0;
        let mut alerts = Vec::new();
        let loss = threshold(rules.loss_alert_percent);
        if self.loss_rate() > loss {
            alerts.push(Alert::Losses {
                rate: self.loss_rate(),
                threshold: loss,
            });
        }
        let complaints = threshold(rules.complaint_alert_percent);
        if self.complaint_rate() > complaints {
            alerts.push(Alert::Complaints {
                rate: self.complaint_rate(),
                threshold: complaints,
            });
        }
        let failed = threshold(rules.failed_alert_percent);
        if self.failed_rate() > failed {
            alerts.push(Alert::FailedDeliveries {
                rate: self.failed_rate(),
                threshold: failed,
            });
        }
        alerts
    }
}
