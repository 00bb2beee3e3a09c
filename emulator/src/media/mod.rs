//! The simulated user's media: a real WebRTC peer per call, shaped like Meta's side
//! (cloud-api §4.1).
//!
//! # Layout
//! - `sdp.rs`: the business's media description read from its SDP, and Meta's shaped SDP
//!   made real for the endpoint (port, candidate, fingerprint). Pure; the engine uses it.
//! - `dtmf.rs`: RFC 4733 telephone events, sent and received. Pure.
//! - `sound.rs`: silence, tones and WAV clips in 20 ms frames; levels in dBFS. Pure.
//! - `watch.rs`: whether the business's audio stopped mid-call (cloud-api §5.4), for
//!   every endpoint kind. Pure.
//! - `endpoint/` (feature `media`): one call's sans-IO endpoint on str0m (ICE-lite,
//!   DTLS-SRTP, RTP) and libopus; the time and datagrams are passed in.
//! - `srtp.rs`: SRTP keyed by SDES (`a=crypto:`), for SIP calls. Pure.
//! - `rtp.rs` (feature `media`): a SIP call's sans-IO endpoint for SDES-keyed SRTP or
//!   plain RTP (no ICE, no DTLS; it latches to where the business sends from).
//! - `voice.rs` (feature `media`): the user talking (opus, key presses every 20 ms) and
//!   listening (levels, keys, first audio, stops), shared by every endpoint kind.
//!
//! The socket, the clock and the pacing live in the shell (`server/media.rs`).

pub mod dtmf;
#[cfg(feature = "media")]
pub mod endpoint;
#[cfg(feature = "media")]
pub mod rtp;
pub mod sdp;
pub mod sound;
pub mod srtp;
#[cfg(feature = "media")]
pub mod voice;
pub mod watch;
