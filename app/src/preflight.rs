//! Preflight: before a mass send, the gate's verdict for every contact of
//! an audience, with totals per verdict and per reason, the contacts in
//! each bucket, and for a deferred contact when it may be sent to. It runs
//! on the read model in memory, never on the store.

use std::collections::HashSet;

use rapport_domain::audience::Audience;
use rapport_domain::gate::{ReasonCode, ReasonSet};
use rapport_domain::{Channel, ContactId, Position, SendMode, Timestamp, Verdict, gate};

use crate::access::{READERS, may_access, require};
use crate::error::AppError;
use crate::read_model::ReadModel;
use crate::tokens::Principal;

/// What to preflight.
#[derive(Clone, Debug)]
pub struct PreflightRequest {
    pub audience: Audience,
    pub mode: SendMode,
    /// Each contact's primary channel when absent.
    pub channel: Option<Channel>,
    /// The business moment of the send.
    pub at: Timestamp,
}

/// Threads one preflight judges on, at most.
const PREFLIGHT_THREADS_MAX: usize = 4;
/// Audiences smaller than this are judged on the caller's thread.
const PARALLEL_FROM: usize = 20_000;

/// What one thread found in its share of the audience.
#[derive(Default)]
struct Part {
    buckets: [Vec<Verdicted>; 4],
    reasons: [usize; ReasonCode::ALL.len()],
    unknown: usize,
}

/// One contact's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdicted {
    pub contact_id: ContactId,
    /// For `DEFER`: when every deferring rule is satisfied.
    pub next_allowed_at: Option<Timestamp>,
    /// The reasons that decided the verdict.
    pub blocking: ReasonSet,
}

/// The verdicts in the order a manager reads them: who gets the send, who
/// gets a personal chat instead, who must wait, who gets nothing.
pub const VERDICTS: [Verdict; 4] = [Verdict::Allow, Verdict::RouteOneToOne, Verdict::Defer, Verdict::Deny];

#[derive(Clone, Debug)]
pub struct Preflight {
    pub at: Timestamp,
    pub mode: SendMode,
    /// The ledger position the read model stood at.
    pub position: Option<Position>,
    pub policy_version: u32,
    /// The contacts of each verdict, in `VERDICTS` order, each in id order.
    pub buckets: [Vec<Verdicted>; 4],
    /// How many contacts each reason fired for (blocking or not).
    pub reasons: Vec<(ReasonCode, usize)>,
    /// Contacts an explicit list named that the caller may not see or
    /// that do not exist (the two are not told apart).
    pub unknown: usize,
}

impl Preflight {
    pub fn total(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    pub fn bucket(&self, verdict: Verdict) -> &[Verdicted] {
        let index = VERDICTS.iter().position(|v| *v == verdict).unwrap_or(0);
        &self.buckets[index]
    }
}

/// The gate for every contact of the audience that the caller may see
/// (sales staff: their own part of it), for a send now or later: the live
/// read model does not know the past (`replay` does).
pub fn preflight(
    model: &ReadModel,
    principal: &Principal,
    request: &PreflightRequest,
    now: Timestamp,
) -> Result<Preflight, AppError> {
    require(principal, READERS, "preflight a campaign")?;
    request.audience.check().map_err(AppError::LimitExceeded)?;
    let projection = &model.projection;
    let policy = projection.current_policy();
    let skew = policy.policy.clock.skew_max_secs.saturating_mul(1_000) as i64;
    if request.at < now.plus_millis(-skew) {
        return Err(AppError::bad_input(format!(
            "a preflight is for a send now or later, not {}; replay the ledger to see the past",
            request.at
        )));
    }
    let audience = request.audience.compile(projection.symbols());
    let ids: Vec<ContactId> = match &request.audience.contacts {
        Some(listed) => {
            let mut seen = HashSet::with_capacity(listed.len());
            let mut ids: Vec<ContactId> = listed.iter().copied().filter(|id| seen.insert(*id)).collect();
            ids.sort_unstable();
            ids
        }
        None => model.directory.ids_after(None).collect(),
    };
    // Only a list can name someone unknown; a whole-ledger audience simply
    // leaves out whom the caller may not see (their number is not theirs to know).
    let listed = usize::from(request.audience.contacts.is_some());
    let judge = |chunk: &[ContactId]| {
        let mut part = Part::default();
        for &contact_id in chunk {
            let Some(relationship) = projection.relationship(contact_id) else {
                part.unknown += listed;
                continue;
            };
            if !may_access(principal, model, contact_id) {
                part.unknown += listed;
                continue;
            }
            if !audience.admits(relationship) {
                continue;
            }
            let decision = gate(relationship, policy, request.mode, request.channel, request.at);
            if !audience.admits_band(decision.strength.band) {
                continue;
            }
            for reason in &decision.reasons {
                part.reasons[reason.code as usize] += 1;
            }
            let index = VERDICTS.iter().position(|v| *v == decision.verdict).unwrap_or(0);
            part.buckets[index].push(Verdicted {
                contact_id,
                next_allowed_at: decision.next_allowed_at,
                blocking: decision.blocking_reasons(),
            });
        }
        part
    };
    // A large audience is judged on every core (a few at most), in id
    // order chunk by chunk, so the buckets stay in id order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(PREFLIGHT_THREADS_MAX));
    let parts: Vec<Part> = if ids.len() < PARALLEL_FROM || threads == 1 {
        vec![judge(&ids)]
    } else {
        let chunk = ids.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let running: Vec<_> = ids.chunks(chunk).map(|chunk| scope.spawn(|| judge(chunk))).collect();
            running
                .into_iter()
                .map(|thread| thread.join())
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|_| AppError::internal("a preflight thread panicked"))?
    };
    let mut buckets: [Vec<Verdicted>; 4] = Default::default();
    let mut reason_counts = [0usize; ReasonCode::ALL.len()];
    let mut unknown = 0;
    for part in parts {
        for (bucket, judged) in buckets.iter_mut().zip(part.buckets) {
            bucket.extend(judged);
        }
        for (count, more) in reason_counts.iter_mut().zip(part.reasons) {
            *count += more;
        }
        unknown += part.unknown;
    }
    let reasons = ReasonCode::ALL
        .into_iter()
        .zip(reason_counts)
        .filter(|(_, count)| *count > 0)
        .collect();
    Ok(Preflight {
        at: request.at,
        mode: request.mode,
        position: projection.position(),
        policy_version: policy.version,
        buckets,
        reasons,
        unknown,
    })
}
