//! The gate's answer about one contact as every adapter shows it: the
//! decision, each reason in words, and the ledger position it was read at.

use rapport_domain::{Channel, ContactId, GateDecision, Position, SendMode, Timestamp};

use crate::read_model::ReadModel;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub contact_id: ContactId,
    pub decision: GateDecision,
    /// Each reason in words, in the order of `decision.reasons`.
    pub messages: Vec<String>,
    /// The ledger position the contact was read at.
    pub position: Option<Position>,
}

impl Judged {
    /// `decision` about `contact_id`, as the read model stands.
    pub fn new(model: &ReadModel, contact_id: ContactId, decision: GateDecision) -> Judged {
        let symbols = model.projection.symbols();
        Judged {
            contact_id,
            messages: decision.reasons.iter().map(|reason| reason.message(symbols)).collect(),
            decision,
            position: model.projection.position(),
        }
    }

    /// The blocking reasons in words, one sentence after another.
    pub fn blocking_summary(&self) -> String {
        self.decision
            .reasons
            .iter()
            .zip(&self.messages)
            .filter(|(reason, _)| reason.blocking)
            .map(|(_, message)| message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The gate for `contact_id` at `at`; `None` if there is no such contact.
pub fn judge(
    model: &ReadModel,
    contact_id: ContactId,
    mode: SendMode,
    channel: Option<Channel>,
    at: Timestamp,
) -> Option<Judged> {
    let decided = model.projection.gate(contact_id, mode, channel, at)?;
    Some(Judged::new(model, contact_id, decided.gate))
}
