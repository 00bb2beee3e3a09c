//! One way for a test to say it cannot run because something outside Rust is missing
//! (sipp, Chromium, Node, the Python or Node SDKs), and one switch, `CI`, that decides
//! what that means:
//!
//! - with `CI` set (to anything but empty, `0` or `false`), [`because`] panics with the
//!   reason: CI installs every tool, so a test that cannot run there is a failure, never
//!   a pass that proved nothing;
//! - otherwise it is a skip that cannot go unseen: a `skipped: <test>: <reason>` line on
//!   the process's real stderr (the test harness captures `eprintln!` and hides it for a
//!   passing test; it does not capture a direct write), and the same line appended to
//!   `skipped-tests.txt` in the Cargo target directory, which `test.sh` prints at the end
//!   of a run.
//!
//! ```no_run
//! fn sipp_found() -> bool {
//!     std::process::Command::new("sipp").arg("-v").output().is_ok()
//! }
//!
//! #[test]
//! fn invite_reaches_sipp() {
//!     if !sipp_found() {
//!         return test_skip::because("`sipp` is not on PATH (Debian package sip-tester)");
//!     }
//!     // …
//! }
//! ```
//!
//! A small crate of its own, with no dependencies, so that every test crate (the
//! emulator's unit and integration tests, the CLI's, the SDK harness) uses the same rule
//! without reaching into the emulator library's public API.

use std::io::Write;
use std::path::PathBuf;

/// The file in the Cargo target directory that collects skip lines across test binaries.
pub const RECORD: &str = "skipped-tests.txt";

/// Whether `CI` is set to a true value: not empty, `0` or `false`.
pub fn in_ci() -> bool {
    is_true(std::env::var("CI").ok().as_deref())
}

fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// The calling test cannot run: `reason` says what is missing and how to get it.
///
/// Under `CI` this panics with the reason. Otherwise it reports the skip where a developer
/// sees it (see the crate docs) and returns, so the test can `return` right after it.
#[track_caller]
pub fn because(reason: &str) {
    let test = test_name();
    if in_ci() {
        panic!("{test} cannot run: {reason} (CI is set, so a test that cannot run fails)");
    }
    let line = format!("skipped: {test}: {reason}\n");
    // Straight to file descriptor 2, not through `eprintln!`, which the harness captures.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(dir) = target_dir() {
        // One `write_all` in append mode: lines from parallel tests do not interleave.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(RECORD))
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// The running test's name: libtest names each test's thread after it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => std::env::args()
            .next()
            .unwrap_or_else(|| "a test".to_owned()),
    }
}

/// The Cargo target directory holding the running test executable: the nearest ancestor
/// with Cargo's `CACHEDIR.TAG` (`target/debug/deps/<test>` → `target`).
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_on_unless_unset_empty_zero_or_false() {
        for (value, on) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("False"), false),
            (Some("1"), true),
            (Some("true"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(is_true(value), on, "CI={value:?}");
        }
    }

    #[test]
    fn the_test_name_is_the_thread_name() {
        assert_eq!(test_name(), "tests::the_test_name_is_the_thread_name");
    }

    #[test]
    fn the_target_directory_is_found_from_the_test_executable() {
        let dir = target_dir().expect("tests run from inside a Cargo target directory");
        assert!(dir.join("CACHEDIR.TAG").is_file(), "{}", dir.display());
    }
}
