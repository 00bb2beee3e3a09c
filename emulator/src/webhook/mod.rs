//! Webhooks: bodies shaped like Meta's ([`payload`]), the exact bytes and signature
//! ([`codec`]), and the outbox that retries until delivered ([`outbox`]).

pub mod codec;
pub mod outbox;
pub mod payload;
