//! The stories of `docs/presets.md`, one per preset, as data. The core tests and the CLI
//! tests play the same tables, so the two paths must give the same states.

use super::demo::{ALICE, ANNA, BEN, CARL, MAILBOX_REQUEST, OPS};

/// What a step does.
pub enum What {
    Create {
        subject: &'static str,
        text: &'static str,
        fields: &'static [(&'static str, &'static str)],
        to: Option<&'static str>,
    },
    Act {
        action: &'static str,
        comment: Option<&'static str>,
        fields: &'static [(&'static str, &'static str)],
    },
    /// Only checks whether `who` may see the ticket.
    See,
}

/// What must come of it.
pub enum Expect {
    /// Applied; the ticket is now in this status.
    Status(&'static str),
    /// Refused with this refusal code.
    Refused(&'static str),
    /// Refused with this code, offering exactly these actions.
    RefusedAllowing(&'static str, &'static [&'static str]),
    /// `who` may (true) or may not (false) see the ticket.
    Visible(bool),
}

pub struct Step {
    pub who: &'static str,
    /// The ticket acted on: index among the tickets the story created so far (a create adds one).
    pub on: usize,
    pub what: What,
    pub expect: Expect,
    /// Addresses the step's notifications must reach.
    pub mailed: &'static [&'static str],
    /// Whose turn it is afterwards, when the story says.
    pub waiting_on: Option<&'static str>,
    /// Fields the ticket must carry afterwards.
    pub fields: &'static [(&'static str, &'static str)],
}

pub struct Story {
    pub preset: &'static str,
    pub steps: Vec<Step>,
}

fn step(who: &'static str, what: What, expect: Expect) -> Step {
    Step {
        who,
        on: 0,
        what,
        expect,
        mailed: &[],
        waiting_on: None,
        fields: &[],
    }
}

impl Step {
    fn mailed(mut self, to: &'static [&'static str]) -> Self {
        self.mailed = to;
        self
    }
    fn waiting(mut self, turn: &'static str) -> Self {
        self.waiting_on = Some(turn);
        self
    }
    fn fields(mut self, f: &'static [(&'static str, &'static str)]) -> Self {
        self.fields = f;
        self
    }
}

fn create(subject: &'static str, fields: &'static [(&'static str, &'static str)]) -> What {
    What::Create {
        subject,
        text: "Please help.",
        fields,
        to: None,
    }
}

fn act(action: &'static str) -> What {
    What::Act {
        action,
        comment: None,
        fields: &[],
    }
}

fn act_with(action: &'static str, comment: &'static str) -> What {
    What::Act {
        action,
        comment: Some(comment),
        fields: &[],
    }
}

use Expect::*;

pub fn partner_routing() -> Story {
    Story {
        preset: "partner-routing",
        steps: vec![
            step(ANNA, create("Printer on fire", &[]), Status("New"))
                .mailed(&["team@helpdesk.example", ANNA])
                .waiting("support"),
            step(
                ALICE,
                act_with("To IT Provider", "Please check the printer."),
                Status("On Partner"),
            )
            .mailed(&["support@itprov.example"])
            .waiting("partner:IT Provider"),
            step(
                OPS,
                act_with("To Customer", "Is it plugged in?"),
                Status("On Customer"),
            )
            .mailed(&["it@acme.example"])
            .waiting("customer"),
            step(
                ANNA,
                act_with("comment", "Yes, and it still burns."),
                Status("New"),
            )
            .mailed(&["team@helpdesk.example"])
            .waiting("support"),
            step(
                ANNA,
                act_with("To Web-IT Provider", "Maybe the web people know?"),
                RefusedAllowing(
                    "partner_not_involved",
                    &[
                        "comment",
                        "To Customer",
                        "To 2nd Level Support Provider",
                        "To IT Provider",
                    ],
                ),
            ),
            step(
                ALICE,
                act_with("Resolve", "Fire is out."),
                Status("Resolved"),
            )
            .mailed(&[ANNA, "it@acme.example"]),
            step(ANNA, act_with("Reopen", "It burns again."), Status("New"))
                .mailed(&["team@helpdesk.example"]),
            step(BEN, What::See, Visible(true)),
            step(CARL, What::See, Visible(false)),
        ],
    }
}

pub fn open_closed() -> Story {
    Story {
        preset: "open-closed",
        steps: vec![
            step(ANNA, create("VPN is down", &[]), Status("Open"))
                .mailed(&["support@itprov.example"])
                .waiting("partner:IT Provider"),
            step(OPS, act_with("Update", "We are on it."), Status("Open")).mailed(&[ANNA]),
            step(OPS, act("Close Ticket"), Refused("comment_required")),
            step(
                OPS,
                act_with("Close Ticket", "Fixed the tunnel."),
                Status("Closed"),
            )
            .mailed(&[ANNA]),
            step(ANNA, act_with("Update", "Thanks!"), Status("Closed")),
            step(ANNA, act("Reopen"), Status("Open")).mailed(&["support@itprov.example"]),
        ],
    }
}

pub fn itil_portal() -> Story {
    Story {
        preset: "itil-portal",
        steps: vec![
            step(
                ANNA,
                create("Mailbox full", &MAILBOX_REQUEST),
                Status("Open"),
            )
            .fields(&MAILBOX_REQUEST),
            step(
                ANNA,
                create(
                    "Payroll broken",
                    &[
                        ("service", "Payroll"),
                        ("sub_category", "Salaries"),
                        ("impact", "low"),
                        ("urgency", "low"),
                    ],
                ),
                Refused("invalid_field"),
            ),
            step(
                ALICE,
                act_with("Resolve", "Quota raised."),
                Status("Resolved"),
            )
            .mailed(&[ANNA]),
            step(ANNA, act("Reopen"), Refused("comment_required")),
            step(ANNA, act_with("Reopen", "Still full."), Status("Open")),
            step(
                ALICE,
                act_with("Resolve", "Archived old mail."),
                Status("Resolved"),
            ),
            step(
                ANNA,
                What::Act {
                    action: "Close",
                    comment: Some("Works now, thanks."),
                    fields: &[("satisfaction", "4")],
                },
                Status("Closed"),
            )
            .fields(&[("satisfaction", "4")]),
            step(ANNA, act_with("Reopen", "Again?"), Refused("final")),
            step(BEN, What::See, Visible(true)),
            step(CARL, What::See, Visible(false)),
        ],
    }
}

pub fn triage() -> Story {
    Story {
        preset: "triage",
        steps: vec![
            step(
                ANNA,
                create("App crashes on start", &[("request_type", "Bug report")]),
                Status("Waiting for triage"),
            )
            .fields(&[("request_type", "Bug report")]),
            step(ALICE, act("Start"), Status("Waiting for support")),
            step(
                ALICE,
                act_with("To Customer", "Which version?"),
                Status("Waiting for customer"),
            )
            .mailed(&[ANNA])
            .waiting("customer"),
            step(
                ANNA,
                act_with("comment", "Version 2.1."),
                Status("Waiting for support"),
            )
            .waiting("support"),
            step(ALICE, act("Escalate to dev"), Refused("comment_required")),
            step(
                ALICE,
                act_with(
                    "Escalate to dev",
                    "Reproduced: null pointer in the start screen.",
                ),
                Status("Work in progress"),
            )
            .mailed(&["dev@helpdesk.example"])
            .waiting("group:development"),
            step(ALICE, act("Back to support"), Status("Waiting for support")),
            step(
                ALICE,
                act_with("Finish", "Fixed in 2.2."),
                Status("Finished"),
            )
            .mailed(&[ANNA]),
            step(
                ANNA,
                What::Create {
                    subject: "Please delete my data",
                    text: "Under the GDPR.",
                    fields: &[],
                    to: Some("support+gdpr-delete@helpdesk.example"),
                },
                Status("Waiting for triage"),
            )
            .fields(&[("request_type", "GDPR: delete my personal data")]),
        ],
    }
}

pub fn co_managed() -> Story {
    Story {
        preset: "co-managed",
        steps: vec![
            step(
                ANNA,
                create("Laptop broken", &[("request_type", "Hardware")]),
                Status("New"),
            )
            .fields(&[("queue", "Hardware"), ("work_type", "Remote support")]),
            step(
                ANNA,
                create("Odd request", &[("request_type", "Gadgets")]),
                Status("New"),
            )
            .fields(&[
                ("queue", "Customer portal"),
                ("work_type", "Remote support"),
            ]),
            step(
                ALICE,
                act("Assign to customer IT"),
                Refused("comment_required"),
            ),
            step(
                ALICE,
                act_with("Assign to customer IT", "Please swap the laptop on site."),
                Status("With customer IT"),
            )
            .mailed(&[BEN])
            .waiting("customer_it"),
            step(
                BEN,
                act_with("Back to help desk", "Swapped, needs a reinstall."),
                Status("In Progress"),
            )
            .waiting("support"),
            step(
                ALICE,
                act_with("I have a question", "Which model did you put in?"),
                Status("In Progress"),
            )
            .mailed(&[BEN]),
            step(
                ALICE,
                act_with("My work is done", "Image deployed."),
                Status("With customer IT"),
            )
            .mailed(&[BEN]),
            step(BEN, act("Complete"), Status("Complete")).mailed(&[ANNA]),
        ],
    }
}

pub fn all() -> Vec<Story> {
    vec![
        partner_routing(),
        open_closed(),
        itil_portal(),
        triage(),
        co_managed(),
    ]
}

/// What a refusal with this code says: on stderr, in a "not done" notice or a refusal mail.
pub fn reason_text(code: &str) -> &'static str {
    match code {
        "partner_not_involved" => "is not involved in this ticket",
        "comment_required" => "needs a comment",
        "final" => "which is final",
        "invalid_field" => "is not allowed; allowed:",
        other => panic!("no text known for refusal code {other}"),
    }
}
