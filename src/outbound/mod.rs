//! Outbound mail: templates, signed reply addresses, the message itself, and the transports the
//! outbox delivers through. The desk writes notifications into the outbox in the same transaction
//! as the change; only the outbox sender (`desk::outbox`) sends.

pub mod compose;
pub mod message;
pub mod mime;
pub mod refusal_text;
pub mod render;
pub mod transport;

use crate::config::OutboundSettings;
use crate::reply_token::{self, TokenKey};

pub use render::Templates;
pub use transport::{SendError, Transport};

/// What composing notifications needs at hand: the settings, the compiled templates and the key
/// that signs reply addresses.
#[derive(Debug)]
pub struct Outbound {
    pub settings: OutboundSettings,
    /// Shared with the thread that renders notifications during `ingest` (see desk's
    /// `late_render`).
    pub templates: std::sync::Arc<Templates>,
    pub key: TokenKey,
}

/// Why outbound mail could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("templates:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Templates(Vec<render::TemplateProblem>),
    #[error(transparent)]
    Key(#[from] reply_token::KeyError),
}

impl Outbound {
    /// Compiles the templates and reads (or creates, saying so on stderr) the reply-token secret;
    /// a key shorter than `check-config` wants is used with a warning.
    pub fn open(settings: &OutboundSettings) -> Result<Outbound, OutboundError> {
        let templates =
            Templates::load(settings.templates_dir.as_deref()).map_err(OutboundError::Templates)?;
        let (key, created) = TokenKey::load_or_create(&settings.secret_file)?;
        if created {
            eprintln!(
                "deskmail: created the reply-token secret {} (mode 0600); keep it with the config",
                settings.secret_file.display()
            );
        }
        // Still used: a new key would break the reply addresses already sent.
        if key.key_bytes() < reply_token::MIN_KEY_BYTES {
            tracing::warn!(
                "the reply-token secret {} is {} bytes, shorter than the {} check-config wants",
                settings.secret_file.display(),
                key.key_bytes(),
                reply_token::MIN_KEY_BYTES
            );
        }
        Ok(Outbound {
            settings: settings.clone(),
            templates: std::sync::Arc::new(templates),
            key,
        })
    }
}
