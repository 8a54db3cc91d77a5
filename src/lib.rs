//! deskmail: an e-mail-driven helpdesk gateway.
//!
//! Start with ARCHITECTURE.md. The pure workflow core is [`workflow`]; [`directory`] knows the
//! parties; [`config`] reads the settings; [`store`] holds all SQL; [`desk`] runs one intent
//! through the core and writes its effects in one transaction; [`cli`] is the command line.

mod affinity;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod desk;
pub mod directory;
pub mod doctor;
pub mod errors;
pub mod hex;
pub mod inbound;
pub mod intake;
pub mod oauth2;
pub mod outbound;
pub mod recipients;
pub mod reply_token;
pub mod store;
pub mod system_roots;
pub mod ticket_number;
pub mod workflow;
