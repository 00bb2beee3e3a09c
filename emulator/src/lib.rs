//! wa-emulator: a local, stateful emulator of the WhatsApp Business Cloud API calling
//! surfaces — `voice_call` buttons, call deep links, the calls they start, `/calls`,
//! permissions, settings and SIP — with signed webhooks and a virtual clock.
//!
//! # Layout
//! - [`domain`]: pure types and rules (ids, users, calls state machine, errors).
//! - [`wire`]: Graph request JSON → validated inputs.
//! - [`webhook`]: webhook bodies, ASCII-escaped bytes and signatures, the outbox.
//! - [`engine`]: the stateful core; every operation is `(state, now, input) → output`.
//! - [`api`]: routing of Graph and `/__emulator` requests onto the engine (pure).
//! - [`sip`]: SIP messages, digest auth and the user-agent client for SIP-enabled numbers.
//! - `server`: the only I/O — hyper, the clock, webhook delivery, SIP (feature `server`).
//!
//! Dependency direction: domain ← wire ← engine ← api ← server.

pub mod api;
pub mod domain;
pub mod engine;
pub mod fixture;
pub mod sip;
pub mod webhook;
pub mod wire;

#[cfg(feature = "server")]
pub mod replay;
#[cfg(feature = "server")]
pub mod server;
