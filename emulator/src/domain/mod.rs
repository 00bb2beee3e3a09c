//! Pure domain types: ids, users and client versions, messages, templates, calls and
//! their state machine, permissions, settings, tenants, Graph versions, and the error catalogue.

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
