//! The ledger projection: one `Relationship` per contact, the policies in
//! the order they took force, the violations found on the way, every
//! campaign's aftermath and every customer group.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::campaigns::Campaigns;

use rapport_domain::gate::gate;
use rapport_domain::group::Group;
use rapport_domain::{
    Channel, CompiledPolicy, ContactId, Event, GateDecision, GroupId, Policy, Position, ReasonSet, RecordedEvent,
    Relationship, SendMode, StreamName, Strength, Symbols, Timestamp, TouchAuthorization, Verdict, strength,
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
    /// Sent under a manager's override; the reason is in the touch's own
    /// event (`Event::override_reason`), not copied into every violation.
    pub overridden: bool,
}

/// Relationships stored densely in chunks of fixed size, found through a
/// map of 4-byte slots. A map holding the 240-byte relationships itself
/// wastes its empty slots and doubles when it grows; here the only slack
/// is the last chunk's unused tail.
#[derive(Clone, Debug, Default, PartialEq)]
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
    groups: BTreeMap<GroupId, Group>,
    position: Option<Position>,
    events_applied: u64,
}

/// What a snapshot keeps of a projection besides its relationships and
/// violations (which it keeps a chunk at a time): the compiled policies as
/// their documents, compiled again on load (they hold interned tags and a
/// parsed zone), everything else as it is.
#[derive(Debug, serde::Serialize)]
pub struct SavedRest<'a> {
    symbols: &'a Symbols,
    policies: Vec<SavedPolicy>,
    campaigns: &'a Campaigns,
    groups: &'a BTreeMap<GroupId, Group>,
    position: Option<Position>,
    events_applied: u64,
    relationships: u64,
    violations: u64,
}

#[derive(Debug, serde::Deserialize)]
pub struct LoadedRest {
    symbols: Symbols,
    policies: Vec<SavedPolicy>,
    campaigns: Campaigns,
    groups: BTreeMap<GroupId, Group>,
    position: Option<Position>,
    events_applied: u64,
    relationships: u64,
    violations: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedPolicy {
    since: Option<Position>,
    version: u32,
    /// The policy document as JSON, the form the ledger holds it in.
    document: String,
}

/// Relationships given back by a snapshot, chunk by chunk, in the order
/// `Projection::relationship_chunks` gave them.
#[derive(Debug, Default)]
pub struct RestoredRelationships(Relationships);

impl RestoredRelationships {
    /// Room for the relationships `rest` says are coming (bounded, since
    /// the count is only a hint until they have all arrived).
    pub fn for_rest(rest: &LoadedRest) -> Self {
        const RESERVED_MAX: u64 = 10_000_000;
        let expected = rest.relationships.min(RESERVED_MAX) as usize;
        RestoredRelationships(Relationships {
            slots: HashMap::with_capacity(expected),
            chunks: Vec::with_capacity(expected.div_ceil(RELATIONSHIPS_PER_CHUNK)),
        })
    }

    pub fn extend(&mut self, ids: Vec<ContactId>, relationships: Vec<Relationship>) -> Result<(), String> {
        if ids.len() != relationships.len() {
            return Err(format!(
                "a chunk of {} ids carries {} relationships",
                ids.len(),
                relationships.len()
            ));
        }
        for (id, relationship) in ids.into_iter().zip(relationships) {
            if self.0.slots.contains_key(&id) {
                return Err(format!("contact {} is there twice", id.0));
            }
            *self.0.get_or_insert(id) = relationship;
        }
        Ok(())
    }
}

impl Projection {
    /// What a snapshot keeps besides the relationships and violations.
    pub fn saved_rest(&self) -> Result<SavedRest<'_>, serde_json::Error> {
        let policies = self
            .policies
            .iter()
            .map(|in_force| {
                Ok(SavedPolicy {
                    since: in_force.since,
                    version: in_force.policy.version,
                    document: serde_json::to_string(&in_force.policy.policy)?,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        Ok(SavedRest {
            symbols: &self.symbols,
            policies,
            campaigns: &self.campaigns,
            groups: &self.groups,
            position: self.position,
            events_applied: self.events_applied,
            relationships: self.contacts.slots.len() as u64,
            violations: self.violations.len() as u64,
        })
    }

    /// Every relationship, registered or not, in the order the fold first
    /// met its contact, a chunk at a time.
    pub fn relationship_chunks(&self) -> impl Iterator<Item = (Vec<ContactId>, &[Relationship])> {
        let mut ids_by_slot = vec![ContactId(uuid::Uuid::nil()); self.contacts.slots.len()];
        for (id, slot) in &self.contacts.slots {
            ids_by_slot[*slot as usize] = *id;
        }
        let mut ids = ids_by_slot.into_iter();
        self.contacts
            .chunks
            .iter()
            .map(move |chunk| (ids.by_ref().take(chunk.len()).collect(), chunk.as_slice()))
    }

    /// A projection from a snapshot's parts.
    pub fn restored(
        rest: LoadedRest,
        relationships: RestoredRelationships,
        violations: Vec<Violation>,
    ) -> Result<Projection, String> {
        let LoadedRest {
            mut symbols,
            policies: saved,
            campaigns,
            groups,
            position,
            events_applied,
            relationships: relationships_saved,
            violations: violations_saved,
        } = rest;
        if relationships.0.slots.len() as u64 != relationships_saved || violations.len() as u64 != violations_saved {
            return Err(format!(
                "{} relationships and {} violations, where {relationships_saved} and {violations_saved} were saved",
                relationships.0.slots.len(),
                violations.len()
            ));
        }
        if saved.is_empty() {
            return Err("a projection has at least the built-in policy".to_owned());
        }
        if !campaigns.is_consistent() {
            return Err("its campaigns do not point at one another".to_owned());
        }
        let mut policies = Vec::with_capacity(saved.len());
        for policy in saved {
            let document: Policy = serde_json::from_str(&policy.document).map_err(|e| e.to_string())?;
            document
                .validate()
                .map_err(|e| format!("policy version {}: {e}", policy.version))?;
            policies.push(PolicyInForce {
                since: policy.since,
                policy: Arc::new(CompiledPolicy::new(policy.version, document, &mut symbols)),
            });
        }
        Ok(Projection {
            contacts: relationships.0,
            symbols,
            policies,
            violations,
            campaigns,
            groups,
            position,
            events_applied,
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
            groups: BTreeMap::new(),
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
            groups: BTreeMap::new(),
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
            (StreamName::Group(group_id), group_event) => {
                // Never empty: `new` starts with the built-in default.
                let policy = &self.policies[self.policies.len() - 1].policy;
                self.groups.entry(*group_id).or_default().apply_under(
                    group_event,
                    event.version,
                    event.occurred_at,
                    policy,
                );
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

    /// Every customer group, in id order.
    pub fn groups(&self) -> &BTreeMap<GroupId, Group> {
        &self.groups
    }

    /// A group that was created (events of a group stream with no
    /// `GroupCreated` make none).
    pub fn group(&self, group_id: GroupId) -> Option<&Group> {
        self.groups.get(&group_id).filter(|group| group.created_at.is_some())
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
        let overridden = matches!(authorization, TouchAuthorization::Override { .. });
        self.violations.push(Violation {
            position: event.position,
            event_id: event.event_id,
            contact_id,
            mode,
            verdict: decision.verdict,
            reasons: decision.blocking_reasons(),
            policy_version: decision.policy_version,
            overridden,
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
