//! Harness for the SDK acceptance tests in `tests/`.
//!
//! It starts the real `wa-emulator` binary (virtual clock, fixed seed) and, next to it, a
//! business app written with a real client SDK (`python/app.py` on pywa,
//! `node/app.mjs` on @kapso/whatsapp-cloud-api). The app registers as the emulator's
//! webhook receiver, appends one JSON line per update it gets to an events file, and runs
//! SDK calls on request (`POST /control/<action>`). Tests act as the WhatsApp user through
//! the emulator's admin API and assert on what the SDK saw.
//!
//! The binary is looked up next to the test executable (`target/<profile>/wa-emulator`),
//! so the test command builds it first: `cargo build -p wa-emulator-cli`. `WA_EMULATOR_BIN`
//! overrides the path.
//!
//! A missing runtime or SDK (see `sdk-tests/setup.sh`) skips a test with a visible reason,
//! except when `CI` is set: there it fails, so CI cannot pass with SDK tests skipped
//! (`test_skip::because`).
//!
//! Requests (admin calls, the apps' control calls) go through the emulator library's
//! HTTP client (`wa_emulator::server::client`), made blocking by [`http`]; the tests read
//! `fixtures/` with the library's loader. Using the library here is safe: what is under
//! test is the binary as a separate process, judged by the SDKs, and neither the client
//! nor the loader is part of what the SDKs see.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wa_emulator::server::client::{Client, ClientError};

pub use wa_emulator::server::client::Response;

/// Pinned versions; `setup.sh` installs exactly these.
pub const PYWA_VERSION: &str = "4.5.0";
pub const KAPSO_VERSION: &str = "0.3.0";
pub const AIORTC_VERSION: &str = "1.16.0";
const NODE_MAJOR_MIN: u32 = 20;

/// How long to wait for a webhook to reach an app (real time; the emulator's clock is virtual).
pub const WAIT: Duration = Duration::from_secs(20);

/// Opus is lossy: a measured level within this of a tone's is the tone.
pub const LEVEL_TOLERANCE_DB: f64 = 2.0;

/// Whether a measured `audio_level_dbfs` is `want`, within [`LEVEL_TOLERANCE_DB`].
pub fn level_near(level: &Value, want: f64) -> bool {
    level
        .as_f64()
        .is_some_and(|l| (l - want).abs() <= LEVEL_TOLERANCE_DB)
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sdk-tests sits inside the repository")
        .to_path_buf()
}

/// Skips visibly or, under CI, fails (`test_skip::because`). Returns `None` so callers can
/// `let … else { return }`.
#[track_caller]
fn unavailable<T>(what: &str, reason: &str) -> Option<T> {
    test_skip::because(&format!(
        "{what}: {reason}; install with `bash sdk-tests/setup.sh` (the README's test command does)"
    ));
    None
}

/// The venv interpreter with pywa installed, or a skip.
pub fn pywa_python() -> Option<PathBuf> {
    let venv = repo_root().join(".local/venv/bin/python");
    if !venv.exists() {
        return unavailable("pywa", "no Python venv at .local/venv");
    }
    let check = format!(
        "import sys\nfrom importlib.metadata import version\nv = version('pywa')\n\
         import fastapi, uvicorn, httpx\nsys.exit(0 if v == '{PYWA_VERSION}' else 3)"
    );
    match Command::new(&venv).arg("-c").arg(check).output() {
        Ok(out) if out.status.success() => Some(venv),
        Ok(out) => unavailable(
            "pywa",
            &format!(
                "pywa {PYWA_VERSION} with fastapi/uvicorn/httpx is not importable from .local/venv ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
        Err(e) => unavailable("pywa", &format!("cannot run .local/venv/bin/python: {e}")),
    }
}

/// The venv interpreter with aiortc (the media tests' business) installed, or a skip.
pub fn aiortc_python() -> Option<PathBuf> {
    let venv = pywa_python()?;
    let check = format!(
        "import sys\nfrom importlib.metadata import version\nv = version('aiortc')\n\
         import aiortc, av\nsys.exit(0 if v == '{AIORTC_VERSION}' else 3)"
    );
    match Command::new(&venv).arg("-c").arg(check).output() {
        Ok(out) if out.status.success() => Some(venv),
        _ => unavailable(
            "aiortc",
            &format!("aiortc {AIORTC_VERSION} is not importable from .local/venv"),
        ),
    }
}

/// `node` (≥ 20) with the pinned kapso package installed in `sdk-tests/node`, or a skip.
pub fn kapso_node() -> Option<PathBuf> {
    let node = PathBuf::from("node");
    let version = match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(_) | Err(_) => return unavailable("kapso", "no `node` on PATH"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < NODE_MAJOR_MIN {
        return unavailable(
            "kapso",
            &format!("node {version} is older than {NODE_MAJOR_MIN}"),
        );
    }
    let pkg =
        repo_root().join("sdk-tests/node/node_modules/@kapso/whatsapp-cloud-api/package.json");
    let installed = std::fs::read_to_string(&pkg)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    match installed {
        Some(v) if v == KAPSO_VERSION => Some(node),
        Some(v) => unavailable(
            "kapso",
            &format!("@kapso/whatsapp-cloud-api {v} installed, {KAPSO_VERSION} expected"),
        ),
        None => unavailable(
            "kapso",
            "@kapso/whatsapp-cloud-api is not installed in sdk-tests/node",
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Blocking requests over the library's client.

/// How long one request may take: a control call runs a whole SDK call in the app.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A `method` request to `url` with an optional JSON body; panics when no answer comes.
pub fn http(method: &str, url: &str, body: Option<&Value>) -> Response {
    try_http(method, url, body).unwrap_or_else(|e| panic!("{e}"))
}

/// [`http`] that returns the failure instead (for diagnostics that must not panic).
///
/// The tests are plain threads (the emulator and the apps are child processes), so each
/// request is run to completion on one small runtime shared by every test. `Connection:
/// close`, as before: the apps' servers (uvicorn, node) close idle connections after a
/// few seconds, and a pooled one could be reused just as they do.
pub fn try_http(method: &str, url: &str, body: Option<&Value>) -> Result<Response, ClientError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static CLIENT: OnceLock<Client> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the tests' requests")
    });
    let client = CLIENT.get_or_init(|| Client::new().with_timeout(REQUEST_TIMEOUT));
    let mut headers = vec![("connection", "close"), ("accept", "application/json")];
    let bytes = match body {
        Some(v) => {
            headers.push(("content-type", "application/json"));
            v.to_string()
        }
        None => String::new(),
    };
    runtime.block_on(client.request(method, url, &headers, bytes))
}

// ---------------------------------------------------------------------------------------
// Child processes whose output is kept for failure messages.

struct Proc {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Proc {
    /// Spawns `cmd` and waits for a stdout line starting with `ready_prefix`; returns the
    /// rest of that line.
    fn spawn(mut cmd: Command, what: &str, ready_prefix: &str) -> (Proc, String) {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let out = output.clone();
        let prefix = ready_prefix.to_string();
        // Both pipes are drained for the child's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(&prefix) {
                    let _ = tx.send(rest.trim().to_string());
                }
                out.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let err = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err.lock().unwrap().push_str(&format!("[stderr] {line}\n"));
            }
        });
        let mut proc = Proc { child, output };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(rest) => (proc, rest),
            Err(_) => {
                let status = proc.child.try_wait().ok().flatten();
                panic!(
                    "{what} did not print `{ready_prefix}…` within 30 s (exit status: {status:?}); its output:\n{}",
                    proc.output()
                );
            }
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only this child, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The emulator.

pub fn emulator_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WA_EMULATOR_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test exe> → target/<profile>/wa-emulator
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    profile_dir.join(format!("wa-emulator{}", std::env::consts::EXE_SUFFIX))
}

/// One of the tenant's business phone numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number {
    pub id: String,
    pub display: String,
    pub business_initiated_calling: bool,
}

pub struct Emulator {
    proc: Proc,
    pub base: String,
    /// `GET /__emulator/config`.
    pub config: Value,
}

impl Emulator {
    /// `wa-emulator serve --addr 127.0.0.1:0 --clock virtual --seed 7`.
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// [`Emulator::start`] with more arguments for `serve` (`--config FILE`, …).
    pub fn start_with(extra: &[&str]) -> Emulator {
        let bin = emulator_binary();
        assert!(
            bin.exists(),
            "no emulator binary at {}: build it first with `cargo build -p wa-emulator-cli` \
             (same profile and target dir as the tests), or set WA_EMULATOR_BIN",
            bin.display()
        );
        let mut cmd = Command::new(&bin);
        cmd.args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--clock",
            "virtual",
            "--seed",
            "7",
        ]);
        cmd.args(extra);
        let (proc, addr) = Proc::spawn(cmd, "wa-emulator", "wa-emulator listening on ");
        let base = addr.trim_end_matches('/').to_string();
        let mut emu = Emulator {
            proc,
            base,
            config: Value::Null,
        };
        let cfg = emu.admin("GET", "/__emulator/config", None);
        assert_eq!(
            cfg.status.as_u16(),
            200,
            "GET /__emulator/config: {}",
            cfg.text()
        );
        emu.config = cfg.json();
        emu
    }

    /// Every business number of the default tenant (`phone_numbers` in the config).
    pub fn numbers(&self) -> Vec<Number> {
        self.config["phone_numbers"]
            .as_array()
            .unwrap_or_else(|| {
                panic!(
                    "GET /__emulator/config has no `phone_numbers`: {}",
                    self.config
                )
            })
            .iter()
            .map(|p| Number {
                id: p["id"].as_str().expect("phone_numbers[].id").to_string(),
                display: p["display_phone_number"]
                    .as_str()
                    .expect("phone_numbers[].display_phone_number")
                    .to_string(),
                business_initiated_calling: p["business_initiated_calling"] == json!(true),
            })
            .collect()
    }

    /// The default number (the first one): `15550783881`, a +1 number, where
    /// business-initiated calling does not exist (138013); users can call it.
    pub fn default_number(&self) -> Number {
        let n = self
            .numbers()
            .into_iter()
            .next()
            .expect("at least one number");
        assert_eq!(
            n.id,
            self.cfg("phone_number_id"),
            "the first number is the default"
        );
        n
    }

    /// The first number where business-initiated calling exists (the default tenant's UK
    /// number, `447700900461`): business calls and permission requests go from it.
    pub fn calling_number(&self) -> Number {
        self.numbers()
            .into_iter()
            .find(|n| n.business_initiated_calling)
            .unwrap_or_else(|| {
                panic!(
                    "no number with business_initiated_calling in GET /__emulator/config: {}",
                    self.config
                )
            })
    }

    pub fn cfg(&self, key: &str) -> String {
        match &self.config[key] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!(
                "GET /__emulator/config has no string `{key}` (got {other}): {}",
                self.config
            ),
        }
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        http(method, &format!("{}{}", self.base, path), body.as_ref())
    }

    /// An admin call that must succeed; returns its JSON.
    pub fn admin_ok(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" { None } else { Some(body) };
        let shown = body.clone().unwrap_or(Value::Null);
        let res = self.admin(method, path, body);
        assert!(
            res.is_success(),
            "{method} {path} {shown} answered {}: {}\n{}",
            res.status,
            res.text(),
            self.diagnostics()
        );
        res.json()
    }

    pub fn advance(&self, seconds: u64) -> Value {
        self.admin_ok(
            "POST",
            "/__emulator/clock/advance",
            json!({ "seconds": seconds }),
        )
    }

    /// Registers `url` as the callback (the emulator performs the GET handshake).
    pub fn set_webhook(&self, url: &str) {
        let res = self.admin_ok(
            "PUT",
            "/__emulator/webhook",
            json!({ "url": url, "verify_token": self.cfg("verify_token") }),
        );
        assert_eq!(
            res["verified"],
            json!(true),
            "webhook handshake with {url}: {res}"
        );
    }

    /// The call as `GET /__emulator/calls` lists it.
    pub fn call_record(&self, call_id: &str) -> Value {
        let calls = self.admin_ok("GET", "/__emulator/calls", json!({}));
        calls["calls"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == call_id).cloned())
            .unwrap_or_else(|| panic!("no call {call_id} in GET /__emulator/calls: {calls}"))
    }

    pub fn deliveries(&self) -> Vec<Value> {
        let res = self.admin("GET", "/__emulator/webhooks", None);
        res.json()["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The emulator's output, delivery log and request journal, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        s.push_str("--- emulator webhook deliveries (field/event: state, attempts) ---\n");
        match try_http("GET", &format!("{}/__emulator/webhooks", self.base), None) {
            Ok(r) => {
                for d in r.json()["deliveries"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let attempts: Vec<String> = d["attempts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|a| {
                            format!(
                                "{}{}",
                                a["status"],
                                a["error"]
                                    .as_str()
                                    .map(|e| format!(" {e}"))
                                    .unwrap_or_default()
                            )
                        })
                        .collect();
                    s.push_str(&format!(
                        "{}/{}: {} attempts={:?}\n    {}\n",
                        d["field"].as_str().unwrap_or("?"),
                        d["event"].as_str().unwrap_or("?"),
                        d["state"].as_str().unwrap_or("?"),
                        attempts,
                        truncate(
                            &d["raw"]
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| d["body"].to_string()),
                            1500
                        ),
                    ));
                }
            }
            Err(e) => s.push_str(&format!("(unavailable: {e})\n")),
        }
        s.push_str("--- emulator Graph request journal ---\n");
        if let Ok(r) = try_http("GET", &format!("{}/__emulator/requests", self.base), None) {
            for q in r.json()["requests"].as_array().cloned().unwrap_or_default() {
                s.push_str(&format!(
                    "{} {} {} -> {} {}\n",
                    q["method"].as_str().unwrap_or("?"),
                    q["path"].as_str().unwrap_or("?"),
                    truncate(&q["body"].to_string(), 600),
                    q["status"],
                    truncate(&q["response"].to_string(), 600),
                ));
            }
        }
        s.push_str("--- emulator output ---\n");
        s.push_str(&truncate(&self.proc.output(), 4000));
        s
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------
// The SDK-side business app.

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct App<'e> {
    proc: Proc,
    pub url: String,
    /// The business number the app sends from (its `phone_id`).
    pub number: Number,
    events: PathBuf,
    dir: PathBuf,
    pub emu: &'e Emulator,
    name: &'static str,
}

impl<'e> App<'e> {
    /// `extra` arguments come last, so a repeated option overrides the emulator's value.
    fn start(
        emu: &'e Emulator,
        name: &'static str,
        number: Number,
        mut cmd: Command,
        extra: &[&str],
    ) -> App<'e> {
        let dir = std::env::temp_dir().join(format!(
            "wa-sdk-tests-{}-{}-{}",
            std::process::id(),
            name,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let events = dir.join("events.jsonl");
        std::fs::write(&events, "").expect("events file");
        cmd.arg("--base")
            .arg(&emu.base)
            .arg("--events")
            .arg(&events)
            .arg("--phone-id")
            .arg(&number.id)
            .arg("--waba-id")
            .arg(emu.cfg("waba_id"))
            .arg("--token")
            .arg(emu.cfg("access_token"))
            .arg("--app-secret")
            .arg(emu.cfg("app_secret"))
            .arg("--verify-token")
            .arg(emu.cfg("verify_token"))
            .args(extra);
        let (proc, url) = Proc::spawn(cmd, name, "READY ");
        let app = App {
            proc,
            url,
            number,
            events,
            dir,
            emu,
            name,
        };
        emu.set_webhook(&format!("{}/webhook", app.url));
        app
    }

    /// The pywa app (`python/app.py`), registered as the emulator's webhook receiver,
    /// on pywa's default Graph version (26.0).
    pub fn pywa(emu: &'e Emulator, python: &Path) -> App<'e> {
        App::pywa_on(emu, python, None)
    }

    /// The pywa app on Graph version `version` (e.g. "21.0"), or pywa's default.
    pub fn pywa_on(emu: &'e Emulator, python: &Path, version: Option<&str>) -> App<'e> {
        let extra: Vec<&str> = version
            .map(|v| vec!["--graph-version", v])
            .unwrap_or_default();
        App::pywa_with(emu, python, &extra)
    }

    /// The pywa app with extra command-line arguments; a repeated option overrides the
    /// emulator's value (e.g. `["--app-secret", "wrong"]`).
    pub fn pywa_with(emu: &'e Emulator, python: &Path, extra: &[&str]) -> App<'e> {
        App::pywa_as(emu, python, emu.default_number(), extra)
    }

    /// The pywa app sending from `number` (`--phone-id`), with extra arguments.
    pub fn pywa_as(emu: &'e Emulator, python: &Path, number: Number, extra: &[&str]) -> App<'e> {
        let mut cmd = Command::new(python);
        cmd.arg(repo_root().join("sdk-tests/python/app.py"));
        App::start(emu, "pywa app", number, cmd, extra)
    }

    /// The aiortc business (`python/media_app.py`) on `number`, registered as the
    /// emulator's webhook receiver.
    pub fn aiortc_as(emu: &'e Emulator, python: &Path, number: Number) -> App<'e> {
        let mut cmd = Command::new(python);
        cmd.arg(repo_root().join("sdk-tests/python/media_app.py"));
        App::start(emu, "aiortc app", number, cmd, &[])
    }

    /// The kapso app (`node/app.mjs`), registered as the emulator's webhook receiver, on
    /// kapso's default Graph version (v23.0).
    pub fn kapso(emu: &'e Emulator, node: &Path) -> App<'e> {
        App::kapso_on(emu, node, None)
    }

    /// The kapso app on Graph version `version` (e.g. "v21.0"), or kapso's default.
    pub fn kapso_on(emu: &'e Emulator, node: &Path, version: Option<&str>) -> App<'e> {
        App::kapso_as(emu, node, emu.default_number(), version)
    }

    /// The kapso app sending from `number`, on Graph version `version` or kapso's default.
    pub fn kapso_as(
        emu: &'e Emulator,
        node: &Path,
        number: Number,
        version: Option<&str>,
    ) -> App<'e> {
        let mut cmd = Command::new(node);
        cmd.current_dir(repo_root().join("sdk-tests/node"))
            .arg("app.mjs")
            .arg("--display-number")
            .arg(&number.display);
        let extra: Vec<&str> = version
            .map(|v| vec!["--graph-version", v])
            .unwrap_or_default();
        App::start(emu, "kapso app", number, cmd, &extra)
    }

    /// The user writes a text to the app's number (opens the 24 h window with it).
    pub fn user_texts(&self, wa_id: &str, text: &str) -> Value {
        self.emu.admin_ok(
            "POST",
            &format!("/__emulator/users/{wa_id}/messages"),
            json!({ "text": text, "phone_number_id": self.number.id }),
        )
    }

    /// Runs one SDK call in the app: `{"ok":true,"result":…}` or `{"ok":false,"error":…}`.
    pub fn control(&self, action: &str, args: Value) -> Value {
        let res = http(
            "POST",
            &format!("{}/control/{action}", self.url),
            Some(&args),
        );
        assert_eq!(
            res.status.as_u16(),
            200,
            "{} control {action}: {}\n{}",
            self.name,
            res.text(),
            self.proc.output()
        );
        res.json()
    }

    /// A control call that must succeed; returns its result.
    pub fn call_ok(&self, action: &str, args: Value) -> Value {
        let out = self.control(action, args.clone());
        if out["ok"] != json!(true) {
            panic!(
                "{}: {action}({args}) failed inside the SDK: {}\n{}",
                self.name,
                serde_json::to_string_pretty(&out["error"]).unwrap_or_default(),
                self.emu.diagnostics()
            );
        }
        out["result"].clone()
    }

    /// A control call that must fail; returns the error the SDK raised.
    pub fn call_err(&self, action: &str, args: Value) -> Value {
        let out = self.control(action, args.clone());
        if out["ok"] != json!(false) {
            panic!(
                "{}: {action}({args}) succeeded, an error was expected: {}\n{}",
                self.name,
                out["result"],
                self.emu.diagnostics()
            );
        }
        out["error"].clone()
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l}: {e}")))
            .collect()
    }

    /// Waits for the first event of `kind` matching `pred`.
    #[allow(clippy::disallowed_methods, reason = "the SDK app runs in real time")]
    pub fn wait_for(&self, kind: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self
                .events()
                .into_iter()
                .find(|e| e["kind"] == kind && pred(e))
            {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: no {kind} event ({what}) within {:?}.\n{}",
                    self.name,
                    WAIT,
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that no event of `kind` matching `pred` arrives within `within`.
    #[allow(clippy::disallowed_methods, reason = "the SDK app runs in real time")]
    pub fn assert_none(
        &self,
        kind: &str,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(e) = self
                .events()
                .into_iter()
                .find(|e| e["kind"] == kind && pred(e))
            {
                panic!(
                    "{}: unexpected {kind} event ({what}): {e}\n{}",
                    self.name,
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// pywa parsed every webhook it got without a complaint: no dropped update, no
    /// unknown field or enum value (its warnings and errors are logged as `pywa_log`).
    pub fn assert_sdk_quiet(&self) {
        let complaints: Vec<String> = self
            .events()
            .into_iter()
            .filter(|e| e["kind"] == "pywa_log")
            .map(|e| truncate(&e.to_string(), 2000))
            .collect();
        assert!(
            complaints.is_empty(),
            "{} logged complaints about what the emulator sent:\n{}\n{}",
            self.name,
            complaints.join("\n"),
            self.diagnostics()
        );
    }

    /// What the app saw (compact) plus the emulator's side.
    pub fn diagnostics(&self) -> String {
        let mut s = format!("--- {} events ---\n", self.name);
        for e in self.events() {
            s.push_str(&truncate(&e.to_string(), 1500));
            s.push('\n');
        }
        s.push_str(&format!(
            "--- {} output ---\n{}\n",
            self.name,
            truncate(&self.proc.output(), 4000)
        ));
        s.push_str(&self.emu.diagnostics());
        s
    }
}

impl Drop for App<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
