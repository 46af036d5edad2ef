//! The ledger projection: one `Relationship` per contact, the policies in
//! the order they took force, and the violations found on the way.

use std::collections::HashMap;
use std::sync::Arc;

use crate::campaigns::Campaigns;

use rapport_domain::gate::gate;
use rapport_domain::{
    Channel, CompiledPolicy, ContactId, Event, GateDecision, Policy, Position, ReasonSet, RecordedEvent, Relationship,
    SendMode, StreamName, Strength, Symbols, Timestamp, TouchAuthorization, Verdict, strength,
};

/// A policy and the position from which it was in force.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyInForce {
    /// `None` for the built-in default used before the ledger's first policy.
    pub since: Option<Position>,
    pub policy: Arc<CompiledPolicy>,
}

/// A gate decision about one contact, stamped with the ledger position it
/// was computed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub contact_id: ContactId,
    pub gate: GateDecision,
    pub position: Option<Position>,
}

/// A touch the gate would not have allowed at the position it was recorded.
/// Kept compact (a ledger ingested from other tools may hold many); the
/// whole decision is rebuilt by replaying to just before `position`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    pub position: Position,
    pub event_id: uuid::Uuid,
    pub contact_id: ContactId,
    pub mode: SendMode,
    /// The verdict the touch broke, and the reasons behind it.
    pub verdict: Verdict,
    pub reasons: ReasonSet,
    pub policy_version: u32,
    /// A manager's override reason, if it was one.
    pub override_reason: Option<Box<str>>,
}

/// Relationships stored densely in chunks of fixed size, found through a
/// map of 4-byte slots. A map holding the 240-byte relationships itself
/// wastes its empty slots and doubles when it grows; here the only slack
/// is the last chunk's unused tail.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Relationships {
    slots: HashMap<ContactId, u32>,
    chunks: Vec<Vec<Relationship>>,
}

const RELATIONSHIPS_PER_CHUNK: usize = 1_024;

impl Relationships {
    fn get(&self, contact_id: ContactId) -> Option<&Relationship> {
        let slot = *self.slots.get(&contact_id)? as usize;
        self.chunks
            .get(slot / RELATIONSHIPS_PER_CHUNK)?
            .get(slot % RELATIONSHIPS_PER_CHUNK)
    }

    fn get_or_insert(&mut self, contact_id: ContactId) -> &mut Relationship {
        let slot = match self.slots.get(&contact_id) {
            Some(slot) => *slot as usize,
            None => {
                let slot = self.slots.len();
                self.slots.insert(contact_id, u32::try_from(slot).unwrap_or(u32::MAX));
                if slot.is_multiple_of(RELATIONSHIPS_PER_CHUNK) {
                    self.chunks.push(Vec::with_capacity(RELATIONSHIPS_PER_CHUNK));
                }
                if let Some(chunk) = self.chunks.last_mut() {
                    chunk.push(Relationship::default());
                }
                slot
            }
        };
        &mut self.chunks[slot / RELATIONSHIPS_PER_CHUNK][slot % RELATIONSHIPS_PER_CHUNK]
    }

    /// Whether every slot has its relationship and every chunk but the last
    /// is full and the last is not empty: what `get_or_insert` relies on.
    fn is_dense(&self) -> bool {
        let stored: usize = self.chunks.iter().map(Vec::len).sum();
        let full_before_last = self
            .chunks
            .iter()
            .rev()
            .skip(1)
            .all(|chunk| chunk.len() == RELATIONSHIPS_PER_CHUNK);
        stored == self.slots.len()
            && full_before_last
            && self.chunks.last().is_none_or(|chunk| !chunk.is_empty())
            && self.slots.values().all(|slot| (*slot as usize) < stored)
    }

    fn iter(&self) -> impl Iterator<Item = (ContactId, &Relationship)> {
        self.slots.iter().filter_map(|(id, slot)| {
            let slot = *slot as usize;
            self.chunks
                .get(slot / RELATIONSHIPS_PER_CHUNK)?
                .get(slot % RELATIONSHIPS_PER_CHUNK)
                .map(|r| (*id, r))
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    contacts: Relationships,
    symbols: Symbols,
    policies: Vec<PolicyInForce>,
    violations: Vec<Violation>,
    campaigns: Campaigns,
    position: Option<Position>,
    events_applied: u64,
}

/// A projection as a snapshot keeps it: the compiled policies as their
/// documents, compiled again on load (they hold interned tags and a parsed
/// zone), everything else as it is.
#[derive(serde::Serialize)]
struct SavedProjection<'a> {
    contacts: &'a Relationships,
    symbols: &'a Symbols,
    policies: Vec<SavedPolicy>,
    violations: &'a [Violation],
    campaigns: &'a Campaigns,
    position: Option<Position>,
    events_applied: u64,
}

#[derive(serde::Deserialize)]
struct LoadedProjection {
    contacts: Relationships,
    symbols: Symbols,
    policies: Vec<SavedPolicy>,
    violations: Vec<Violation>,
    campaigns: Campaigns,
    position: Option<Position>,
    events_applied: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedPolicy {
    since: Option<Position>,
    version: u32,
    /// The policy document as JSON, the form the ledger holds it in.
    document: String,
}

impl serde::Serialize for Projection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let policies = self
            .policies
            .iter()
            .map(|in_force| {
                Ok(SavedPolicy {
                    since: in_force.since,
                    version: in_force.policy.version,
                    document: serde_json::to_string(&in_force.policy.policy).map_err(serde::ser::Error::custom)?,
                })
            })
            .collect::<Result<Vec<_>, S::Error>>()?;
        SavedProjection {
            contacts: &self.contacts,
            symbols: &self.symbols,
            policies,
            violations: &self.violations,
            campaigns: &self.campaigns,
            position: self.position,
            events_applied: self.events_applied,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Projection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut loaded = LoadedProjection::deserialize(deserializer)?;
        if loaded.policies.is_empty() {
            return Err(D::Error::custom("a projection has at least the built-in policy"));
        }
        if !loaded.contacts.is_dense() {
            return Err(D::Error::custom("the relationships do not fill their slots"));
        }
        let mut policies = Vec::with_capacity(loaded.policies.len());
        for saved in loaded.policies {
            let policy: Policy = serde_json::from_str(&saved.document).map_err(D::Error::custom)?;
            policies.push(PolicyInForce {
                since: saved.since,
                policy: Arc::new(CompiledPolicy::new(saved.version, policy, &mut loaded.symbols)),
            });
        }
        Ok(Projection {
            contacts: loaded.contacts,
            symbols: loaded.symbols,
            policies,
            violations: loaded.violations,
            campaigns: loaded.campaigns,
            position: loaded.position,
            events_applied: loaded.events_applied,
        })
    }
}

impl Default for Projection {
    fn default() -> Self {
        Self::new()
    }
}

impl Projection {
    pub fn new() -> Self {
        let mut symbols = Symbols::default();
        let default = CompiledPolicy::new(0, Policy::default(), &mut symbols);
        Projection {
            contacts: Relationships::default(),
            symbols,
            policies: vec![PolicyInForce {
                since: None,
                policy: Arc::new(default),
            }],
            violations: Vec::new(),
            campaigns: Campaigns::default(),
            position: None,
            events_applied: 0,
        }
    }

    /// An empty projection under the same policies and names as this one:
    /// the start of a view that folds a few streams again (one contact as
    /// of a past moment) without replaying the whole ledger.
    pub fn seeded(&self) -> Projection {
        Projection {
            contacts: Relationships::default(),
            symbols: self.symbols.clone(),
            policies: self.policies.clone(),
            violations: Vec::new(),
            campaigns: Campaigns::default(),
            position: None,
            events_applied: 0,
        }
    }

    /// Folds the next event of the global order.
    ///
    /// # Panics
    /// If `event` does not come after the last one applied: feeding events
    /// out of order is a programming error that would corrupt every read model.
    pub fn apply(&mut self, event: &RecordedEvent) {
        assert!(
            self.position < Some(event.position),
            "events must be applied in global order: {} after {:?}",
            event.position,
            self.position
        );
        self.position = Some(event.position);
        self.events_applied += 1;
        match (&event.stream, &event.event) {
            (StreamName::Policy, Event::PolicyChanged(changed)) => {
                let version = u32::try_from(event.version + 1).unwrap_or(u32::MAX);
                let compiled = CompiledPolicy::new(version, changed.policy.clone(), &mut self.symbols);
                self.policies.push(PolicyInForce {
                    since: Some(event.position),
                    policy: Arc::new(compiled),
                });
            }
            (StreamName::Campaign(campaign_id), _) => {
                let rules = self.current_policy().policy.campaigns.clone();
                self.campaigns.started(*campaign_id, event, &rules);
            }
            (StreamName::Contact(contact_id), contact_event) => {
                if let Event::TouchRecorded(touch) = contact_event {
                    self.check_touch(*contact_id, event, touch.mode, touch.channel, &touch.authorization);
                }
                self.follow_campaigns(*contact_id, event);
                let relationship = self.contacts.get_or_insert(*contact_id);
                relationship.apply(contact_event, event.version, event.occurred_at, &mut self.symbols);
            }
            _ => {}
        }
    }

    /// A contact's part in campaigns: joining one (a campaign's touch or
    /// holdout mark, with their score just before), or an outcome after one.
    fn follow_campaigns(&mut self, contact_id: ContactId, event: &RecordedEvent) {
        let joined = match &event.event {
            Event::TouchRecorded(touch) => touch.campaign_id.map(|id| (id, false)),
            Event::CampaignHeldOut(held) => Some((held.campaign_id, true)),
            other => {
                self.campaigns.observed(contact_id, other, event.occurred_at);
                return;
            }
        };
        let Some((campaign_id, held_out)) = joined else { return };
        let before = self
            .contacts
            .get(contact_id)
            .map_or((0, rapport_domain::Band::Lost), |relationship| {
                let now = strength(relationship, &self.current_policy().policy.scoring, event.occurred_at);
                (now.score, now.band)
            });
        self.campaigns
            .joined(contact_id, campaign_id, event.occurred_at, held_out, before);
    }

    pub fn campaigns(&self) -> &Campaigns {
        &self.campaigns
    }

    /// Marks a touch the gate, as it stood just before it, would not allow.
    fn check_touch(
        &mut self,
        contact_id: ContactId,
        event: &RecordedEvent,
        mode: SendMode,
        channel: Channel,
        authorization: &TouchAuthorization,
    ) {
        let Some(relationship) = self.contacts.get(contact_id) else {
            return;
        };
        let decision = gate(
            relationship,
            self.current_policy(),
            mode,
            Some(channel),
            event.occurred_at,
        );
        if decision.verdict == Verdict::Allow {
            return;
        }
        let override_reason = match authorization {
            TouchAuthorization::Override { reason } => Some(reason.as_str().into()),
            TouchAuthorization::Gate { .. } | TouchAuthorization::External { .. } => None,
        };
        self.violations.push(Violation {
            position: event.position,
            event_id: event.event_id,
            contact_id,
            mode,
            verdict: decision.verdict,
            reasons: decision.blocking_reasons(),
            policy_version: decision.policy_version,
            override_reason,
        });
    }

    /// The last position folded.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }

    pub fn contact_count(&self) -> usize {
        self.contacts.iter().filter(|(_, r)| r.is_registered()).count()
    }

    /// A registered contact's relationship.
    pub fn relationship(&self, contact_id: ContactId) -> Option<&Relationship> {
        self.contacts
            .get(contact_id)
            .filter(|relationship| relationship.is_registered())
    }

    pub fn contacts(&self) -> impl Iterator<Item = (ContactId, &Relationship)> {
        self.contacts.iter().filter(|(_, r)| r.is_registered())
    }

    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    pub fn current_policy(&self) -> &CompiledPolicy {
        // Never empty: `new` starts with the built-in default.
        &self.policies[self.policies.len() - 1].policy
    }

    /// Every policy in the order it took force (the built-in default first).
    pub fn policies(&self) -> &[PolicyInForce] {
        &self.policies
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The violation recorded at `position`, if the touch there was one.
    pub fn violation_at(&self, position: Position) -> Option<&Violation> {
        let index = self.violations.partition_point(|v| v.position < position);
        self.violations.get(index).filter(|v| v.position == position)
    }

    pub fn strength(&self, contact_id: ContactId, at: Timestamp) -> Option<Strength> {
        let relationship = self.relationship(contact_id)?;
        Some(strength(relationship, &self.current_policy().policy.scoring, at))
    }

    /// The gate for a registered contact, under the policy in force now.
    pub fn gate(
        &self,
        contact_id: ContactId,
        mode: SendMode,
        channel: Option<Channel>,
        at: Timestamp,
    ) -> Option<Decision> {
        let relationship = self.relationship(contact_id)?;
        Some(Decision {
            contact_id,
            gate: gate(relationship, self.current_policy(), mode, channel, at),
            position: self.position,
        })
    }
}
