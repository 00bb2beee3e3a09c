//! The inspector (`/__emulator/ui`) in a real browser: runs
//! `emulator/ui/test/inspector.test.mjs` with Node and Debian's headless Chromium against
//! this build's binary. The script loads
//! the page, sees a message arrive over the live event stream, taps its call button, and
//! checks that the connect and terminate deliveries appear with the receiver's answer; then,
//! on the tenant's second number (the +1 default cannot call users: 138013), grants a
//! permission request and answers and hangs up a business-initiated call through the page;
//! last, a call's media box: signalling only, then connecting with a level meter, the tone
//! the user says and the keys (issue 18).
//!
//! Without node, Chromium or `npm ci` in `emulator/ui/test` the test says why and skips
//! visibly; with `CI` set it fails instead, so CI cannot pass without running it
//! (`test_skip::because`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

fn node_works() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn inspector_drives_a_call_in_headless_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../emulator/ui/test");
    let missing = if !node_works() {
        Some("node is not installed".to_owned())
    } else if chromium().is_none() {
        Some("Chromium is not installed (Debian package `chromium`, or set CHROMIUM)".to_owned())
    } else if !dir.join("node_modules/playwright-core").exists() {
        Some(format!(
            "playwright-core is not installed: run `npm ci` in {}",
            dir.display()
        ))
    } else {
        None
    };
    if let Some(why) = missing {
        return test_skip::because(&why);
    }
    let out = Command::new("node")
        .arg("inspector.test.mjs")
        .current_dir(&dir)
        .env("WA_EMULATOR_BIN", env!("CARGO_BIN_EXE_wa-emulator"))
        .env("CHROMIUM", chromium().unwrap_or_default())
        .output()
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the inspector browser test failed:\n{stdout}\n{stderr}"
    );
}
