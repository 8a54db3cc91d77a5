//! Settings: one TOML file read with the `config` crate, every key overridable by environment
//! variables `DESKMAIL__SECTION__KEY`, secrets read from `*_file` keys.
//!
//! The file is parsed into plain `Raw*` structs, then resolved into [`Settings`]: relative paths
//! against the file's directory, the workflow loaded and checked, the directory built. Every
//! problem is collected and reported at once, each naming the file and the key; what works but
//! deserves the admin's eye (a store URL parameter the driver ignores) becomes a warning.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::directory::{
    Access, Agent, AgentGroup, Directory, Helpdesk, Member, Organisation, Partner, PartnerMember,
    normalize_address,
};
use crate::ticket_number::TicketFormat;

mod auth;
mod daemon;
mod inbound;
mod outbound;
mod sources;
mod urls;
use crate::workflow::{self, Workflow};
pub use auth::{Auth, Flow, Login, OAuth2Settings};
pub use daemon::DaemonSettings;
pub use inbound::{InboundSettings, UnverifiedPolicy};
pub use outbound::{OutboundSettings, SmtpSettings, SmtpTls};
pub use sources::{ImapSettings, ImapTls, MaildirSettings, Source, Start};
pub(crate) use urls::decode as decode_form;
pub use urls::{ignored_params, redact_url, redact_urls_in};

/// The locales deskmail has templates for.
pub const LOCALES: [&str; 2] = ["en", "de"];

/// One thing wrong with the configuration: `FILE: KEY: message`, or `VARIABLE: message` when
/// the value came from the environment (`DESKMAIL__STORE__ULR: unknown key ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub key: String,
    pub message: String,
    /// The `DESKMAIL__*` variable that set the key, when one did.
    pub env: Option<String>,
}

impl Problem {
    /// A problem of `key`, blamed on the environment variable that set it (or a key under it:
    /// `logg` is an unknown section when `DESKMAIL__LOGG__LEVEL` is set), else on `file`.
    pub fn new(file: impl Into<String>, key: impl Into<String>, message: String) -> Problem {
        let key = key.into();
        let under = format!("{key}.");
        let vars = env_keys();
        let env = vars.get(&key).cloned().or_else(|| {
            vars.range(under.clone()..)
                .take_while(|(k, _)| k.starts_with(&under))
                .map(|(_, var)| var.clone())
                .next()
        });
        Problem {
            file: file.into(),
            key,
            message,
            env,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.env {
            // The variable's name says the key.
            Some(var) => write!(f, "{var}: {}", self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

/// All the problems of a configuration.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<Problem>);

/// A value that is never printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the workflow comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowSource {
    Preset(String),
    File(PathBuf),
}

impl fmt::Display for WorkflowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowSource::Preset(p) => write!(f, "preset {p}"),
            WorkflowSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// A mailbox deskmail serves.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub name: String,
    pub address: String,
    pub request_type: Option<String>,
    pub queue: Option<String>,
    /// Plus-parts of the address (`support+bug@`) that pick their own request type and queue.
    pub plus: std::collections::BTreeMap<String, PlusFields>,
    /// Where `deskmail run` fetches the mailbox's mail; `None`: it comes by the MTA's pipe.
    pub source: Option<Source>,
}

/// What a plus-part of a mailbox's address sets on a new ticket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlusFields {
    pub request_type: Option<String>,
    pub queue: Option<String>,
}

/// The resolved settings every command works from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub file: PathBuf,
    pub directory: Directory,
    pub workflow: Workflow,
    pub workflow_source: WorkflowSource,
    pub store_url: Secret,
    /// SQLite's writer's page cache, MiB (`store.cache_mib`).
    pub store_cache_mib: u32,
    pub mailboxes: Vec<Mailbox>,
    pub ticket_format: TicketFormat,
    pub log_level: String,
    pub log_format: LogFormat,
    pub outbound: OutboundSettings,
    pub inbound: InboundSettings,
    pub daemon: DaemonSettings,
    /// What works but deserves the admin's eye (`check-config` prints these; other commands
    /// log them as warnings).
    pub warnings: Vec<Problem>,
}

impl Settings {
    /// The mailbox that receives mail at this address (plus-part ignored).
    pub fn mailbox_for(&self, address: &str) -> Option<&Mailbox> {
        let address = normalize_address(address);
        let base = match address.split_once('@') {
            Some((local, domain)) => {
                format!("{}@{domain}", local.split('+').next().unwrap_or(local))
            }
            None => address.clone(),
        };
        self.mailboxes
            .iter()
            .find(|m| m.address == address || m.address == base)
    }
}

// ----- the file's shape ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelpdesk {
    name: Option<String>,
    address: Option<String>,
    ticket_prefix: Option<String>,
    ticket_format: Option<String>,
    time_zone: Option<String>,
    locale: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    url_file: Option<String>,
    cache_mib: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    preset: Option<String>,
    file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: String,
    address: String,
    request_type: Option<String>,
    queue: Option<String>,
    #[serde(default)]
    plus: std::collections::BTreeMap<String, RawPlus>,
    imap: Option<sources::RawImap>,
    maildir: Option<sources::RawMaildir>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlus {
    request_type: Option<String>,
    queue: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    notify: Option<String>,
    #[serde(default)]
    agents: Vec<RawPerson>,
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    address: String,
    #[serde(default)]
    name: String,
    locale: Option<String>,
    time_zone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    name: String,
    locale: Option<String>,
    time_zone: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    support_group: Vec<String>,
    #[serde(default)]
    partners: Vec<String>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default)]
    members: Vec<RawMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    #[serde(default)]
    sub_categories: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    address: String,
    #[serde(default)]
    name: String,
    #[serde(default = "portal")]
    access: String,
    #[serde(default)]
    customer_it: bool,
    locale: Option<String>,
    time_zone: Option<String>,
}

fn portal() -> String {
    "portal".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    name: String,
    #[serde(default)]
    support_group: Vec<String>,
    #[serde(default)]
    members: Vec<RawPerson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line (for a log collector).
    Json,
}

const SECTIONS: [&str; 11] = [
    "helpdesk",
    "store",
    "workflow",
    "mailboxes",
    "team",
    "organisations",
    "partners",
    "log",
    "outbound",
    "inbound",
    "daemon",
];

// ----- loading -----------------------------------------------------------------------------------

pub(crate) struct Loader {
    file: String,
    dir: PathBuf,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Loader {
    pub(crate) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let p = Problem::new(self.file.clone(), key, message.into());
        self.problems.push(p);
    }

    pub(crate) fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let w = Problem::new(self.file.clone(), key, message.into());
        self.warnings.push(w);
    }

    /// Reads one section; `None` (with the problem recorded, naming the exact key) when it does
    /// not have the expected shape. A missing section is its default.
    fn section<T: DeserializeOwned + Default>(
        &mut self,
        cfg: &config::Config,
        key: &str,
    ) -> Option<T> {
        match cfg.get::<config::Value>(key) {
            Ok(v) => self.shape(key, v),
            Err(config::ConfigError::NotFound(_)) => Some(T::default()),
            Err(e) => {
                self.problem(key, clean_error(&e.to_string()));
                None
            }
        }
    }

    /// Reads an array of tables element by element, so that one bad entry does not hide the
    /// others; bad entries are reported and left out.
    fn list<T: DeserializeOwned>(&mut self, cfg: &config::Config, key: &str) -> Vec<T> {
        let items = match cfg.get::<Vec<config::Value>>(key) {
            Ok(items) => items,
            Err(config::ConfigError::NotFound(_)) => return Vec::new(),
            Err(e) => {
                self.problem(key, clean_error(&e.to_string()));
                return Vec::new();
            }
        };
        items
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| self.shape(&format!("{key}[{i}]"), v))
            .collect()
    }

    fn shape<T: DeserializeOwned>(&mut self, key: &str, v: config::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(v) {
            Ok(t) => Some(t),
            Err(e) => {
                let path = e.path().to_string();
                let at = if path.is_empty() || path == "." {
                    key.to_string()
                } else {
                    format!("{key}.{path}")
                };
                self.problem(at, clean_error(&e.into_inner().to_string()));
                None
            }
        }
    }

    pub(crate) fn resolve_path(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    pub(crate) fn address(&mut self, key: &str, address: &str) -> String {
        let a = normalize_address(address);
        let valid = a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !a.contains(char::is_whitespace)
        });
        if !valid {
            self.problem(key, format!("\"{address}\" is not a mail address"));
        }
        a
    }

    /// A person's time zone: their own (checked) or the help desk's (checked once, there).
    fn time_zone(&mut self, key: &str, tz: Option<&str>, default: &str) -> String {
        let Some(tz) = tz else {
            return default.to_string();
        };
        if jiff::tz::TimeZone::get(tz).is_err() {
            self.problem(
                key,
                format!("unknown time zone \"{tz}\" (an IANA name such as Europe/Berlin)"),
            );
        }
        tz.to_string()
    }

    /// A person's locale: their own (checked) or the help desk's (checked once, there).
    fn locale(&mut self, key: &str, locale: Option<&str>, default: &str) -> String {
        let Some(l) = locale else {
            return default.to_string();
        };
        let l = l.to_lowercase();
        if !LOCALES.contains(&l.as_str()) {
            self.problem(
                key,
                format!(
                    "locale \"{l}\" is not supported (supported: {})",
                    LOCALES.join(", ")
                ),
            );
        }
        l
    }
}

/// `config`'s messages end with "for key `x` in FILE"; the problem names both already. serde
/// says "field" where the admin wrote a key. A value quoted in the message may be a store URL
/// with its password.
fn clean_error(message: &str) -> String {
    let message = redact_urls_in(message);
    let message = match message.find(" for key `") {
        Some(i) => &message[..i],
        None => &message,
    };
    match message.strip_prefix("unknown field ") {
        Some(rest) => format!("unknown key {rest}"),
        None => message.to_string(),
    }
}

/// The keys the `DESKMAIL__*` variables set (`store.url` for `DESKMAIL__STORE__URL`), read as
/// the `config` crate reads them: the prefix in any case, `__` between the parts, lower-cased.
fn env_keys() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(var, _)| var.into_string().ok())
        .filter_map(|var| {
            let key = var
                .to_lowercase()
                .strip_prefix("deskmail__")?
                .replace("__", ".");
            Some((key, var))
        })
        .collect()
}

/// Reads and resolves the configuration file, with `DESKMAIL__*` overrides from the environment.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    let file = path.display().to_string();
    let problem = |message: String| ConfigErrors(vec![Problem::new(file.clone(), "-", message)]);
    if !path.exists() {
        return Err(problem("the file does not exist".into()));
    }
    let cfg = config::Config::builder()
        .add_source(config::File::new(&file, config::FileFormat::Toml).required(true))
        .add_source(
            config::Environment::with_prefix("DESKMAIL")
                .prefix_separator("__")
                .separator("__"),
        )
        .build()
        // A syntax error quotes its line, which may be the store URL's.
        .map_err(|e| problem(redact_urls_in(&e.to_string())))?;
    let dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut l = Loader {
        file,
        dir,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if let Ok(root) = cfg
        .clone()
        .try_deserialize::<std::collections::BTreeMap<String, config::Value>>()
    {
        for key in root.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                l.problem(
                    key.clone(),
                    format!("unknown section (known: {})", SECTIONS.join(", ")),
                );
            }
        }
    }
    let helpdesk: Option<RawHelpdesk> = l.section(&cfg, "helpdesk");
    let store: RawStore = l.section(&cfg, "store").unwrap_or_default();
    let wf: RawWorkflow = l.section(&cfg, "workflow").unwrap_or_default();
    let mailboxes: Vec<RawMailbox> = l.list(&cfg, "mailboxes");
    let team: Option<RawTeam> = l.section(&cfg, "team");
    let organisations: Vec<RawOrganisation> = l.list(&cfg, "organisations");
    let partners: Vec<RawPartner> = l.list(&cfg, "partners");
    let log: RawLog = l.section(&cfg, "log").unwrap_or_default();
    let outbound: outbound::RawOutbound = l.section(&cfg, "outbound").unwrap_or_default();
    let outbound = outbound::resolve(&mut l, outbound);
    let inbound: inbound::RawInbound = l.section(&cfg, "inbound").unwrap_or_default();
    let inbound = inbound::resolve(&mut l, inbound);
    let daemon: daemon::RawDaemon = l.section(&cfg, "daemon").unwrap_or_default();
    let daemon = daemon::resolve(&mut l, daemon);
    let log_format = match log.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            l.problem(
                "log.format",
                format!("\"{other}\" is not one of text, json"),
            );
            LogFormat::Text
        }
    };
    let log_level = log.level.unwrap_or_else(|| "info".into());
    if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
        l.problem(
            "log.level",
            format!("\"{log_level}\" is not one of error, warn, info, debug, trace"),
        );
    }

    // A section that failed to read is reported once; its parts are not reported missing.
    let checked = Checked {
        helpdesk: helpdesk.is_some(),
        team: team.is_some(),
    };
    let helpdesk = helpdesk.unwrap_or_default();
    let team = team.unwrap_or_default();
    let directory = build_directory(&mut l, checked, &helpdesk, &team, &organisations, &partners);
    let ticket_format = ticket_format(&mut l, &helpdesk, &directory.helpdesk.time_zone);
    let store_url = store_url(&mut l, &store);
    let store_cache_mib = store.cache_mib.unwrap_or(crate::store::DEFAULT_CACHE_MIB);
    if !(1..=65_536).contains(&store_cache_mib) {
        l.problem("store.cache_mib", "must be from 1 to 65536 (MiB)");
    }
    let mailboxes = build_mailboxes(&mut l, mailboxes, &directory);
    let (workflow, workflow_source) = load_workflow(&mut l, &wf, &directory);
    if let Some(wf) = &workflow {
        check_mailbox_fields(&mut l, &mailboxes, wf);
    }

    if !l.problems.is_empty() {
        return Err(ConfigErrors(l.problems));
    }
    Ok(Settings {
        file: path.to_path_buf(),
        directory,
        workflow: workflow.expect("no problems means the workflow loaded"),
        workflow_source,
        store_url: store_url.expect("no problems means a store url"),
        store_cache_mib,
        mailboxes,
        ticket_format: ticket_format.expect("no problems means a ticket format"),
        log_level,
        log_format,
        outbound,
        inbound,
        daemon,
        warnings: l.warnings,
    })
}

/// Which sections were read, so that their missing keys are worth reporting.
#[derive(Clone, Copy)]
struct Checked {
    helpdesk: bool,
    team: bool,
}

fn build_directory(
    l: &mut Loader,
    checked: Checked,
    helpdesk: &RawHelpdesk,
    team: &RawTeam,
    organisations: &[RawOrganisation],
    partners: &[RawPartner],
) -> Directory {
    let mut seen = BTreeSet::new();
    let mut unique = |l: &mut Loader, key: &str, a: &str| {
        if !seen.insert(a.to_string()) {
            l.problem(
                key,
                format!("{a} is listed more than once in the directory"),
            );
        }
    };
    let name = helpdesk.name.clone().unwrap_or_default();
    if name.trim().is_empty() && checked.helpdesk {
        l.problem("helpdesk.name", "missing: the help desk's display name");
    }
    let address = match &helpdesk.address {
        Some(a) => l.address("helpdesk.address", a),
        None => {
            if checked.helpdesk {
                l.problem(
                    "helpdesk.address",
                    "missing: the address deskmail receives mail at",
                );
            }
            String::new()
        }
    };
    let tz = l.time_zone("helpdesk.time_zone", helpdesk.time_zone.as_deref(), "UTC");
    let locale = l.locale("helpdesk.locale", helpdesk.locale.as_deref(), "en");
    // Reported above; people who inherit it are not reported again.
    let tz = if jiff::tz::TimeZone::get(&tz).is_ok() {
        tz
    } else {
        "UTC".into()
    };
    let locale = if LOCALES.contains(&locale.as_str()) {
        locale
    } else {
        "en".into()
    };
    let team_address = match &team.notify {
        Some(a) => {
            let a = l.address("team.notify", a);
            if a == address {
                l.problem(
                    "team.notify",
                    "must differ from helpdesk.address: notifications to the team would come back in as mail",
                );
            }
            a
        }
        None => {
            if checked.team {
                l.problem(
                    "team.notify",
                    "missing: the support team's notification address",
                );
            }
            String::new()
        }
    };
    let mut agents = Vec::new();
    for (i, a) in team.agents.iter().enumerate() {
        let key = format!("team.agents[{i}]");
        let address = l.address(&format!("{key}.address"), &a.address);
        unique(l, &format!("{key}.address"), &address);
        agents.push(Agent {
            address,
            name: a.name.clone(),
            locale: l.locale(&format!("{key}.locale"), a.locale.as_deref(), &locale),
            time_zone: l.time_zone(&format!("{key}.time_zone"), a.time_zone.as_deref(), &tz),
            own_locale: a.locale.is_some(),
        });
    }
    let mut groups = Vec::new();
    for (i, g) in team.groups.iter().enumerate() {
        groups.push(AgentGroup {
            name: g.name.clone(),
            address: l.address(&format!("team.groups[{i}].address"), &g.address),
        });
    }
    let mut partner_list = Vec::new();
    for (i, p) in partners.iter().enumerate() {
        let key = format!("partners[{i}]");
        if partner_list
            .iter()
            .any(|x: &Partner| x.name.eq_ignore_ascii_case(&p.name))
        {
            l.problem(
                format!("{key}.name"),
                format!("partner \"{}\" is listed twice", p.name),
            );
        }
        let support_group = p
            .support_group
            .iter()
            .map(|a| l.address(&format!("{key}.support_group"), a))
            .collect();
        let mut members = Vec::new();
        for (j, m) in p.members.iter().enumerate() {
            let mkey = format!("{key}.members[{j}]");
            let address = l.address(&format!("{mkey}.address"), &m.address);
            unique(l, &format!("{mkey}.address"), &address);
            members.push(PartnerMember {
                address,
                name: m.name.clone(),
                locale: l.locale(&format!("{mkey}.locale"), m.locale.as_deref(), &locale),
                time_zone: l.time_zone(&format!("{mkey}.time_zone"), m.time_zone.as_deref(), &tz),
            });
        }
        partner_list.push(Partner {
            name: p.name.clone(),
            members,
            support_group,
        });
    }
    let mut orgs = Vec::new();
    let mut domains_seen = BTreeSet::new();
    for (i, o) in organisations.iter().enumerate() {
        let key = format!("organisations[{i}]");
        for d in &o.domains {
            if !domains_seen.insert(d.to_lowercase()) {
                l.problem(
                    format!("{key}.domains"),
                    format!("domain {d} belongs to two organisations"),
                );
            }
        }
        for p in &o.partners {
            if !partner_list.iter().any(|x| &x.name == p) {
                l.problem(
                    format!("{key}.partners"),
                    format!("unknown partner \"{p}\" (the [[partners]] names)"),
                );
            }
        }
        let support_group = o
            .support_group
            .iter()
            .map(|a| l.address(&format!("{key}.support_group"), a))
            .collect();
        let mut members = Vec::new();
        for (j, m) in o.members.iter().enumerate() {
            let mkey = format!("{key}.members[{j}]");
            let address = l.address(&format!("{mkey}.address"), &m.address);
            unique(l, &format!("{mkey}.address"), &address);
            let access = match m.access.as_str() {
                "portal" => Access::Portal,
                "power" => Access::Power,
                other => {
                    l.problem(
                        format!("{mkey}.access"),
                        format!("\"{other}\" is neither portal nor power"),
                    );
                    Access::Portal
                }
            };
            members.push(Member {
                address,
                name: m.name.clone(),
                access,
                customer_it: m.customer_it,
                locale: l.locale(&format!("{mkey}.locale"), m.locale.as_deref(), &locale),
                time_zone: l.time_zone(&format!("{mkey}.time_zone"), m.time_zone.as_deref(), &tz),
            });
        }
        orgs.push(Organisation {
            locale: l.locale(&format!("{key}.locale"), o.locale.as_deref(), &locale),
            time_zone: l.time_zone(&format!("{key}.time_zone"), o.time_zone.as_deref(), &tz),
            name: o.name.clone(),
            domains: o.domains.iter().map(|d| d.to_lowercase()).collect(),
            members,
            support_group,
            partners: o.partners.clone(),
            services: o
                .services
                .iter()
                .map(|s| (s.name.clone(), s.sub_categories.clone()))
                .collect(),
        });
    }
    Directory {
        helpdesk: Helpdesk {
            name,
            address,
            team_address,
            time_zone: tz,
            locale,
        },
        agents,
        groups,
        organisations: orgs,
        partners: partner_list,
    }
}

fn ticket_format(l: &mut Loader, h: &RawHelpdesk, tz: &str) -> Option<TicketFormat> {
    let prefix = h.ticket_prefix.clone().unwrap_or_else(|| "SUP".into());
    let pattern = h
        .ticket_format
        .clone()
        .unwrap_or_else(|| crate::ticket_number::DEFAULT_FORMAT.into());
    match TicketFormat::new(&pattern, &prefix, tz) {
        Ok(f) => Some(f),
        Err(e) => {
            l.problem("helpdesk.ticket_format", e);
            None
        }
    }
}

fn store_url(l: &mut Loader, s: &RawStore) -> Option<Secret> {
    let url = match (&s.url, &s.url_file) {
        (Some(_), Some(_)) => {
            l.problem(
                "store.url_file",
                "set store.url or store.url_file, not both",
            );
            return None;
        }
        (Some(u), None) => u.trim().to_string(),
        (None, Some(f)) => {
            let path = l.resolve_path(f);
            match std::fs::read_to_string(&path) {
                Ok(u) => u.trim().to_string(),
                Err(e) => {
                    l.problem(
                        "store.url_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    return None;
                }
            }
        }
        (None, None) => "sqlite://data/deskmail.sqlite".to_string(),
    };
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() {
            l.problem("store.url", "a sqlite URL needs a file: sqlite://PATH");
            return None;
        }
        let abs = l.resolve_path(path);
        let mut resolved = format!("sqlite://{}", abs.display());
        if let Some(q) = query {
            resolved.push('?');
            resolved.push_str(q);
        }
        Some(Secret::new(resolved))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        for key in ignored_params(&url) {
            l.warning(
                "store.url",
                format!(
                    "the parameter \"{key}\" is not one deskmail's PostgreSQL driver reads; it is ignored"
                ),
            );
        }
        Some(Secret::new(url))
    } else {
        l.problem(
            "store.url",
            "must start with sqlite:// or postgres:// (the value is not shown: it may hold a password)",
        );
        None
    }
}

fn build_mailboxes(l: &mut Loader, raw: Vec<RawMailbox>, dir: &Directory) -> Vec<Mailbox> {
    let mut out: Vec<Mailbox> = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let key = format!("mailboxes[{i}]");
        if out.iter().any(|o| o.name == m.name) {
            l.problem(
                format!("{key}.name"),
                format!("mailbox \"{}\" is listed twice", m.name),
            );
        }
        if m.name == "smtp" {
            l.problem(
                format!("{key}.name"),
                "\"smtp\" names [outbound.smtp] in `deskmail auth login`: give the mailbox another name",
            );
        }
        let address = l.address(&format!("{key}.address"), &m.address);
        if address == dir.helpdesk.team_address {
            l.problem(
                format!("{key}.address"),
                "is team.notify: deskmail would read its own notifications",
            );
        }
        let plus = m
            .plus
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_lowercase(),
                    PlusFields {
                        request_type: v.request_type,
                        queue: v.queue,
                    },
                )
            })
            .collect();
        let source = sources::resolve(l, &key, m.imap, m.maildir);
        out.push(Mailbox {
            name: m.name,
            address,
            request_type: m.request_type,
            queue: m.queue,
            plus,
            source,
        });
    }
    out
}

/// A mailbox's request type and queue must be values the workflow accepts.
fn check_mailbox_fields(l: &mut Loader, mailboxes: &[Mailbox], wf: &Workflow) {
    for (i, m) in mailboxes.iter().enumerate() {
        let mut checks = vec![
            (
                format!("mailboxes[{i}].request_type"),
                "request_type",
                &m.request_type,
            ),
            (format!("mailboxes[{i}].queue"), "queue", &m.queue),
        ];
        for (plus, f) in &m.plus {
            checks.push((
                format!("mailboxes[{i}].plus.{plus}.request_type"),
                "request_type",
                &f.request_type,
            ));
            checks.push((
                format!("mailboxes[{i}].plus.{plus}.queue"),
                "queue",
                &f.queue,
            ));
        }
        for (key, field, value) in checks {
            let Some(value) = value else { continue };
            let one = std::collections::BTreeMap::from([(field.to_string(), value.clone())]);
            if let Err(r) = workflow::engine::validate_fields(wf, &one) {
                l.problem(key, format!("{r} (workflow {})", wf.name));
            }
        }
    }
}

fn load_workflow(
    l: &mut Loader,
    raw: &RawWorkflow,
    dir: &Directory,
) -> (Option<Workflow>, WorkflowSource) {
    let (source, key, text) = match (&raw.preset, &raw.file) {
        (Some(_), Some(_)) => {
            l.problem("workflow", "set workflow.preset or workflow.file, not both");
            return (None, WorkflowSource::Preset(String::new()));
        }
        (None, Some(f)) => {
            let path = l.resolve_path(f);
            match std::fs::read_to_string(&path) {
                Ok(t) => (WorkflowSource::File(path), "workflow.file", t),
                Err(e) => {
                    l.problem(
                        "workflow.file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    return (None, WorkflowSource::File(path));
                }
            }
        }
        (preset, None) => {
            let name = preset
                .clone()
                .unwrap_or_else(|| workflow::presets::DEFAULT.into());
            match workflow::presets::source(&name) {
                Some(t) => (
                    WorkflowSource::Preset(name),
                    "workflow.preset",
                    t.to_string(),
                ),
                None => {
                    l.problem(
                        "workflow.preset",
                        format!(
                            "unknown preset \"{name}\" (presets: {})",
                            workflow::presets::names().join(", ")
                        ),
                    );
                    return (None, WorkflowSource::Preset(name));
                }
            }
        }
    };
    let at = match &source {
        WorkflowSource::File(p) => format!("{key} ({})", p.display()),
        WorkflowSource::Preset(_) => key.to_string(),
    };
    let wf = match workflow::parse(&text) {
        Ok(wf) => wf,
        Err(e) => {
            l.problem(
                at,
                format!("not a valid workflow: {}", e.to_string().trim()),
            );
            return (None, source);
        }
    };
    let problems = workflow::validate(&wf, dir);
    if !problems.is_empty() {
        for p in problems {
            l.problem(at.clone(), format!("inconsistent workflow: {p}"));
        }
        return (None, source);
    }
    (Some(wf), source)
}

/// Finds the config file: `--config`, else `DESKMAIL_CONFIG`, else `./deskmail.toml`, else
/// `/etc/deskmail/deskmail.toml`.
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("DESKMAIL_CONFIG") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("deskmail.toml");
    if local.exists() {
        return local;
    }
    PathBuf::from("/etc/deskmail/deskmail.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "[redacted]");
    }

    #[test]
    fn clean_error_drops_the_key_suffix() {
        assert_eq!(
            clean_error(
                "invalid type: string \"x\", expected a boolean for key `team.x` in f.toml"
            ),
            "invalid type: string \"x\", expected a boolean"
        );
        assert_eq!(
            clean_error("unknown field `ulr`, expected `url` or `url_file` for key `store.ulr`"),
            "unknown key `ulr`, expected `url` or `url_file`"
        );
    }
}
