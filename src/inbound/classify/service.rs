//! Notifications that mail-sending services mail as JSON: Amazon SES through SNS
//! (`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent",...}}`, also wrapped as a
//! string in an SNS envelope) and event feeds shaped like it (`"eventType"`). A bounce becomes a
//! [`Bounce`]; complaints, delivery notices and other events are automatic mails.
//!
//! Read only from the opening of the text (the caller's bounded prefix), without a JSON parser:
//! a few keys are looked up by name, whether their quotes are plain or escaped.

use super::{Bounce, is_status};

/// What a service notification is about.
pub(super) enum Notice {
    Bounce(Bounce),
    /// Any other event ("Complaint", "Delivery", ...): its name comes with the notice.
    Other,
}

/// The keys that name the event.
const EVENT_KEYS: [&str; 2] = ["notificationType", "eventType"];

/// The longest value read (a diagnostic may be long; the rest is not needed).
const VALUE_CHARS: usize = 300;

/// The notification a text opening with JSON carries, with the event's name.
pub(super) fn notification(opening: &str) -> Option<(String, Notice)> {
    let json = opening.trim_start();
    if !json.starts_with('{') {
        return None;
    }
    let event = EVENT_KEYS.iter().find_map(|k| value(json, k))?;
    let notice = match event.as_str() {
        "Bounce" => Notice::Bounce(bounce(json, true)),
        "DeliveryDelay" => Notice::Bounce(bounce(json, false)),
        _ => Notice::Other,
    };
    Some((event, notice))
}

/// The bounce a notification describes; `failed` is false for a delay.
fn bounce(json: &str, failed: bool) -> Bounce {
    let after = |key: &str| json.find(key).map_or("", |i| &json[i..]);
    let recipients = after("bouncedRecipients");
    let recipients = if recipients.is_empty() {
        after("delayedRecipients")
    } else {
        recipients
    };
    let recipient = value(recipients, "emailAddress").map(|a| a.to_lowercase());
    // SES: "Permanent", "Undetermined" (treated as permanent) or "Transient" (it may still
    // arrive: a delay).
    let permanent = failed && value(json, "bounceType").is_none_or(|t| t != "Transient");
    let status = value(recipients, "status")
        .filter(|s| is_status(s))
        .unwrap_or_else(|| if permanent { "5.0.0" } else { "4.0.0" }.to_string());
    let original = value(after("commonHeaders"), "messageId")
        .filter(|m| m.contains('@'))
        .map(|m| format!("<{}>", m.trim_matches(['<', '>'])));
    Bounce {
        recipient,
        permanent,
        status,
        diagnostic: value(recipients, "diagnosticCode").unwrap_or_default(),
        original_message_id: original,
    }
}

/// The string (or bare word) value of the first `"key"` in `json`, its quotes plain (`"key":
/// "v"`) or escaped inside a string (`\"key\":\"v\"`).
fn value(json: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = json[from..].find(key) {
        let start = from + i;
        let end = start + key.len();
        from = end;
        let quoted = json[..start].ends_with('"') && json[end..].starts_with(['"', '\\']);
        if !quoted {
            continue;
        }
        let rest = json[end..].trim_start_matches(['"', '\\']).trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start().trim_start_matches(['\\', '"']);
        let v: String = rest
            .chars()
            .take_while(|c| !matches!(c, '"' | '\\' | ',' | '}' | ']' | '\n'))
            .take(VALUE_CHARS)
            .collect();
        return Some(v.trim().to_string()).filter(|v| !v.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_escaped_keys_are_read() {
        assert_eq!(
            value(
                r#"{"a":"x","notificationType" : "Bounce"}"#,
                "notificationType"
            )
            .as_deref(),
            Some("Bounce")
        );
        assert_eq!(
            value(
                r#"{"Message" : "{\"notificationType\":\"Complaint\"}"}"#,
                "notificationType"
            )
            .as_deref(),
            Some("Complaint")
        );
        // A key's name inside another value is no key.
        assert_eq!(
            value(r#"{"x":"notificationType"}"#, "notificationType"),
            None
        );
    }

    #[test]
    fn a_bounce_gives_its_recipient_status_and_kind() {
        let json = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Transient","bouncedRecipients":[{"emailAddress":"Anna@Acme.example","status":"4.2.2","diagnosticCode":"smtp; 452 4.2.2 full"}]},"mail":{"commonHeaders":{"messageId":"<n1@helpdesk.example>"}}}"#;
        let Some((event, Notice::Bounce(b))) = notification(json) else {
            panic!("not read as a bounce");
        };
        assert_eq!(event, "Bounce");
        assert_eq!(b.recipient.as_deref(), Some("anna@acme.example"));
        assert_eq!(b.status, "4.2.2");
        assert!(!b.permanent);
        assert_eq!(b.diagnostic, "smtp; 452 4.2.2 full");
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("<n1@helpdesk.example>")
        );
    }

    #[test]
    fn text_that_does_not_open_with_json_is_none() {
        assert!(notification("Hi, {\"notificationType\":\"Bounce\"}").is_none());
        assert!(notification("{\"other\":1}").is_none());
    }
}
