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
//! - `srtp.rs` (feature `media`): SRTP keyed by SDES (`a=crypto:`), for SIP calls. Pure.
//!
//! The socket, the clock and the pacing live in the shell (`server/media.rs`).

pub mod dtmf;
#[cfg(feature = "media")]
pub mod endpoint;
pub mod sdp;
pub mod sound;
#[cfg(feature = "media")]
pub mod srtp;
pub mod watch;
