//! The workflow core: pure code, no I/O, no clock, no database.
//!
//! Given a ticket, an actor and an intent, [`act`] (or [`create`] for a new ticket) returns a
//! [`Decision`]: the effects to write (the next ticket, the comment, the notices, the history) or
//! a [`Rejection`] that says why and lists what the actor may do instead ([`allowed_actions`]).
//! Time rules run through [`sweep`] with `now` passed in like every other input.
//!
//! Workflows are data ([`Workflow`], read from TOML): the five presets under `presets/` or an
//! admin's own file. [`validate`] says whether one is consistent.
//!
//! Architecture invariant: nothing here imports `store`, `cli`, tokio or sqlx.

pub mod definition;
mod draft;
pub mod engine;
pub mod model;
pub mod presets;
pub mod resolve;
pub mod rules;
pub mod validate;

pub use definition::{StateKind, Workflow};
pub use engine::{Outcome, act, allowed_actions, create};
pub use model::*;
pub use rules::sweep;
pub use validate::validate;

/// Parses a workflow from TOML; the error names the line and column.
pub fn parse(source: &str) -> Result<Workflow, toml::de::Error> {
    toml::from_str(source)
}
