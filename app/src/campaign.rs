//! Launching a campaign: the campaign on its own stream (the audience as
//! given, the policy it was judged under, the holdout, what the gate made
//! of the audience), then a touch for every allowed contact, each carrying
//! the decision it went out under and the campaign's id, and a holdout
//! mark for the allowed contacts withheld as the control group.
//!
//! Every id is derived from the campaign's, so a relaunch (after a crash,
//! or a retry) touches nobody twice and misses nobody the gate still
//! allows.

use std::collections::BTreeMap;

use futures::StreamExt;
use rapport_domain::audience::Audience;
use rapport_domain::event::HOLDOUT_PERCENT_MAX;
use rapport_domain::gate::best_send_hours;
use rapport_domain::plan::{Pace, Recipient, plan};
use rapport_domain::{
    AudienceRecord, CampaignHeldOut, CampaignId, CampaignStarted, Channel, ContactId, Event, NewEvent, Position,
    SendMode, StreamName, Timestamp, TouchAuthorization, TouchRecorded, Verdict,
};
use rapport_store::{APPEND_BATCH_MAX, EventStore, ExpectedVersion, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use crate::access::LAUNCHERS;
use crate::access::require;
use crate::core::Core;
use crate::error::AppError;
use crate::preflight::{Preflight, PreflightRequest, Verdicted, preflight};
use crate::read_model::ReadModel;
use crate::tokens::Principal;
use crate::write::own_event_id;
use rapport_projections::campaigns::Member;

/// Contacts written in one commit: a launch killed midway has written
/// whole chunks, and each chunk's contacts are told apart on resume.
const LAUNCH_CHUNK: usize = 1_000;
/// Chunks handed to the writer at once.
const LAUNCH_CHUNKS_IN_FLIGHT: usize = 4;

/// What to launch.
#[derive(Clone, Debug)]
pub struct LaunchRequest {
    pub name: String,
    pub audience: Audience,
    pub mode: SendMode,
    pub channel: Channel,
    /// The share of the allowed audience withheld as a control group.
    pub holdout_percent: u8,
    /// Names the campaign: the same key relaunches the same campaign.
    pub idempotency_key: Uuid,
}

/// A contact the sending tool is to deliver to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub contact_id: ContactId,
    pub channel: Channel,
    /// When to deliver: in their active hours, at their best reply hour if
    /// one is still ahead today, in the first wave with room.
    pub planned_at: Timestamp,
    /// The wave of the send plan, from 0 (at once).
    pub wave: u32,
}

/// What a launch did, and what is left to whom.
#[derive(Clone, Debug)]
pub struct Launched {
    pub campaign_id: CampaignId,
    /// Whether this launch resumed one begun before.
    pub resumed: bool,
    /// Every allowed contact not held out, touched by this launch or an
    /// earlier one of the same campaign.
    pub deliveries: Vec<Delivery>,
    pub held_out: Vec<ContactId>,
    /// `ROUTE_ONE_TO_ONE`: a personal chat for each, by owner.
    pub one_to_one: BTreeMap<String, Vec<ContactId>>,
    pub deferred: Vec<Verdicted>,
    pub denied: Vec<Verdicted>,
    /// Allowed contacts whose state changed while the launch judged them:
    /// not touched; a relaunch judges them again.
    pub changed: Vec<ContactId>,
    /// Touched by an earlier run, but they have deleted or blocked us,
    /// opted out or complained since: not to be delivered to.
    pub withdrawn: Vec<ContactId>,
    /// Touches and holdout marks this run wrote.
    pub appended: usize,
    /// The last position the launch wrote, applied to the read model.
    pub position: Option<Position>,
}

/// The id of everything a campaign writes about one contact.
fn contact_event_id(campaign_id: CampaignId, contact_id: ContactId, what: &str) -> Uuid {
    Uuid::new_v5(&campaign_id.0, format!("{what}:{}", contact_id.0).as_bytes())
}

/// Whether a contact is withheld, decided by the campaign's id alone so
/// that every relaunch withholds the same contacts.
pub fn is_held_out(campaign_id: CampaignId, contact_id: ContactId, percent: u8) -> bool {
    let digest = Sha256::new()
        .chain_update(campaign_id.0.as_bytes())
        .chain_update(contact_id.0.as_bytes())
        .finalize();
    u16::from_be_bytes([digest[0], digest[1]]) % 100 < u16::from(percent)
}

fn audience_record(audience: &Audience) -> AudienceRecord {
    let contacts_digest = audience.contacts.as_ref().map(|listed| {
        let mut ids: Vec<ContactId> = listed.clone();
        ids.sort_unstable();
        ids.dedup();
        let mut hasher = Sha256::new();
        for id in &ids {
            hasher.update(id.0.as_bytes());
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    });
    // The same audience reads the same whatever order it was given in.
    let mut owners: Vec<String> = audience.owners.iter().map(|owner| owner.trim().to_owned()).collect();
    owners.sort_unstable();
    owners.dedup();
    let mut bands: Vec<String> = audience.bands.iter().map(|band| band.as_str().to_owned()).collect();
    bands.sort_unstable();
    bands.dedup();
    let contacts_listed = audience.contacts.as_ref().map(|listed| {
        let mut ids = listed.clone();
        ids.sort_unstable();
        ids.dedup();
        ids.len() as u32
    });
    AudienceRecord {
        tags: audience.tags.as_ref().map(ToString::to_string),
        owners,
        bands,
        contacts_listed,
        contacts_digest,
    }
}

/// Launches (or resumes) a campaign now.
pub async fn launch(core: &Core, principal: &Principal, request: LaunchRequest) -> Result<Launched, AppError> {
    require(principal, LAUNCHERS, "launch campaigns")?;
    // Personal chats are written one by one: a "one-to-one" blast would
    // dodge the mass rules (opt-outs, complaints, bands) for everyone.
    if request.mode != SendMode::Mass {
        return Err(AppError::bad_input(
            "a campaign is a mass send; record personal chats one by one with recordTouch",
        ));
    }
    if request.holdout_percent > HOLDOUT_PERCENT_MAX {
        return Err(AppError::bad_input(format!(
            "holdoutPercent is at most {HOLDOUT_PERCENT_MAX}, got {}",
            request.holdout_percent
        )));
    }
    let campaign_id = CampaignId(own_event_id(principal, request.idempotency_key));
    let campaign_stream = StreamName::Campaign(campaign_id);
    let now = core.clock.now();
    let preflight_request = PreflightRequest {
        audience: request.audience.clone(),
        mode: request.mode,
        channel: Some(request.channel),
        at: now,
    };
    let earlier = core
        .store
        .read_event(
            campaign_stream,
            contact_event_id(campaign_id, ContactId(Uuid::nil()), "started"),
        )
        .await?;
    // What this campaign already wrote, by contact, once the read model has
    // everything the ledger holds: a resumed launch neither judges nor
    // writes them again, and holds back whoever turned away since.
    let mut already: BTreeMap<ContactId, Member> = BTreeMap::new();
    if let Some(started) = &earlier {
        same_campaign(started, &request)?;
        if let Some(head) = core.store.head().await?.last_position {
            core.live.wait_for(head).await?;
        }
        for member in core
            .live
            .read(|model| model.projection.campaigns().members(campaign_id))
        {
            already.insert(member.contact_id, member);
        }
    }
    // The gate for the audience, and the versions it judged them at.
    let judging = (principal.clone(), preflight_request.clone());
    let (judged, versions, owners, position, policy_version) = core
        .read_blocking(move |model| {
            let (principal, preflight_request) = judging;
            let judged = preflight(model, &principal, &preflight_request, now)?;
            let projection = &model.projection;
            let versions: BTreeMap<ContactId, u64> = judged
                .bucket(Verdict::Allow)
                .iter()
                .filter_map(|entry| {
                    Some((
                        entry.contact_id,
                        projection.relationship(entry.contact_id)?.stream_version(),
                    ))
                })
                .collect();
            let owners: Vec<(ContactId, String)> = judged
                .bucket(Verdict::RouteOneToOne)
                .iter()
                .filter_map(|entry| {
                    let owner = projection.relationship(entry.contact_id)?.owner();
                    Some((entry.contact_id, projection.symbols().name(owner).to_owned()))
                })
                .collect();
            let position = projection.position().map(|p| p.to_string()).unwrap_or_default();
            Ok::<_, AppError>((judged, versions, owners, position, projection.current_policy().version))
        })
        .await??;
    let mut launched = Launched {
        campaign_id,
        resumed: earlier.is_some(),
        deliveries: Vec::new(),
        held_out: Vec::new(),
        one_to_one: BTreeMap::new(),
        deferred: Vec::new(),
        denied: Vec::new(),
        changed: Vec::new(),
        withdrawn: Vec::new(),
        appended: 0,
        position: None,
    };
    for (contact_id, owner) in owners {
        if !already.contains_key(&contact_id) {
            launched.one_to_one.entry(owner).or_default().push(contact_id);
        }
    }
    let not_yet = |entry: &&Verdicted| !already.contains_key(&entry.contact_id);
    launched.deferred = judged.bucket(Verdict::Defer).iter().filter(not_yet).copied().collect();
    launched.denied = judged.bucket(Verdict::Deny).iter().filter(not_yet).copied().collect();
    let mut to_deliver: Vec<ContactId> = Vec::new();
    for member in already.values() {
        if member.held_out {
            launched.held_out.push(member.contact_id);
        } else if member.turned_away {
            launched.withdrawn.push(member.contact_id);
        } else {
            to_deliver.push(member.contact_id);
        }
    }
    if earlier.is_none() {
        let started = started_event(&request, &judged, campaign_id, policy_version, now, principal);
        launched.position = Some(
            core.store
                .append(campaign_stream, ExpectedVersion::NoStream, vec![started])
                .await
                .map_err(|refusal| match refusal {
                    StoreError::WrongExpectedVersion { .. } => {
                        AppError::Conflict(format!("campaign {campaign_id} is being launched at this moment"))
                    }
                    other => other.into(),
                })?
                .position,
        );
    }
    let allowed: Vec<ContactId> = judged
        .bucket(Verdict::Allow)
        .iter()
        .map(|entry| entry.contact_id)
        .filter(|id| !already.contains_key(id))
        .collect();
    // Chunks go to the writer a few at a time (the group commit takes them
    // in one transaction), each built only when its turn comes.
    let store = &core.store;
    let build = |chunk: &Vec<ContactId>| {
        let mut written = Vec::with_capacity(chunk.len());
        let mut appends = Vec::with_capacity(chunk.len());
        for &contact_id in chunk {
            let Some(version) = versions.get(&contact_id) else {
                continue;
            };
            let withheld = is_held_out(campaign_id, contact_id, request.holdout_percent);
            let event: Event = if withheld {
                CampaignHeldOut { campaign_id }.into()
            } else {
                TouchRecorded {
                    mode: request.mode,
                    channel: request.channel,
                    campaign_id: Some(campaign_id),
                    sender: principal.name.clone(),
                    authorization: TouchAuthorization::Gate {
                        verdict: Verdict::Allow,
                        policy_version,
                        position: position.clone(),
                    },
                }
                .into()
            };
            let id = contact_event_id(campaign_id, contact_id, if withheld { "holdout" } else { "touch" });
            let new_event = NewEvent::new(id, event, now, principal.name.clone());
            // Judged at this version: anything since makes the gate judge again.
            let expected = ExpectedVersion::Exact(*version);
            appends.push((StreamName::Contact(contact_id), expected, vec![new_event]));
            written.push((contact_id, withheld));
        }
        (written, appends)
    };
    let chunks: Vec<Vec<ContactId>> = allowed
        .chunks(LAUNCH_CHUNK.min(APPEND_BATCH_MAX))
        .map(<[ContactId]>::to_vec)
        .collect();
    let mut answered = futures::stream::iter(chunks)
        .map(|chunk: Vec<ContactId>| {
            let (written, appends) = build(&chunk);
            async move { (written, store.append_batch(appends).await) }
        })
        .buffered(LAUNCH_CHUNKS_IN_FLIGHT);
    while let Some((written, results)) = answered.next().await {
        let results = results?;
        for ((contact_id, was_held_out), result) in written.into_iter().zip(results) {
            match result {
                Ok(appended) => {
                    launched.appended += 1;
                    launched.position = launched.position.max(Some(appended.position));
                    if was_held_out {
                        launched.held_out.push(contact_id);
                    } else {
                        to_deliver.push(contact_id);
                    }
                }
                // A reply or a block landed since the gate judged them.
                Err(StoreError::WrongExpectedVersion { .. }) => launched.changed.push(contact_id),
                // The id is this campaign's own: an earlier run wrote it.
                Err(StoreError::IdempotencyConflict { .. }) if was_held_out => launched.held_out.push(contact_id),
                Err(StoreError::IdempotencyConflict { .. }) => to_deliver.push(contact_id),
                Err(other) => return Err(other.into()),
            }
        }
    }
    let channel = request.channel;
    launched.deliveries = core
        .read_blocking(move |model| send_plan(model, &to_deliver, channel, now))
        .await?;
    launched.held_out.sort_unstable();
    if let Some(position) = launched.position {
        core.live
            .wait_for(position)
            .await
            .map_err(|cause| AppError::Unavailable(format!(
                "the campaign was recorded up to position {position}, but the read model has not applied it yet ({cause}); relaunch with the same idempotency key"
            )))?;
    }
    Ok(launched)
}

/// The send plan for `contacts` on `channel` from `now`, by contact id:
/// the channel's pace and the active hours of the policy in force.
fn send_plan(model: &ReadModel, contacts: &[ContactId], channel: Channel, now: Timestamp) -> Vec<Delivery> {
    let projection = &model.projection;
    let policy = projection.current_policy();
    let recipients: Vec<Recipient> = contacts
        .iter()
        .filter_map(|contact_id| {
            let relationship = projection.relationship(*contact_id)?;
            Some(Recipient {
                contact_id: *contact_id,
                zone: policy.zone_of(relationship),
                best_hours: best_send_hours(relationship, policy, now),
            })
        })
        .collect();
    let pace = Pace {
        // A channel the policy sets no pace for goes out in one wave.
        sends_per_minute: policy
            .policy
            .channel_rules(channel)
            .map_or(u32::MAX, |rules| rules.sends_per_minute),
        pause_secs: policy.policy.campaigns.wave_pause_secs,
    };
    plan(&recipients, policy.window(), now, pace)
        .into_iter()
        .map(|planned| Delivery {
            contact_id: planned.contact_id,
            channel,
            planned_at: planned.at,
            wave: planned.wave,
        })
        .collect()
}

/// A relaunch under the same key must be the same campaign.
fn same_campaign(started: &rapport_domain::RecordedEvent, request: &LaunchRequest) -> Result<(), AppError> {
    let same = matches!(&started.event, Event::CampaignStarted(earlier)
        if earlier.name == request.name
            && earlier.mode == request.mode
            && earlier.channel == request.channel
            && earlier.holdout_percent == request.holdout_percent
            && earlier.audience.as_ref() == Some(&audience_record(&request.audience)));
    if same {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "this idempotency key launched a different campaign; use a new key for a new campaign".to_owned(),
        ))
    }
}

fn started_event(
    request: &LaunchRequest,
    judged: &Preflight,
    campaign_id: CampaignId,
    policy_version: u32,
    now: Timestamp,
    principal: &Principal,
) -> NewEvent {
    let allowed = judged.bucket(Verdict::Allow);
    let held = allowed
        .iter()
        .filter(|entry| is_held_out(campaign_id, entry.contact_id, request.holdout_percent))
        .count();
    let resolved = rapport_domain::event::ResolvedAudience {
        sent: (allowed.len() - held) as u32,
        held_out: held as u32,
        routed_one_to_one: judged.bucket(Verdict::RouteOneToOne).len() as u32,
        deferred: judged.bucket(Verdict::Defer).len() as u32,
        denied: judged.bucket(Verdict::Deny).len() as u32,
    };
    let started = CampaignStarted {
        name: request.name.clone(),
        channel: request.channel,
        mode: request.mode,
        audience: Some(audience_record(&request.audience)),
        policy_version: Some(policy_version),
        holdout_percent: request.holdout_percent,
        resolved: Some(resolved),
    };
    let id = contact_event_id(campaign_id, ContactId(Uuid::nil()), "started");
    NewEvent::new(id, started, now, principal.name.clone())
}
