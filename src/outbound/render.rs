//! Templates: one text and one HTML template per event and locale (templates/), compiled into the
//! binary, each overridable from `[outbound] templates_dir`. HTML templates escape every value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

/// The locales with templates; others fall back to the first.
pub const LOCALES: [&str; 2] = ["en", "de"];

macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(
            (concat!("en/", $name, ".txt"), include_str!(concat!("../../templates/en/", $name, ".txt"))),
            (concat!("en/", $name, ".html"), include_str!(concat!("../../templates/en/", $name, ".html"))),
            (concat!("de/", $name, ".txt"), include_str!(concat!("../../templates/de/", $name, ".txt"))),
            (concat!("de/", $name, ".html"), include_str!(concat!("../../templates/de/", $name, ".html"))),
        )*]
    };
}

/// The built-in templates, by name (`en/created.txt`): the layouts (`base`) and one pair per
/// event (see templates/README.md).
pub const EMBEDDED: &[(&str, &str)] = embed!(
    "base",
    "created",
    "commented",
    "to_customer",
    "to_partner",
    "status_changed",
    "resolved",
    "closed",
    "reopened",
    "assigned",
    "question",
    "work_done",
    "reminder",
    "merged",
    "not_done",
    "delivery_failed",
    "refused",
);

/// A template that does not compile or render, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
}

/// A rendered notification body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub html: String,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from: its override file, or the built-in one.
    origin: BTreeMap<String, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origin", &self.origin)
            .finish()
    }
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// `{{ text | paragraphs }}`: escaped, with line breaks kept.
fn paragraphs(text: String) -> Value {
    Value::from_safe_string(html_escape(&text).replace('\n', "<br>\n"))
}

impl Templates {
    /// Compiles the built-in templates, each replaced by a file of the same relative name in
    /// `overrides` when there is one. Every template that fails is reported.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, Vec<TemplateProblem>> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        env.add_filter("paragraphs", paragraphs);
        let mut problems = Vec::new();
        let mut origin = BTreeMap::new();
        for (name, builtin) in EMBEDDED {
            let file: Option<PathBuf> = overrides.map(|d| d.join(name)).filter(|p| p.exists());
            let (source, from) = match &file {
                Some(p) => match std::fs::read_to_string(p) {
                    Ok(s) => (s, p.display().to_string()),
                    Err(e) => {
                        problems.push(TemplateProblem {
                            file: p.display().to_string(),
                            line: None,
                            message: e.to_string(),
                        });
                        continue;
                    }
                },
                None => (builtin.to_string(), format!("templates/{name} (built in)")),
            };
            if let Err(e) = env.add_template_owned(name.to_string(), source) {
                problems.push(TemplateProblem {
                    file: from.clone(),
                    line: e.line(),
                    message: e
                        .detail()
                        .map(String::from)
                        .unwrap_or_else(|| e.kind().to_string()),
                });
            }
            origin.insert(name.to_string(), from);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let templates = Templates { env, origin };
        let problems = templates.check();
        if problems.is_empty() {
            Ok(templates)
        } else {
            Err(problems)
        }
    }

    fn name_for(&self, event: &str, locale: &str, ext: &str) -> String {
        let locale = if LOCALES.contains(&locale) {
            locale
        } else {
            LOCALES[0]
        };
        format!("{locale}/{event}.{ext}")
    }

    fn render_one(&self, name: &str, ctx: &Value) -> Result<String, TemplateProblem> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| self.problem(name, &e))?;
        tmpl.render(ctx).map_err(|e| self.problem(name, &e))
    }

    fn problem(&self, name: &str, e: &minijinja::Error) -> TemplateProblem {
        // An error inside a parent template names the parent.
        let at = e.name().unwrap_or(name);
        TemplateProblem {
            file: self
                .origin
                .get(at)
                .cloned()
                .unwrap_or_else(|| at.to_string()),
            line: e.line(),
            message: e
                .detail()
                .map(String::from)
                .unwrap_or_else(|| e.kind().to_string()),
        }
    }

    /// Renders an event's text and HTML body in a locale (English when there is none for it).
    pub fn render<S: Serialize>(
        &self,
        event: &str,
        locale: &str,
        ctx: &S,
    ) -> Result<Rendered, RenderError> {
        let ctx = Value::from_serialize(ctx);
        let err = |p: TemplateProblem| RenderError {
            name: p.file.clone(),
            message: p.to_string(),
        };
        Ok(Rendered {
            text: self
                .render_one(&self.name_for(event, locale, "txt"), &ctx)
                .map_err(err)?,
            html: self
                .render_one(&self.name_for(event, locale, "html"), &ctx)
                .map_err(err)?,
        })
    }

    /// Renders every template with a sample context: a template that compiles but fails when
    /// rendered (an unknown filter, a missing parent) is reported too.
    pub fn check(&self) -> Vec<TemplateProblem> {
        let sample = Value::from_serialize(sample_context());
        let mut out = Vec::new();
        // Every template but the layouts, which are rendered through the others.
        for (name, _) in EMBEDDED.iter().filter(|(n, _)| !n.contains("/base.")) {
            if let Err(p) = self.render_one(name, &sample)
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
        out
    }
}

/// What every template gets (see templates/README.md).
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    pub helpdesk: HelpdeskCtx,
    pub ticket: TicketCtx,
    pub event: String,
    pub recipient: RecipientCtx,
    pub actor: ActorCtx,
    pub comment: Option<String>,
    /// How much of the comment this mail leaves out ("3.2 MiB"), when it is cut.
    pub comment_rest: Option<String>,
    pub attachments: Vec<AttachmentCtx>,
    pub actions: Vec<ActionLink>,
    pub ask: AskCtx,
    pub refusal: Option<RefusalCtx>,
    pub failure: Option<FailureCtx>,
    pub when: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelpdeskCtx {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketCtx {
    #[serde(rename = "ref")]
    pub reference: String,
    pub subject: String,
    pub status: String,
    pub previous_status: Option<String>,
    pub organisation: Option<String>,
    pub requester: String,
    pub partner: Option<String>,
    pub linked_to: Option<String>,
    pub created: String,
    pub status_since: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientCtx {
    pub address: String,
    pub name: String,
    pub locale: String,
    pub is_requester: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorCtx {
    pub name: String,
    pub address: String,
    pub role: String,
    /// Nothing proves the mail is theirs (shown to agents only).
    pub unverified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentCtx {
    pub filename: String,
    pub size_text: String,
    pub attached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionLink {
    pub name: String,
    pub mailto: String,
    pub requires_comment: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AskCtx {
    pub satisfaction: bool,
    pub close: Option<String>,
    pub reopen: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusalCtx {
    pub action: String,
    pub reason: String,
    pub comment_kept: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureCtx {
    pub recipient: String,
    pub reason: String,
}

/// A context with every part filled, for checking templates.
pub fn sample_context() -> MailContext {
    MailContext {
        helpdesk: HelpdeskCtx {
            name: "Example Help Desk".into(),
            address: "support@helpdesk.example".into(),
        },
        ticket: TicketCtx {
            reference: "SUP-20261122-0042".into(),
            subject: "Printer on fire".into(),
            status: "On Partner".into(),
            previous_status: Some("New".into()),
            organisation: Some("Acme".into()),
            requester: "anna@acme.example".into(),
            partner: Some("IT Provider".into()),
            linked_to: Some("SUP-20261122-0041".into()),
            created: "2026-11-22 09:00 CET".into(),
            status_since: "2026-11-22 09:05 CET".into(),
        },
        event: "to_partner".into(),
        recipient: RecipientCtx {
            address: "ops@itprov.example".into(),
            name: "Ops".into(),
            locale: "en".into(),
            is_requester: false,
        },
        actor: ActorCtx {
            name: "Alice".into(),
            address: "alice@helpdesk.example".into(),
            role: "agent".into(),
            unverified: true,
        },
        comment: Some("Please check.\nThanks!".into()),
        comment_rest: Some("3.2 MiB".into()),
        attachments: vec![AttachmentCtx {
            filename: "photo.jpg".into(),
            size_text: "1.2 MB".into(),
            attached: true,
        }],
        actions: vec![ActionLink {
            name: "To Customer".into(),
            mailto: "mailto:support+r-x@helpdesk.example?subject=%5BTo%20Customer%5D".into(),
            requires_comment: false,
        }],
        ask: AskCtx {
            satisfaction: true,
            close: Some("Close".into()),
            reopen: Some("Reopen".into()),
        },
        refusal: Some(RefusalCtx {
            action: "To Web-IT Provider".into(),
            reason: "Web-IT Provider is not involved in this ticket".into(),
            comment_kept: true,
        }),
        failure: Some(FailureCtx {
            recipient: "nobody@acme.example".into(),
            reason: "550 5.1.1 User unknown".into(),
        }),
        when: "2026-11-22 09:05 CET".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_renders_and_html_escapes() {
        let t = Templates::load(None).unwrap();
        let mut ctx = sample_context();
        ctx.comment = Some("<script>alert(1)</script>\nsecond line".into());
        ctx.ticket.subject = "Tom & Jerry <b>".into();
        let r = t.render("commented", "en", &ctx).unwrap();
        assert!(r.text.contains("<script>alert(1)</script>"), "{}", r.text);
        assert!(
            r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;<br>"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("Tom &amp; Jerry &lt;b&gt;"), "{}", r.html);
        assert!(r.text.contains("SUP-20261122-0042"));
        let de = t.render("to_partner", "de", &ctx).unwrap();
        assert!(de.text.contains("übergeben"), "{}", de.text);
        // An unknown locale falls back to English.
        let fr = t.render("to_partner", "fr", &ctx).unwrap();
        assert!(fr.text.contains("has sent ticket"), "{}", fr.text);
    }

    #[test]
    fn a_broken_override_is_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/closed.txt"),
            "{% extends \"en/base.txt\" %}\n{% block intro %}\nClosed {{ ticket.ref }\n{% endblock %}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("de/closed.html"), "x").ok();
        let problems = Templates::load(Some(dir.path())).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].file.ends_with("en/closed.txt"),
            "{:?}",
            problems[0]
        );
        assert_eq!(problems[0].line, Some(3));
        // A good override replaces the built-in one.
        std::fs::write(
            dir.path().join("en/closed.txt"),
            "{% extends \"en/base.txt\" %}{% block intro %}All done with {{ ticket.ref }}.{% endblock %}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let r = t.render("closed", "en", &sample_context()).unwrap();
        assert!(
            r.text.starts_with("All done with SUP-20261122-0042."),
            "{}",
            r.text
        );
    }
}
