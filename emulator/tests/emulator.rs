//! Integration tests: the real server on loopback, driven over HTTP, with a real
//! receiver that checks every webhook signature with its own HMAC.

mod emulator {
    mod access;
    mod admin_openapi;
    mod calls;
    mod concurrency;
    mod conformance;
    mod embedded_app;
    mod fidelity;
    mod fuzz;
    pub mod harness;
    mod hostile;
    mod https_webhooks;
    mod json_schema;
    mod messaging;
    mod openapi;
    mod raw_http;
    mod receiver_faults;
    mod recipients;
    mod robustness;
    mod sip;
    mod sip_gateway;
    mod sip_gateway_setup;
    mod sip_media;
    mod slow_clients;
    mod spellings;
    mod tenants;
    mod webhook_backpressure;
}
