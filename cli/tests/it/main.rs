//! The `wa-emulator` binary's one integration-test binary: each test runs the built
//! command as a process (`CARGO_BIN_EXE_wa-emulator`).

mod binary;
mod container;
mod harness;
mod inspector;
mod media;
mod restart;
mod sip_gateway;
