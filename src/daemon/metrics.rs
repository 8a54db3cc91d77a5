//! What `/metrics` shows (OpenMetrics text, which Prometheus reads): mails by mailbox and
//! outcome, notifications by outcome, the outbox's depth and its oldest row's age, each
//! mailbox's connection and the mails moved out of it, how long a mail takes from its arrival
//! to its commit on disk and to its notifications accepted, and each OAuth2 account's tokens.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::oauth2::TokenSource;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabels {
    pub mailbox: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabels {
    pub mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabels {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    pub account: String,
    pub result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Seconds, from 5 ms to about 80 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 15)
}

pub struct Metrics {
    registry: Registry,
    pub mails: Family<MailLabels, Counter>,
    pub notifications: Family<OutcomeLabels, Counter>,
    pub outbox_depth: Gauge,
    pub outbox_oldest_age: FloatGauge,
    pub connected: Family<MailboxLabels, Gauge>,
    pub idle: Family<MailboxLabels, Gauge>,
    pub last_sync: Family<MailboxLabels, FloatGauge>,
    pub lease_held: Family<MailboxLabels, Gauge>,
    pub moved: Family<MailboxLabels, Counter>,
    pub to_commit: Histogram,
    pub to_accepted: Histogram,
    oauth2: OAuth2Metrics,
}

/// The OAuth2 accounts' tokens, read off their sources when `/metrics` is asked.
#[derive(Default)]
struct OAuth2Metrics {
    access_expiry: Family<AccountLabels, FloatGauge>,
    refresh_expiry: Family<AccountLabels, FloatGauge>,
    secret_expiry: Family<AccountLabels, FloatGauge>,
    last_ok: Family<AccountLabels, Gauge>,
    refreshes: Family<RefreshLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("deskmail"),
            mails: Family::default(),
            notifications: Family::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest_age: FloatGauge::default(),
            connected: Family::default(),
            idle: Family::default(),
            last_sync: Family::default(),
            lease_held: Family::default(),
            moved: Family::default(),
            to_commit: Histogram::new(latency_buckets()),
            to_accepted: Histogram::new(latency_buckets()),
            oauth2: OAuth2Metrics::default(),
        };
        let r = &mut m.registry;
        r.register(
            "mails",
            "Mails taken in, by mailbox and outcome",
            m.mails.clone(),
        );
        r.register(
            "notifications",
            "Notifications by outcome of their delivery (sent, retrying, failed)",
            m.notifications.clone(),
        );
        r.register(
            "outbox_depth",
            "Notifications waiting to be sent",
            m.outbox_depth.clone(),
        );
        r.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest notification waiting to be sent",
            m.outbox_oldest_age.clone(),
        );
        r.register(
            "mailbox_connected",
            "1 while the mailbox's server is connected and logged in",
            m.connected.clone(),
        );
        r.register(
            "mailbox_idle",
            "1 while the mailbox waits with IDLE, 0 while it polls",
            m.idle.clone(),
        );
        r.register(
            "mailbox_last_sync_timestamp_seconds",
            "When the mailbox was last read to its end (Unix time)",
            m.last_sync.clone(),
        );
        r.register(
            "mailbox_lease_held",
            "1 while this daemon holds the mailbox's lease",
            m.lease_held.clone(),
        );
        r.register(
            "mails_moved",
            "Mails moved out of the watched folder, to the processed or failed folder",
            m.moved.clone(),
        );
        r.register(
            "mail_to_commit_seconds",
            "From a mail's arrival at deskmail to its commit on disk",
            m.to_commit.clone(),
        );
        r.register(
            "mail_to_notification_seconds",
            "From a change's commit to its notification accepted by the mail server",
            m.to_accepted.clone(),
        );
        let o = &m.oauth2;
        r.register(
            "oauth2_access_token_expiry_timestamp_seconds",
            "When the OAuth2 account's access token expires (Unix time); it is renewed 5 minutes before",
            o.access_expiry.clone(),
        );
        r.register(
            "oauth2_refresh_token_expiry_timestamp_seconds",
            "When the OAuth2 account's refresh token expires, where the provider says (Unix time)",
            o.refresh_expiry.clone(),
        );
        r.register(
            "oauth2_client_secret_expiry_timestamp_seconds",
            "When the OAuth2 application's client secret expires (client_secret_expires, Unix time)",
            o.secret_expiry.clone(),
        );
        r.register(
            "oauth2_last_refresh_ok",
            "1 when the OAuth2 account's last token request succeeded, 0 when it failed",
            o.last_ok.clone(),
        );
        r.register(
            "oauth2_refreshes",
            "OAuth2 token requests, by account and result (ok, failed)",
            o.refreshes.clone(),
        );
        m
    }

    /// The text `/metrics` answers with.
    pub fn encode(&self) -> String {
        self.oauth2.read_sources();
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn mailbox(name: &str) -> MailboxLabels {
        MailboxLabels {
            mailbox: name.to_string(),
        }
    }

    /// Counts a mail by its mailbox and outcome.
    pub fn mail(&self, mailbox: &str, outcome: &str) {
        self.mails
            .get_or_create(&MailLabels {
                mailbox: mailbox.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts notifications by outcome.
    pub fn notified(&self, outcome: &str, n: usize) {
        if n > 0 {
            self.notifications
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_string(),
                })
                .inc_by(n as u64);
        }
    }
}

impl OAuth2Metrics {
    fn read_sources(&self) {
        let seconds = |t: jiff::Timestamp| t.as_millisecond() as f64 / 1000.0;
        for source in TokenSource::all() {
            let status = source.status();
            let account = AccountLabels {
                account: source.account().to_string(),
            };
            if let Some(t) = status.access_expires_at {
                self.access_expiry.get_or_create(&account).set(seconds(t));
            }
            if let Some(t) = status.refresh_expires_at {
                self.refresh_expiry.get_or_create(&account).set(seconds(t));
            }
            if let Some(date) = source.settings().client_secret_expires
                && let Ok(t) = date.to_zoned(jiff::tz::TimeZone::UTC)
            {
                let t = seconds(t.timestamp());
                self.secret_expiry.get_or_create(&account).set(t);
            }
            if status.refreshes_ok + status.refreshes_failed > 0 {
                let ok = i64::from(status.last_error.is_none());
                self.last_ok.get_or_create(&account).set(ok);
            }
            for (result, total) in [
                ("ok", status.refreshes_ok),
                ("failed", status.refreshes_failed),
            ] {
                let labels = RefreshLabels {
                    account: account.account.clone(),
                    result: result.to_string(),
                };
                let counter = self.refreshes.get_or_create(&labels);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
