//! Why something was not done, in the reader's language: the core's refusals are English data
//! (`Refusal`'s `Display`); mail to a German reader says it in German.

use crate::workflow::Refusal;

/// The refusal as the reader of `locale` reads it.
pub fn describe(r: &Refusal, locale: &str) -> String {
    if locale != "de" {
        return r.to_string();
    }
    match r {
        Refusal::UnknownAction { name } => format!("die Aktion „{name}“ gibt es nicht"),
        Refusal::AmbiguousAction { name, candidates } => format!(
            "„{name}“ ist nicht eindeutig: es kann {} bedeuten",
            candidates.join(", ")
        ),
        Refusal::CannotSee => "Sie können dieses Ticket nicht sehen".into(),
        Refusal::RoleNotAllowed { action, role } => {
            format!("{action} ist für die Rolle {role} nicht möglich")
        }
        Refusal::WrongState { action, status } => {
            format!("{action} ist im Status {status} nicht möglich")
        }
        Refusal::Final { status } => {
            format!("das Ticket ist {status} und damit abgeschlossen")
        }
        Refusal::PartnerNotInvolved { partner } => {
            format!("{partner} ist an diesem Ticket nicht beteiligt")
        }
        Refusal::SamePartner { partner } => {
            format!("{partner} kann das Ticket nicht an sich selbst senden")
        }
        Refusal::CommentRequired { action } => format!("{action} braucht einen Kommentar"),
        Refusal::FieldRequired { action, field } => {
            format!("{action} braucht das Feld {field}")
        }
        Refusal::InvalidField {
            field,
            value,
            allowed,
        } => format!(
            "{field} „{value}“ ist nicht zulässig; zulässig: {}",
            allowed.join(", ")
        ),
        Refusal::UnknownField { field, known } => format!(
            "das Feld {field} gibt es nicht; bekannt: {}",
            known.join(", ")
        ),
        Refusal::FieldsNotAllowed { action } => format!(
            "{action} nimmt von Ihnen keine Felder an; Felder setzen die Aktionen, die danach fragen"
        ),
        Refusal::FieldNotTaken {
            action,
            field,
            taken,
        } => {
            if taken.is_empty() {
                format!("{action} nimmt das Feld {field} nicht an")
            } else {
                format!(
                    "{action} nimmt das Feld {field} nicht an (wohl aber: {})",
                    taken.join(", ")
                )
            }
        }
        Refusal::ConditionNotMet { action } => {
            format!("{action} ist bei diesem Ticket nicht möglich")
        }
        Refusal::PartnerHasTurn { partner } => format!(
            "das Ticket wartet auf {partner}: senden Sie es erst weiter, bevor Sie {partner} entfernen"
        ),
        Refusal::MergeAcrossOrganisations {
            organisation_a,
            organisation_b,
        } => format!(
            "Tickets von {organisation_a} und {organisation_b} können nicht zusammengeführt werden"
        ),
        Refusal::InternalNotAllowed => "nur Agenten können interne Kommentare schreiben".into(),
        Refusal::NotAnAgent { name } => {
            format!("{name} ist kein Agent; Tickets werden nur Agenten zugewiesen")
        }
        Refusal::UnknownPartner { name } => format!("{name} ist kein Partner"),
        Refusal::AlreadyInvolved { partner } => {
            format!("{partner} ist an diesem Ticket schon beteiligt")
        }
        Refusal::NotCustomerIt { name, organisation } => {
            format!("{name} gehört nicht zur IT von {organisation}")
        }
        Refusal::NoCustomerIt => "die Organisation des Tickets hat keine eigene IT".into(),
        Refusal::MergeIntoItself => {
            "ein Ticket kann nicht mit sich selbst zusammengeführt werden".into()
        }
        Refusal::EmptyRequest => "ein Ticket braucht einen Betreff oder einen Text".into(),
        Refusal::EmptyComment => "der Kommentar ist leer".into(),
        Refusal::NotVerified { action } => format!(
            "wir konnten nicht prüfen, dass diese Mail von Ihnen stammt, daher wurde {action} nicht ausgeführt: Befehle nehmen wir aus Antworten auf unsere Benachrichtigungen (oder aus Mail, die Ihre Domain beglaubigt)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_readers_read_german() {
        let r = Refusal::PartnerNotInvolved {
            partner: "Web-IT Provider".into(),
        };
        assert_eq!(
            describe(&r, "de"),
            "Web-IT Provider ist an diesem Ticket nicht beteiligt"
        );
        assert_eq!(describe(&r, "en"), r.to_string());
    }
}
