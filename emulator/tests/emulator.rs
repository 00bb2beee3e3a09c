//! Integration tests: the real server on loopback, driven over HTTP, with a real
//! receiver that checks every webhook signature with its own HMAC.

mod emulator {
    pub mod harness;
    mod calls;
    mod messaging;
    mod robustness;
}
