//! The gate's answer about one contact as every adapter shows it: the
//! decision, each reason in words, and the ledger position it was read at.

use rapport_domain::{Channel, ContactId, GateDecision, Language, Position, SendMode, Timestamp};

use crate::read_model::ReadModel;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub contact_id: ContactId,
    pub decision: GateDecision,
    /// The tag each reason names ("" for none), in the order of
    /// `decision.reasons`, so its words can be written in any language.
    tag_names: Vec<String>,
    /// The ledger position the contact was read at.
    pub position: Option<Position>,
}

impl Judged {
    /// `decision` about `contact_id`, as the read model stands.
    pub fn new(model: &ReadModel, contact_id: ContactId, decision: GateDecision) -> Judged {
        let symbols = model.projection.symbols();
        Judged {
            contact_id,
            tag_names: decision
                .reasons
                .iter()
                .map(|reason| reason.tag_name(symbols).to_owned())
                .collect(),
            decision,
            position: model.projection.position(),
        }
    }

    /// The tag each reason names ("" for none), in the order of `decision.reasons`.
    pub fn tag_names(&self) -> &[String] {
        &self.tag_names
    }

    /// Each reason in words, in the order of `decision.reasons`.
    pub fn messages(&self, language: Language) -> Vec<String> {
        self.decision
            .reasons
            .iter()
            .zip(&self.tag_names)
            .map(|(reason, tag_name)| language.reason(reason, tag_name))
            .collect()
    }

    /// The blocking reasons in English, one sentence after another: the
    /// summary a refusal's error message carries (errors are English; their
    /// codes are what clients translate).
    pub fn blocking_summary(&self) -> String {
        self.decision
            .reasons
            .iter()
            .zip(self.messages(Language::English))
            .filter(|(reason, _)| reason.blocking)
            .map(|(_, message)| message)
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
