//! The admin API's own description, `emulator/openapi/admin.json` (served at
//! `GET /__emulator/openapi.json`), kept true:
//!
//! - it is a valid OpenAPI 3.1 document, by a real validator (`openapi-spec-validator`,
//!   installed by `emulator/openapi/setup.sh` into `.local/openapi-venv`; missing, the test
//!   skips visibly and fails under CI), and its `info.version` is the crate's;
//! - it describes exactly the routes of `wa_emulator::api::ADMIN_ROUTES`, the table the
//!   admin router refuses anything outside of, so a route without a description, or a
//!   description without a route, fails here;
//! - every described operation is driven against a running emulator with a valid request
//!   (and many with invalid ones): each request body is checked against the operation's
//!   request schema (a valid one must conform, an invalid one must not), and each answer
//!   against the schema the operation declares for that status and media type;
//! - methods a path does not describe are not routes (404);
//! - every refusal reason is in the description, in `ADMIN-API.md` and in the code.
//!
//! The schemas are checked by the tests' one JSON Schema validator (`json_schema.rs`); the
//! description may only use keywords it checks.

use super::harness::*;
use super::json_schema::{describe, unchecked_keywords, validate_in};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wa_emulator::api::ADMIN_ROUTES;

/// A business answer a media endpoint can connect to: ICE, a fingerprint, a candidate.
const MEDIA_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 127.0.0.1\r\na=ice-ufrag:biz1\r\na=ice-pwd:bizbizbizbizbizbizbizbiz\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\na=mid:audio\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=candidate:1 1 udp 2113937151 127.0.0.1 9 typ host\r\n";
use wa_emulator::engine::ClockMode;
use wa_emulator::server::client::Client;
use wa_emulator::server::ServeOptions;

const DESCRIPTION: &str = include_str!("../../openapi/admin.json");
const ADMIN_API_MD: &str = include_str!("../../ADMIN-API.md");
const PREFIX: &str = "/__emulator";
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

fn description() -> Value {
    serde_json::from_str(DESCRIPTION).expect("admin.json is JSON")
}

fn emulator_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(METHOD, path)` of every operation the description has, paths as written there
/// (relative to its server, `/__emulator`).
fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m.to_ascii_lowercase()).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// Whether `path` (no query) is an instance of `template` (`{name}`: one segment).
fn instance_of(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

/// The described path `path` is an instance of; literal segments win over templates.
fn template_of(doc: &Value, path: &str) -> Option<String> {
    doc["paths"]
        .as_object()?
        .keys()
        .filter(|t| instance_of(t, path))
        .min_by_key(|t| t.matches('{').count())
        .cloned()
}

/// The server URLs a described path is under: its own `servers`, else the document's.
fn servers_of(doc: &Value, template: &str) -> Vec<String> {
    let own = &doc["paths"][template]["servers"];
    let list = if own.is_array() { own } else { &doc["servers"] };
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["url"].as_str().map(str::to_owned))
        .collect()
}

/// The server URL of a tenant's `admin_path`.
const TENANT_SERVER: &str = "/__emulator/tenants/{tenant_id}";

/// Follows a `$ref` (`#/components/…`), or returns the value itself.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

#[test]
fn the_description_is_valid_openapi_3_1() {
    let doc = description();
    assert_eq!(doc["openapi"], "3.1.0");
    let validator = emulator_dir().join("../.local/openapi-venv/bin/openapi-spec-validator");
    if !validator.exists() {
        return test_skip::because(
            "openapi-spec-validator is not installed in .local/openapi-venv (run emulator/openapi/setup.sh; ./test.sh does)",
        );
    }
    let run = |file: &Path| {
        let out = std::process::Command::new(&validator)
            .args(["--schema", "3.1", "--validation-errors", "all"])
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", validator.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(&emulator_dir().join("openapi/admin.json"));
    assert!(ok, "admin.json is not valid OpenAPI 3.1:\n{text}");
    // The validator is real: a path parameter nobody declares is caught.
    let mut broken = doc;
    broken["paths"]["/calls/{call_id}/hangup"]
        .as_object_mut()
        .expect("the hangup route is described")
        .remove("parameters");
    let file =
        std::env::temp_dir().join(format!("admin-openapi-broken-{}.json", std::process::id()));
    std::fs::write(&file, broken.to_string()).unwrap();
    let (ok, text) = run(&file);
    let _ = std::fs::remove_file(&file);
    assert!(
        !ok && text.contains("call_id"),
        "the validator let a broken document through:\n{text}"
    );
}

#[test]
fn the_description_names_the_crate_version_and_relies_only_on_checked_keywords() {
    let doc = description();
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut unchecked = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        unchecked_keywords(
            schema,
            &format!("#/components/schemas/{name}"),
            &mut unchecked,
        );
    }
    fn inline(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, sub) in m {
                    let here = format!("{at}/{k}");
                    if k == "schema" {
                        unchecked_keywords(sub, &here, out);
                    } else {
                        inline(sub, &here, out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, sub) in a.iter().enumerate() {
                    inline(sub, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    inline(&doc["paths"], "#/paths", &mut unchecked);
    inline(
        &doc["components"]["responses"],
        "#/components/responses",
        &mut unchecked,
    );
    assert!(
        unchecked.is_empty(),
        "the description uses keywords the tests' validator does not check (json_schema.rs CHECKED): {unchecked:#?}"
    );
}

#[test]
fn the_description_lists_exactly_the_routes_the_admin_router_answers() {
    let table: BTreeSet<(String, String)> = ADMIN_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        table.len(),
        ADMIN_ROUTES.len(),
        "ADMIN_ROUTES repeats a route"
    );
    let doc = described(&description());
    let undescribed: Vec<_> = table.difference(&doc).collect();
    let unrouted: Vec<_> = doc.difference(&table).collect();
    assert!(
        undescribed.is_empty() && unrouted.is_empty(),
        "routes without a description in emulator/openapi/admin.json: {undescribed:?}\n\
         described routes missing from ADMIN_ROUTES (api/admin.rs): {unrouted:?}"
    );
}

#[test]
fn every_refusal_reason_is_described_documented_and_produced() {
    let doc = description();
    let described: BTreeSet<String> = doc
        .pointer("/components/schemas/Refusal/allOf/1/properties/error/properties/error_data/properties/reason/enum")
        .and_then(Value::as_array)
        .expect("Refusal names its reasons")
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    // The reasons `ApiError::refused("…", …)` gives in the code.
    let mut produced = BTreeSet::new();
    let mut dirs = vec![emulator_dir().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("refused(") {
                    let rest = text[at + "refused(".len()..].trim_start();
                    if let Some(lit) = rest.strip_prefix('"') {
                        produced.insert(lit[..lit.find('"').unwrap()].to_owned());
                    }
                }
            }
        }
    }
    let missing: Vec<_> = produced.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "refusal reasons the code gives that admin.json does not name: {missing:?}"
    );
    let undocumented: Vec<_> = described
        .iter()
        .filter(|r| !ADMIN_API_MD.contains(&format!("`{r}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "refusal reasons ADMIN-API.md does not list: {undocumented:?}"
    );
}

/// A JSON value for a message, cut at 300 characters.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// One answer: status, media type, body (JSON, or the text as a JSON string).
struct Answer {
    status: u16,
    media: String,
    body: Value,
}

/// Sends admin requests described by the document and checks both ends against it.
struct Driver {
    doc: Value,
    http: Client,
    base: String,
    /// The described server requests go to (`/__emulator` or [`TENANT_SERVER`]) and
    /// the actual prefix (`/__emulator`, or a tenant's `admin_path`).
    server: String,
    admin: String,
    /// `(server, METHOD, path template)` answered with a 2xx.
    succeeded: BTreeSet<(String, String, String)>,
    problems: Vec<String>,
}

impl Driver {
    fn new(emu: &Emu) -> Self {
        Self {
            doc: description(),
            http: Client::new(),
            base: emu.url.clone(),
            server: PREFIX.to_owned(),
            admin: PREFIX.to_owned(),
            succeeded: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    /// Requests go to this tenant (`admin_path`), or with `None` to the default one.
    fn under(&mut self, tenant: Option<&Value>) {
        (self.server, self.admin) = match tenant {
            Some(t) => (
                TENANT_SERVER.to_owned(),
                t["admin_path"]
                    .as_str()
                    .expect("a tenant's admin_path")
                    .to_owned(),
            ),
            None => (PREFIX.to_owned(), PREFIX.to_owned()),
        };
    }

    /// A valid request: its body must conform to the described request schema.
    async fn ok(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let a = self.send(method, path, body, true).await;
        if !(200..300).contains(&a.status) {
            self.problems.push(format!(
                "{method} {path}: a valid request answered {}: {}",
                a.status,
                short(&a.body)
            ));
        }
        a.body
    }

    /// A request the emulator must refuse with `status`.
    async fn refused(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let a = self.send(method, path, body, true).await;
        if a.status != status {
            self.problems.push(format!(
                "{method} {path}: expected HTTP {status}, got {}: {}",
                a.status,
                short(&a.body)
            ));
        }
        a.body
    }

    /// A request whose body breaks the described request schema: the description must
    /// say so, and the emulator must answer 400.
    async fn invalid(&mut self, method: &str, path: &str, body: Value) {
        let a = self.send(method, path, Some(body.clone()), false).await;
        if a.status != 400 {
            self.problems.push(format!(
                "{method} {path} {body}: an invalid request answered {}: {}",
                a.status,
                short(&a.body)
            ));
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Value>, valid: bool) -> Answer {
        let full = format!("{}{path}", self.admin);
        let bare = path.split('?').next().unwrap_or(path);
        let Some(template) = template_of(&self.doc, bare) else {
            self.problems
                .push(format!("{method} {full}: no described path matches"));
            return self.transmit(method, &full, body.as_ref()).await;
        };
        let op = self.doc["paths"][&template][method.to_ascii_lowercase()].clone();
        if op.is_null() {
            self.problems
                .push(format!("{method} {template} is not described"));
        }
        if !servers_of(&self.doc, &template).contains(&self.server) {
            self.problems.push(format!(
                "{method} {template} is not described under {}",
                self.server
            ));
        }
        if let Some(b) = &body {
            self.check_request(method, &template, &op, b, valid);
        }
        let answer = self.transmit(method, &full, body.as_ref()).await;
        self.check_answer(method, &template, &op, &answer);
        answer
    }

    fn check_request(
        &mut self,
        method: &str,
        template: &str,
        op: &Value,
        body: &Value,
        valid: bool,
    ) {
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        if schema.is_null() {
            self.problems.push(format!(
                "{method} {template}: sent a body, but no JSON request body is described"
            ));
            return;
        }
        let mut errs = Vec::new();
        validate_in(&self.doc, schema, body, "", &mut errs);
        match (valid, errs.is_empty()) {
            (true, false) => self.problems.push(format!(
                "{method} {template}: the valid request {body} breaks the described schema: {}",
                describe(&errs)
            )),
            (false, true) => self.problems.push(format!(
                "{method} {template}: the described schema accepts {body}, which the emulator refuses"
            )),
            _ => {}
        }
    }

    fn check_answer(&mut self, method: &str, template: &str, op: &Value, a: &Answer) {
        let at = format!("{method} {template} → {}", a.status);
        let responses = &op["responses"];
        let declared = match responses
            .get(a.status.to_string())
            .or(responses.get("default"))
        {
            Some(r) => deref(&self.doc, r).clone(),
            None => {
                self.problems
                    .push(format!("{at}: status not described: {}", short(&a.body)));
                return;
            }
        };
        if (200..300).contains(&a.status) {
            self.succeeded
                .insert((self.server.clone(), method.to_owned(), template.to_owned()));
        }
        let Some(media) = declared["content"].get(&a.media) else {
            self.problems.push(format!(
                "{at}: answered {}, described {}",
                a.media, declared["content"]
            ));
            return;
        };
        if a.media == "application/json" {
            let mut errs = Vec::new();
            validate_in(&self.doc, &media["schema"], &a.body, "", &mut errs);
            if !errs.is_empty() {
                self.problems.push(format!(
                    "{at}: {} (answer: {})",
                    describe(&errs),
                    short(&a.body)
                ));
            }
        }
    }

    async fn transmit(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        if path.ends_with("/events") {
            return self.stream_head(path).await;
        }
        let headers: &[(&str, &str)] = match body {
            Some(_) => &[("content-type", "application/json")],
            None => &[],
        };
        let bytes = body.map(Value::to_string).unwrap_or_default();
        let r = self
            .http
            .request(method, &format!("{}{path}", self.base), headers, bytes)
            .await
            .unwrap_or_else(|e| panic!("the emulator answers: {e}"));
        let media = r
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("");
        Answer {
            status: r.status.as_u16(),
            media: media.trim().to_owned(),
            body: r.json(),
        }
    }

    /// An answer that may never end (the event stream): its head, and its body when it
    /// is an error with a length.
    async fn stream_head(&self, path: &str) -> Answer {
        let addr = self.base.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let mut read = async |got: &mut Vec<u8>| {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("the emulator answers")
                .unwrap();
            assert!(n > 0, "the connection closed early: {got:?}");
            got.extend_from_slice(&buf[..n]);
        };
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            read(&mut got).await;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let status: u16 = head[9..12].parse().unwrap();
        let media = header("content-type:").unwrap_or_default();
        let media = media.split(';').next().unwrap_or("").trim().to_owned();
        let length: Option<usize> = header("content-length:").and_then(|l| l.parse().ok());
        let mut body = Value::Null;
        if let (false, Some(length)) = (status == 200, length) {
            while got.len() < end + length {
                read(&mut got).await;
            }
            body = serde_json::from_slice(&got[end..end + length]).unwrap_or(Value::Null);
        }
        Answer {
            status,
            media,
            body,
        }
    }

    async fn graph(&self, ids: &Ids, method: &str, path: &str, body: Value) -> Value {
        let r = self
            .http
            .json(
                method,
                &format!("{}/v21.0{path}", self.base),
                Some(&ids.token),
                Some(&body),
            )
            .await
            .unwrap();
        assert!(r.is_success(), "{method} {path}: {}", r.text());
        r.json()
    }

    /// Every described operation answered a valid request under each server it is
    /// described under; no problem seen.
    fn finish(self) {
        let mut problems = self.problems;
        for (method, template) in described(&self.doc) {
            for server in servers_of(&self.doc, &template) {
                let key = (server.clone(), method.clone(), template.clone());
                if !self.succeeded.contains(&key) {
                    problems.push(format!(
                        "{method} {server}{template}: never answered a valid request"
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// The ids a drive needs: a tenant's token, numbers and WABA.
struct Ids {
    token: String,
    phone: String,
    phone2: String,
    display: String,
    waba: String,
}

impl Ids {
    fn default_tenant() -> Self {
        Self {
            token: TOKEN.into(),
            phone: PHONE.into(),
            phone2: PHONE2.into(),
            display: DISPLAY.into(),
            waba: WABA.into(),
        }
    }

    /// From the tenant answer.
    fn of(t: &Value) -> Self {
        let s = |k: &str| {
            t[k].as_str()
                .unwrap_or_else(|| panic!("tenant {k}: {t}"))
                .to_owned()
        };
        Self {
            token: s("access_token"),
            phone: s("phone_number_id"),
            phone2: t["phone_numbers"][1]["id"]
                .as_str()
                .expect("a second number")
                .into(),
            display: s("display_phone_number"),
            waba: s("waba_id"),
        }
    }
}

/// Every route but the tenant routes once with a valid request and many with invalid
/// ones, under the driver's current server; each answer as described.
async fn drive(d: &mut Driver, ids: &Ids, receiver: &Receiver) {
    // State and configuration.
    d.ok("GET", "/health", None).await;
    d.ok("GET", "/config", None).await;
    d.ok("GET", "/openapi.json", None).await;
    d.ok("PUT", "/webhook", Some(json!({ "url": receiver.url })))
        .await;
    d.ok("PUT", "/webhook", Some(json!({}))).await;
    d.invalid("PUT", "/webhook", json!({ "url": 5 })).await;
    d.invalid("PUT", "/webhook", json!({ "verify_token": true }))
        .await;

    // One more business number; the same again is refused.
    let brazil = json!({"display_phone_number": "+55 11 96218-5237", "profile": "test"});
    d.ok("POST", "/phone_numbers", Some(brazil.clone())).await;
    d.refused("POST", "/phone_numbers", Some(brazil), 400).await;
    d.refused(
        "POST",
        "/phone_numbers",
        Some(json!({"display_phone_number": "5511962185230", "id": "abc"})),
        400,
    )
    .await;
    d.invalid("POST", "/phone_numbers", json!({})).await;
    d.invalid(
        "POST",
        "/phone_numbers",
        json!({"display_phone_number": 5511962185230u64}),
    )
    .await;
    let beta = json!({"display_phone_number": "5511962185230", "profile": "beta"});
    d.invalid("POST", "/phone_numbers", beta).await;

    // Users.
    let user = json!({"wa_id": USER, "name": "Ana", "platform": "ios", "version": "2.25.26",
                      "window_open": true, "username": "ana.calls"});
    d.ok("POST", "/users", Some(user)).await;
    d.ok(
        "POST",
        "/users",
        Some(json!({"wa_id": USER, "username": null})),
    )
    .await;
    d.ok("GET", "/users", None).await;
    d.invalid("POST", "/users", json!({"name": "no number"}))
        .await;
    d.invalid("POST", "/users", json!({"wa_id": 16315551234u64}))
        .await;
    d.invalid("POST", "/users", json!({"wa_id": USER, "platform": "tv"}))
        .await;
    d.invalid("POST", "/users", json!({"wa_id": USER, "window_open": 1}))
        .await;
    d.invalid("POST", "/users", json!({"wa_id": USER, "username": "ab"}))
        .await;

    // A message with a call button: read, tapped, the call hung up (twice: refused).
    let sent = d
        .graph(
            ids,
            "POST",
            &format!("/{}/messages", ids.phone),
            voice_call(USER, json!({"payload": "P"})),
        )
        .await;
    let mid = sent["messages"][0]["id"].as_str().unwrap().to_owned();
    let users = format!("/users/{USER}");
    d.ok(
        "POST",
        &format!("{users}/read"),
        Some(json!({ "message_id": mid })),
    )
    .await;
    d.invalid("POST", &format!("{users}/read"), json!({})).await;
    let tap = d
        .ok(
            "POST",
            &format!("{users}/tap"),
            Some(json!({ "message_id": mid })),
        )
        .await;
    d.refused(
        "POST",
        &format!("{users}/tap"),
        Some(json!({"message_id": "wamid.none"})),
        404,
    )
    .await;
    let call = tap["call_id"].as_str().unwrap_or("").to_owned();
    d.refused(
        "POST",
        &format!("{users}/tap"),
        Some(json!({ "message_id": mid })),
        409,
    )
    .await;
    d.ok("POST", &format!("/calls/{call}/hangup"), None).await;
    d.refused("POST", &format!("/calls/{call}/hangup"), None, 409)
        .await;
    d.refused("POST", "/calls/wacid.none/hangup", None, 404)
        .await;
    d.refused("POST", "/calls/wacid.none/decline", None, 404)
        .await;

    // A text; a call link, failed by the client; the call icon.
    d.ok(
        "POST",
        &format!("{users}/messages"),
        Some(json!({"text": "hello"})),
    )
    .await;
    d.invalid("POST", &format!("{users}/messages"), json!({"text": 1}))
        .await;
    d.refused(
        "POST",
        "/users/not-a-number/messages",
        Some(json!({"text": "hi"})),
        400,
    )
    .await;
    let link = format!("https://wa.me/call/{}?biz_payload=Q", ids.display);
    let opened = d
        .ok(
            "POST",
            &format!("{users}/open-link"),
            Some(json!({ "url": link })),
        )
        .await;
    d.invalid("POST", &format!("{users}/open-link"), json!({}))
        .await;
    let call = opened["call_id"].as_str().unwrap_or("").to_owned();
    d.invalid("POST", &format!("/calls/{call}/fail"), json!({"code": 1}))
        .await;
    d.ok(
        "POST",
        &format!("/calls/{call}/fail"),
        Some(json!({"code": 138021})),
    )
    .await;
    let icon = d
        .ok("POST", &format!("{users}/call"), Some(json!({})))
        .await;
    let call = icon["call_id"].as_str().unwrap_or("").to_owned();
    d.ok("POST", &format!("/calls/{call}/hangup"), Some(json!({})))
        .await;

    // A call the business accepts with an SDP that can connect (ICE, a candidate): the
    // user's media routes. Nobody listens at the candidate; the endpoint still takes keys.
    let placed = d
        .ok("POST", &format!("{users}/call"), Some(json!({})))
        .await;
    let call = placed["call_id"].as_str().unwrap_or("").to_owned();
    d.graph(
        ids,
        "POST",
        &format!("/{}/calls", ids.phone),
        json!({"messaging_product": "whatsapp", "call_id": call, "action": "accept",
               "session": {"sdp_type": "answer", "sdp": MEDIA_ANSWER}}),
    )
    .await;
    d.ok("GET", &format!("/calls/{call}/media"), None).await;
    d.invalid(
        "POST",
        &format!("/calls/{call}/dtmf"),
        json!({"digits": ""}),
    )
    .await;
    d.ok(
        "POST",
        &format!("/calls/{call}/dtmf"),
        Some(json!({"digits": "1#"})),
    )
    .await;
    d.invalid(
        "POST",
        &format!("/calls/{call}/play"),
        json!({"tone_hz": 5}),
    )
    .await;
    d.ok(
        "POST",
        &format!("/calls/{call}/play"),
        Some(json!({"tone_hz": 440})),
    )
    .await;
    d.ok("POST", &format!("/calls/{call}/hangup"), None).await;

    // Business-initiated calls from the UK number: a permanent permission from the
    // profile, then one call answered and one declined.
    d.invalid(
        "POST",
        &format!("{users}/permission-reply"),
        json!({"response": "maybe"}),
    )
    .await;
    d.invalid(
        "POST",
        &format!("{users}/permission-reply"),
        json!({"permanent": true}),
    )
    .await;
    let profile = json!({"response": "accept", "permanent": true, "phone_number_id": ids.phone2});
    d.ok("POST", &format!("{users}/permission-reply"), Some(profile))
        .await;
    for action in ["answer", "decline"] {
        let placed = d
            .graph(
                ids,
                "POST",
                &format!("/{}/calls", ids.phone2),
                connect(&plus(USER)),
            )
            .await;
        let call = placed["calls"][0]["id"].as_str().unwrap().to_owned();
        let body = (action == "answer").then(|| json!({ "sdp": SDP_ANSWER }));
        d.ok("POST", &format!("/calls/{call}/{action}"), body).await;
        if action == "answer" {
            d.ok("POST", &format!("/calls/{call}/hangup"), None).await;
        }
    }
    d.invalid("POST", "/calls/wacid.none/answer", json!({"sdp": 1}))
        .await;

    // Templates.
    let created = d
        .graph(
            ids,
            "POST",
            &format!("/{}/message_templates", ids.waba),
            json!({"name": "described", "language": "en_US", "category": "UTILITY",
                   "components": [{"type": "BODY", "text": "Hello"}]}),
        )
        .await;
    let template = created["id"].as_str().unwrap().to_owned();
    let status = format!("/templates/{template}/status");
    d.ok(
        "POST",
        &status,
        Some(json!({"status": "PAUSED", "reason": "LOW_QUALITY"})),
    )
    .await;
    d.invalid("POST", &status, json!({"status": "NOPE"})).await;
    d.invalid("POST", &status, json!({})).await;
    d.refused(
        "POST",
        "/templates/404/status",
        Some(json!({"status": "APPROVED"})),
        404,
    )
    .await;
    d.ok("GET", "/templates", None).await;

    // The clock.
    d.ok("GET", "/clock", None).await;
    d.ok("POST", "/clock/advance", Some(json!({"seconds": 61.5})))
        .await;
    d.invalid("POST", "/clock/advance", json!({})).await;
    d.invalid("POST", "/clock/advance", json!({"seconds": -1}))
        .await;
    d.invalid("POST", "/clock/advance", json!({"seconds": 34560001}))
        .await;

    // The journals, with every filter.
    d.ok("GET", "/webhooks", None).await;
    d.ok(
        "GET",
        "/webhooks?since=d1&field=calls&call_id=x&limit=2",
        None,
    )
    .await;
    d.ok("GET", "/requests", None).await;
    d.ok("GET", "/requests?since=1", None).await;
    d.ok("GET", "/messages", None).await;
    d.ok("GET", "/calls", None).await;
    d.ok("GET", "/sip", None).await;
    d.ok("GET", "/sip/ca.pem", None).await;

    // The inspector.
    d.ok("GET", "/ui", None).await;
    d.ok("GET", "/ui/app.js", None).await;
    d.ok("GET", "/ui/style.css", None).await;
    d.ok("GET", "/ui/favicon.svg", None).await;
    d.ok("GET", "/ui/permissions", None).await;
    d.ok("GET", "/events", None).await;

    // Snapshots and reset last: they replace the state above.
    let snapshot = d.ok("GET", "/snapshot", None).await;
    d.ok("PUT", "/snapshot", Some(snapshot)).await;
    d.invalid("PUT", "/snapshot", json!([])).await;
    d.ok("POST", "/reset", None).await;
}

/// Every operation once with a valid request (and many with invalid ones) on the
/// default tenant, the tenant routes, then every route again under a tenant.
#[tokio::test]
async fn every_route_answers_as_described() {
    let emu = Emu::start().await;
    let receiver = Receiver::default_tenant().await;
    let mut d = Driver::new(&emu);
    drive(&mut d, &Ids::default_tenant(), &receiver).await;

    d.invalid("POST", "/tenants", json!({"clock": "fast"}))
        .await;
    d.invalid("POST", "/tenants", json!({"seed": -1})).await;
    d.invalid("POST", "/tenants", json!({"clock_start": 5}))
        .await;
    d.invalid("POST", "/tenants", json!({"webhook_url": 5}))
        .await;
    let tenant = d
        .ok(
            "POST",
            "/tenants",
            Some(json!({"clock": "virtual", "seed": 3})),
        )
        .await;
    let id = tenant["id"].as_str().expect("a tenant id").to_owned();
    d.invalid("POST", "/tenants", json!({"phone_numbers": []}))
        .await;
    let unnamed = json!({"phone_numbers": [{"profile": "test"}]});
    d.invalid("POST", "/tenants", unnamed).await;
    let other = d.ok("POST", "/tenants", None).await;
    let brazil = json!({"phone_numbers": [
        {"display_phone_number": DISPLAY},
        {"display_phone_number": "+55 11 96218-5237", "business_initiated_calling": true, "profile": "test"}]});
    let chosen = d.ok("POST", "/tenants", Some(brazil)).await;
    d.ok("GET", "/tenants", None).await;
    d.ok("GET", &format!("/tenants/{id}"), None).await;

    d.under(Some(&tenant));
    drive(&mut d, &Ids::of(&tenant), &receiver).await;
    d.under(None);

    for t in [
        &id,
        other["id"].as_str().unwrap_or(""),
        chosen["id"].as_str().unwrap_or(""),
    ] {
        d.ok("DELETE", &format!("/tenants/{t}"), None).await;
    }
    d.refused("GET", &format!("/tenants/{id}"), None, 404).await;
    d.refused("DELETE", &format!("/tenants/{id}"), None, 404)
        .await;
    d.finish();
}

/// One tenant more than `max_tenants` is refused with the described reason.
#[tokio::test]
async fn the_tenant_limit_answers_as_described() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.max_tenants = 1;
    let emu = Emu::start_with(opts).await;
    let mut d = Driver::new(&emu);
    d.ok("POST", "/tenants", None).await;
    let refusal = d.refused("POST", "/tenants", None, 409).await;
    assert_eq!(refusal["error"]["error_data"]["reason"], "tenant_limit");
    assert!(d.problems.is_empty(), "{}", d.problems.join("\n"));
}

/// With `--admin-token`, a request without it answers the described 401.
#[tokio::test]
async fn a_missing_admin_token_answers_as_described() {
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.admin_token = Some("described".into());
    let emu = Emu::start_with(opts).await;
    let mut d = Driver::new(&emu);
    for path in [
        "/health",
        "/config",
        "/openapi.json",
        "/ui/permissions",
        "/events",
    ] {
        d.refused("GET", path, None, 401).await;
    }
    d.refused("POST", "/clock/advance", Some(json!({"seconds": 1})), 401)
        .await;
    d.refused("PUT", "/webhook", Some(json!({})), 401).await;
    assert!(d.problems.is_empty(), "{}", d.problems.join("\n"));
}

/// `GET /__emulator/openapi.json` is the file, byte for byte.
#[tokio::test]
async fn the_description_is_served_as_it_is_in_the_repository() {
    let emu = Emu::start().await;
    let r = Client::new()
        .request("GET", &format!("{}{PREFIX}/openapi.json", emu.url), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.body == DESCRIPTION.as_bytes(),
        "the served description differs from admin.json"
    );
}

/// A method a described path does not describe is no route (404, code 100), at the
/// root and under a tenant; nor is a root-only path under a tenant.
#[tokio::test]
async fn methods_a_path_does_not_describe_are_not_routes() {
    let emu = Emu::start().await;
    let (status, tenant) = emu.admin("POST", "/tenants", Value::Null).await;
    assert_eq!(status, 200, "{tenant}");
    let doc = description();
    let described = described(&doc);
    let mut problems = Vec::new();
    for (server, prefix) in [
        (PREFIX, PREFIX),
        (TENANT_SERVER, tenant["admin_path"].as_str().unwrap()),
    ] {
        for path in doc["paths"].as_object().unwrap().keys() {
            let here = servers_of(&doc, path).iter().any(|s| s == server);
            let concrete: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for m in METHODS {
                if here && described.contains(&(m.to_owned(), path.clone())) {
                    continue;
                }
                let (status, v) = emu.raw(m, &format!("{prefix}{concrete}"), &[], "").await;
                if status != 404 || v["error"]["code"] != 100 {
                    problems.push(format!("{m} {prefix}{concrete}: {status} {v}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "undescribed routes that answer:\n{}",
        problems.join("\n")
    );
}
