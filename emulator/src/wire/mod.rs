//! Graph JSON in: request bodies → validated domain inputs, with errors that name the
//! field, the limit and the value received.

pub mod calls;
pub mod json;
pub mod link;
pub mod messages;
pub mod settings;
pub mod templates;
pub mod url;
