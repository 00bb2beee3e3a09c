//! Pure domain types and rules: no I/O, no clock reads, no Graph JSON shapes.
//!
//! # Layout
//! - [`ids`]: identifiers and the one seeded source of randomness.
//! - [`error`]: the one catalogue of API errors.
//! - [`tenant`]: apps, WABAs, phone numbers, declared users and the `Behaviour` switches.
//! - [`user`]: simulated users, client versions and what each client can do.
//! - [`version`]: Graph API versions and the rules that depend on one.
//! - [`message`]: messages the business sends, their delivery state, call buttons.
//! - [`template`]: message templates and their review state.
//! - [`call`]: calls and their state machine ([`call::decide`]).
//! - [`permission`]: call permissions between a number and a user, and their limits.
//! - [`settings`]: a number's calling settings.
//! - [`sdp`]: what makes an SDP usable, same-answer comparison, the SDP Meta's side sends.
//! - [`sip`]: the INVITE the engine hands the SIP user agent ([`sip::SipInvite`],
//!   [`sip::SipTransport`]).

pub mod call;
pub mod error;
pub mod ids;
pub mod message;
pub mod permission;
pub mod sdp;
pub mod settings;
pub mod sip;
pub mod template;
pub mod tenant;
pub mod user;
pub mod version;
