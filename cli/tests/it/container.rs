//! The container image (`container/`): `container/build.sh` builds the static binary and
//! the FROM scratch image, and podman runs it as a CI service would: a published port,
//! the admin token from the environment, `--state` on a volume, `podman stop`.
//!
//! `./test.sh` builds the image before the tests (the static release build takes minutes
//! the first time); here `container/build.sh` runs again, which is then a no-op of a few
//! seconds, so the test always checks the image of the code under test. Without podman
//! (runc and slirp4netns) the test fails under CI and is skipped otherwise (`test_skip`).

use super::harness::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use wa_emulator::server::client::Client;

const ADMIN: &str = "container-admin-token-5e1f";

/// Flags every `podman run` here needs on hosts like the project's machines: runc as
/// the runtime, and rlimits below the host's hard limits (podman's defaults copy limits
/// that an unprivileged runtime may not be allowed to set).
///
/// And user-mode networking (slirp4netns), which still publishes the port but adds no
/// interface to the host: podman's bridge (an address that appears with the first
/// container and goes with the last) is a network change to the headless Chromium of the
/// inspector test running beside this one, which then drops its event stream and its
/// requests (ERR_NETWORK_CHANGED).
const RUN_FLAGS: &[&str] = &[
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
    "--network",
    "slirp4netns",
];

fn found(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A line on the real stderr, shown even when the test passes (the harness captures only
/// `eprintln!`): the slow build and the time the test took are worth seeing.
fn progress(line: &str) {
    let _ = std::io::stderr().write_all(format!("container: {line}\n").as_bytes());
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the workspace")
        .to_path_buf()
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("podman {args:?} runs: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// `podman run` with [`RUN_FLAGS`] and these arguments, run to completion.
fn run(args: &[&str]) -> Output {
    let mut all = vec!["run"];
    all.extend_from_slice(RUN_FLAGS);
    all.extend_from_slice(args);
    podman(&all)
}

/// A started container, removed (with `podman rm -f`) when dropped, also when the test
/// fails half-way.
struct Container {
    name: String,
}

impl Container {
    fn port(&self) -> u16 {
        let out = podman(&["port", &self.name, "4004/tcp"]);
        let mapping = text(&out.stdout);
        mapping
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "podman port {}: {mapping:?} {}",
                    self.name,
                    text(&out.stderr)
                )
            })
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", &self.name]);
        format!("{}\n{}", text(&out.stdout), text(&out.stderr))
    }

    fn exit_code(&self) -> String {
        text(&podman(&["inspect", "--format", "{{.State.ExitCode}}", &self.name]).stdout)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", &self.name]);
    }
}

/// A request to the container's published port: status and JSON body.
async fn call(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let body = (!body.is_null()).then_some(&body);
    let answer = Client::new()
        .json(
            method,
            &format!("http://127.0.0.1:{port}{path}"),
            token,
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("the container answers {method} {path}: {e}"));
    (answer.status.as_u16(), answer.json())
}

/// Polls `GET /__emulator/health` (with the admin token) until it answers 200.
// Real processes: the wait is real time.
#[allow(clippy::disallowed_methods)]
async fn wait_healthy(c: &Container) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let port = c.port();
        let answer = Client::new()
            .json(
                "GET",
                &format!("http://127.0.0.1:{port}/__emulator/health"),
                Some(ADMIN),
                None,
            )
            .await;
        if let Ok(a) = answer {
            assert_eq!(a.status.as_u16(), 200, "health: {}", a.json());
            assert_eq!(a.json(), json!({"status": "ok"}));
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "the container is not healthy after 30 s:\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `podman stop` (SIGTERM, SIGKILL after 10 s): the emulator, PID 1 in the container,
/// must exit 0 on the SIGTERM, well before the SIGKILL.
// Real processes: the stop is timed in real time.
#[allow(clippy::disallowed_methods)]
fn stop_cleanly(c: &Container) {
    let started = Instant::now();
    let out = podman(&["stop", "--time", "10", &c.name]);
    let took = started.elapsed();
    assert!(out.status.success(), "podman stop: {}", text(&out.stderr));
    assert!(
        took < Duration::from_secs(5),
        "podman stop took {took:?}: SIGTERM was not handled\n{}",
        c.logs()
    );
    assert_eq!(c.exit_code(), "0", "exit code after SIGTERM\n{}", c.logs());
    assert!(c.logs().contains("shutting down"), "{}", c.logs());
}

/// `container/build.sh`: the image id it prints last.
// The build is timed in real time.
#[allow(clippy::disallowed_methods)]
fn build_image() -> String {
    progress("container/build.sh: the static release binary and the image (minutes on a first build, seconds after)");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(repo_root().join("container/build.sh"))
        .current_dir(repo_root())
        .output()
        .expect("bash runs container/build.sh");
    assert!(
        out.status.success(),
        "container/build.sh failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let id = stdout.lines().last().unwrap_or("").trim().to_owned();
    assert!(id.starts_with("sha256:"), "an image id last: {stdout}");
    progress(&format!(
        "image {} built in {:.1} s",
        &id[..19.min(id.len())],
        started.elapsed().as_secs_f64()
    ));
    id
}

#[tokio::test]
// The whole test is timed in real time, for the report line.
#[allow(clippy::disallowed_methods)]
async fn the_image_serves_on_a_published_port_keeps_state_and_stops_on_sigterm() {
    if !found("podman") || !found("runc") || !found("slirp4netns") {
        return test_skip::because(
            "`podman`, `runc` or `slirp4netns` is not on PATH (Debian packages podman, runc and slirp4netns)",
        );
    }
    let started = Instant::now();
    let image = build_image();

    // Beyond loopback without an admin token (none, or an empty one): it refuses to
    // start, exit 2, and says why.
    for env in [None, Some("WA_EMULATOR_ADMIN_TOKEN=")] {
        let mut args = vec!["--rm"];
        if let Some(e) = env {
            args.extend(["--env", e]);
        }
        args.push(&image);
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(
            stderr.contains("admin token") || stderr.contains("--admin-token"),
            "{env:?}: {stderr}"
        );
        assert!(!text(&out.stdout).contains("listening"), "{env:?}");
    }

    // As a CI service: a published port (any free one, on loopback), the admin token from
    // the environment, the state on a volume.
    let state = std::env::temp_dir().join(format!("wa-emu-container-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let volume = format!("{}:/data", state.display());
    let c = Container {
        name: format!("wa-emulator-test-{}", std::process::id()),
    };
    let _ = podman(&["rm", "--force", &c.name]);
    let env_admin = format!("WA_EMULATOR_ADMIN_TOKEN={ADMIN}");
    let out = run(&[
        "--detach",
        "--name",
        &c.name,
        "--publish",
        "127.0.0.1::4004",
        "--env",
        &env_admin,
        "--env",
        "WA_EMULATOR_STATE=/data/state.json",
        "--volume",
        &volume,
        &image,
    ]);
    assert!(out.status.success(), "podman run: {}", text(&out.stderr));
    let port = wait_healthy(&c).await;
    assert!(
        c.logs()
            .contains("wa-emulator listening on http://0.0.0.0:4004"),
        "{}",
        c.logs()
    );

    // The admin API without the admin token: refused (health included).
    for path in ["/__emulator/health", "/__emulator/config"] {
        let (s, v) = call(port, "GET", path, None, Value::Null).await;
        assert_eq!(s, 401, "{path} without the admin token: {v}");
        let (s, v) = call(port, "GET", path, Some(TOKEN), Value::Null).await;
        assert_eq!(s, 401, "{path} with the Graph token: {v}");
    }

    // A Graph request with the default token; the admin API with the admin token sees it.
    let (s, v) = call(
        port,
        "POST",
        &format!("/v21.0/{PHONE}/messages"),
        Some(TOKEN),
        voice_call(USER, json!({"payload": "container"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mid = v["messages"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = call(
        port,
        "GET",
        &format!("/v21.0/{PHONE}/settings"),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(s, 401, "Graph without a token: {v}");
    let (s, v) = call(
        port,
        "GET",
        "/__emulator/messages",
        Some(ADMIN),
        Value::Null,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().contains(&mid), "{v}");

    // SIGTERM: a clean, prompt stop with exit code 0 and the state on the volume.
    stop_cleanly(&c);
    assert!(
        state.join("state.json").is_file(),
        "state written to the volume"
    );

    // Started again on the same volume, the message is still there.
    let out = podman(&["start", &c.name]);
    assert!(out.status.success(), "podman start: {}", text(&out.stderr));
    let port = wait_healthy(&c).await;
    let (s, v) = call(
        port,
        "GET",
        "/__emulator/messages",
        Some(ADMIN),
        Value::Null,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v.to_string().contains(&mid),
        "the message survived the restart: {v}"
    );
    stop_cleanly(&c);

    drop(c);
    let _ = std::fs::remove_dir_all(&state);
    progress(&format!(
        "image test done in {:.1} s (build included)",
        started.elapsed().as_secs_f64()
    ));
}

/// Runs `cmd` to completion, killed after `limit` (a refusal that fails would serve on).
// A real process: the limit is real time.
#[allow(clippy::disallowed_methods)]
fn exited_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.spawn().expect("the binary starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// What the image relies on, checked on the plain binary (no podman needed): an empty
/// admin token, as `-e WA_EMULATOR_ADMIN_TOKEN=$UNSET` gives, is refused rather than
/// accepted as a token that protects nothing.
#[test]
fn an_empty_admin_token_is_refused() {
    for (args, env) in [
        (
            vec!["serve", "--addr", "127.0.0.1:0", "--admin-token", ""],
            None,
        ),
        (vec!["serve", "--addr", "0.0.0.0:0"], Some(" ")),
    ] {
        let mut cmd = binary();
        cmd.args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(v) = env {
            cmd.env("WA_EMULATOR_ADMIN_TOKEN", v);
        }
        let out = exited_within(cmd, Duration::from_secs(10));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains("admin token") && stderr.contains("empty"),
            "{stderr}"
        );
    }
}
