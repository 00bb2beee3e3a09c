//! Integration tests: the real server on loopback, driven over HTTP, with a real
//! receiver that checks every webhook signature with its own HMAC.

mod emulator {
    mod calls;
    mod conformance;
    mod fidelity;
    mod fuzz;
    pub mod harness;
    mod messaging;
    mod openapi;
    mod recipients;
    mod reliability;
    mod restart;
    mod robustness;
    mod sip;
    mod spellings;
}
