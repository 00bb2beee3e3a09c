//! Graph JSON in: request bodies → validated domain inputs, with errors that name the
//! field, the limit and the value received.
//!
//! # Layout
//! - [`json`]: reading request JSON; errors that name the field, the rule and the value.
//! - [`messages`]: `/messages` bodies → send requests; `to` and BSUID recipients.
//! - [`messages_fast`]: the common sends read in one typed pass without a JSON tree, or
//!   left to [`messages`].
//! - [`calls`]: `/calls` bodies → call actions; SDP problems worded as Graph errors.
//! - [`settings`]: the `calling` settings object in (validated once) and out.
//! - [`templates`]: `/message_templates` bodies → template drafts.
//! - [`link`]: the call deep link, `wa.me/call/<number>?biz_payload=…`.
//! - [`url`]: percent-encoding: the one decoder (queries, path segments, link payloads)
//!   and its encoder.

pub mod calls;
pub mod json;
pub mod link;
pub mod messages;
pub mod messages_fast;
pub mod settings;
pub mod templates;
pub mod url;
