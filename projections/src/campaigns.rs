//! The aftermath of every campaign: within a window after each contact's
//! touch (or holdout mark), who replied, deleted us, blocked us, complained
//! or opted out, for the contacts sent to and, apart, for the holdout, and
//! who deleted or blocked us with their score and band before the send.
//! A fold like the rest: rebuilding gives the same numbers.

use std::collections::HashMap;

use rapport_domain::{Band, CampaignId, Channel, ContactId, Event, Position, RecordedEvent, SendMode, Timestamp};

/// How long after a touch what a contact does counts against its campaign.
pub const AFTERMATH_WINDOW_MILLIS: i64 = 7 * 86_400_000;
/// Campaigns a contact is followed in at once: the most recent ones (the
/// window of an older one has long closed).
const PARTICIPATIONS_PER_CONTACT_MAX: usize = 8;

/// What contacts did after a campaign, each counted once per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    DeletedUs,
    Blocked,
}

/// A contact lost after a campaign, as they stood before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    pub contact_id: ContactId,
    pub loss: Loss,
    pub at: Timestamp,
    pub held_out: bool,
    pub score_before: u8,
    pub band_before: Band,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignRecord {
    pub id: CampaignId,
    /// Absent when touches name a campaign whose start the ledger lacks.
    pub name: Option<String>,
    pub mode: SendMode,
    pub channel: Option<Channel>,
    pub started_at: Option<Timestamp>,
    pub started_position: Option<Position>,
    pub holdout_percent: u8,
    pub sent: Outcomes,
    pub holdout: Outcomes,
    /// In the order the ledger learned of them.
    pub lost: Vec<Lost>,
    /// Every contact in the campaign's groups, and whether held out.
    members: HashMap<ContactId, bool>,
}

/// One contact's part in a campaign: when it was touched (or held out),
/// and which outcomes of theirs were already counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Participation {
    campaign: u32,
    at: Timestamp,
    held_out: bool,
    counted: u8,
    /// Score and band just before the send, for whoever is lost after it.
    score_before: u8,
    band_before: Band,
}

const REPLIED: u8 = 1;
const DELETED_US: u8 = 2;
const BLOCKED: u8 = 4;
const COMPLAINED: u8 = 8;
const OPTED_OUT: u8 = 16;
/// Deleted or blocked us: the relationship the send may have cost.
const LOST: u8 = 32;

/// Every campaign's aftermath, as the ledger has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Campaigns {
    records: Vec<CampaignRecord>,
    index: HashMap<CampaignId, u32>,
    participations: HashMap<ContactId, Vec<Participation>>,
}

impl Campaigns {
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
            sent: Outcomes::default(),
            holdout: Outcomes::default(),
            lost: Vec::new(),
            members: HashMap::new(),
        });
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
        let mut members: Vec<Member> = self.records[campaign as usize]
            .members
            .iter()
            .map(|(contact_id, held_out)| {
                let counted = self
                    .participations
                    .get(contact_id)
                    .and_then(|parts| parts.iter().find(|part| part.campaign == campaign))
                    .map_or(0, |part| part.counted);
                Member {
                    contact_id: *contact_id,
                    held_out: *held_out,
                    turned_away: counted & (LOST | OPTED_OUT | COMPLAINED) != 0,
                }
            })
            .collect();
        members.sort_unstable_by_key(|member| member.contact_id);
        members
    }

    /// Folds a campaign's start.
    pub fn started(&mut self, id: CampaignId, event: &RecordedEvent) {
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
    }

    /// A contact joins a campaign's group: touched, or held out. `before`
    /// is their score and band just before.
    pub fn joined(&mut self, contact_id: ContactId, id: CampaignId, at: Timestamp, held_out: bool, before: (u8, Band)) {
        let campaign = self.record(id);
        // In a group once: whichever it joined first.
        match self.records[campaign as usize].members.entry(contact_id) {
            std::collections::hash_map::Entry::Occupied(_) => return,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(held_out);
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
            counted: 0,
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

    /// What a contact did, counted for every campaign whose window it falls in.
    pub fn observed(&mut self, contact_id: ContactId, event: &Event, at: Timestamp) {
        let (flag, loss) = match event {
            Event::ReplyReceived(_) => (REPLIED, None),
            Event::ContactDeletedUs(_) => (DELETED_US, Some(Loss::DeletedUs)),
            Event::ContactBlocked(_) => (BLOCKED, Some(Loss::Blocked)),
            Event::ComplaintFiled(_) => (COMPLAINED, None),
            Event::ConsentWithdrawn(_) => (OPTED_OUT, None),
            _ => return,
        };
        // Most ledgers' contacts are in no campaign: ask the map only when
        // someone is.
        if self.participations.is_empty() {
            return;
        }
        let Some(parts) = self.participations.get_mut(&contact_id) else {
            return;
        };
        for part in parts.iter_mut() {
            let in_window =
                at >= part.at && at.as_millis() < part.at.as_millis().saturating_add(AFTERMATH_WINDOW_MILLIS);
            if !in_window || part.counted & flag != 0 {
                continue;
            }
            part.counted |= flag;
            let record = &mut self.records[part.campaign as usize];
            let group = if part.held_out {
                &mut record.holdout
            } else {
                &mut record.sent
            };
            match flag {
                REPLIED => group.replied += 1,
                DELETED_US => group.deleted_us += 1,
                BLOCKED => group.blocked += 1,
                COMPLAINED => group.complained += 1,
                _ => group.opted_out += 1,
            }
            if let Some(loss) = loss {
                if part.counted & LOST != 0 {
                    continue;
                }
                part.counted |= LOST;
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

/// The share of a group that deleted or blocked us, above which a campaign
/// raises an alert (the articles' 2 %).
pub const LOSS_RATE_ALERT: f64 = 0.02;
/// The share that complained, above which it raises one (3 %).
pub const COMPLAINT_RATE_ALERT: f64 = 0.03;

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

    /// The rates above their thresholds.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        if self.loss_rate() > LOSS_RATE_ALERT {
            alerts.push(Alert::Losses {
                rate: self.loss_rate(),
                threshold: LOSS_RATE_ALERT,
            });
        }
        if self.complaint_rate() > COMPLAINT_RATE_ALERT {
            alerts.push(Alert::Complaints {
                rate: self.complaint_rate(),
                threshold: COMPLAINT_RATE_ALERT,
            });
        }
        alerts
    }
}
