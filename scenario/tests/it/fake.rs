//! A tiny stand-in emulator, just enough of the Graph and admin surfaces to drive the
//! runner end to end in tests: two business numbers (a +1 one without business-initiated
//! calling, 138013, and a UK one with it), users, call buttons, taps, native calls,
//! business calls, accept / terminate, hang-up, a virtual clock with a 60 s unanswered
//! timeout, the delivery log and the request journal. It is not the emulator: its only
//! job is to let the runner's own behaviour (matching, binding, diffs, time windows,
//! which number a step acts as) be tested.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use scenario::runner::target::{RunningTarget, Starting, TargetFactory};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const PHONE: &str = "106540352242922";
pub const DISPLAY: &str = "15550783881";
/// The second number, in a country where business-initiated calling exists.
pub const PHONE2: &str = "110972043181256";
pub const DISPLAY2: &str = "447700900461";

fn display_of(phone: &str) -> &'static str {
    if phone == PHONE2 {
        DISPLAY2
    } else {
        DISPLAY
    }
}

/// A Graph `to` as the real API reads it: digits after `+` are the whole number;
/// without `+`, the business number's calling code (1 or 44 here) is prepended unless
/// the digits already start with it.
fn wa_id_of(to: &str, phone: &str) -> String {
    let digits: String = to.chars().filter(char::is_ascii_digit).collect();
    let code = if phone == PHONE2 { "44" } else { "1" };
    if to.trim_start().starts_with('+') || digits.starts_with(code) {
        digits
    } else {
        format!("{code}{digits}")
    }
}

/// (user, payload, accepted at, ended, started at, phone number id, business-initiated)
type Call = (String, Option<String>, Option<u64>, bool, u64, String, bool);

#[derive(Default)]
struct State {
    now: u64,
    seq: u64,
    req_seq: u64,
    next_id: u64,
    users: HashMap<String, String>,
    /// message id → (user, payload, expires at, phone number id)
    buttons: HashMap<String, (String, Option<String>, u64, String)>,
    /// call id → (user, payload, accepted at, ended, started at, phone, business-initiated)
    calls: HashMap<String, Call>,
    deliveries: Vec<Value>,
    requests: Vec<Value>,
    /// A deliberate fault for tests: echo this instead of the real payload.
    wrong_payload: Option<String>,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}.FAKE{}", self.next_id)
    }

    fn deliver(&mut self, field: &str, phone: &str, mut value: Value) {
        value["metadata"] =
            json!({"display_phone_number": display_of(phone), "phone_number_id": phone});
        self.seq += 1;
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
            "changes": [{"field": field, "value": value}]}]});
        self.deliveries
            .push(json!({"seq": self.seq, "field": field, "body": body, "state": "held"}));
    }

    fn call_event(&mut self, id: &str, event: &str) {
        let (user, payload, accepted, _, _, phone, outbound) = self.calls[id].clone();
        let (from, to, direction) = if outbound {
            (display_of(&phone).to_string(), user, "BUSINESS_INITIATED")
        } else {
            (user, display_of(&phone).to_string(), "USER_INITIATED")
        };
        let mut call = json!({"id": id, "from": from, "to": to, "event": event, "direction": direction,
            "timestamp": self.now.to_string()});
        if let Some(p) = payload {
            call["cta_payload"] = json!(self.wrong_payload.clone().unwrap_or(p));
        }
        if event == "terminate" {
            if let Some(a) = accepted {
                call["status"] = json!("COMPLETED");
                call["duration"] = json!(self.now - a);
            } else {
                call["status"] = json!("FAILED");
            }
        }
        self.deliver(
            "calls",
            &phone,
            json!({"messaging_product": "whatsapp", "calls": [call]}),
        );
    }

    fn end(&mut self, id: &str) {
        self.calls.get_mut(id).expect("known call").3 = true;
        self.call_event(id, "terminate");
    }
}

fn ok(v: Value) -> (u16, Value) {
    (200, v)
}

fn graph_error(status: u16, code: u64, details: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"message": format!("(#{code}) error"), "type": "OAuthException", "code": code,
        "error_data": {"details": details}, "fbtrace_id": "FAKE"}}),
    )
}

fn handle(st: &mut State, method: &str, path: &str, query: &str, body: Value) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["__emulator", "config"]) => ok(
            json!({"phone_number_id": PHONE, "waba_id": "102290129340398",
            "display_phone_number": DISPLAY, "access_token": "wa-emulator-token",
            "phone_numbers": [
                {"id": PHONE, "display_phone_number": DISPLAY, "waba_id": "102290129340398", "business_initiated_calling": false},
                {"id": PHONE2, "display_phone_number": DISPLAY2, "waba_id": "102290129340398", "business_initiated_calling": true},
            ]}),
        ),
        ("PUT", ["__emulator", "webhook"]) => ok(json!({"url": body["url"], "verified": true})),
        ("GET", ["__emulator", "clock"]) => ok(json!({"mode": "virtual", "now": st.now})),
        ("POST", ["__emulator", "reset"]) => {
            let now = st.now;
            *st = State {
                now,
                ..State::default()
            };
            ok(json!({"status": "ok"}))
        }
        ("POST", ["__emulator", "clock", "advance"]) => {
            let secs = body["seconds"].as_u64().unwrap_or(0);
            for _ in 0..secs {
                st.now += 1;
                let due: Vec<String> = st
                    .calls
                    .iter()
                    .filter(|(_, c)| !c.3 && c.2.is_none() && st.now - c.4 >= 60)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in due {
                    st.end(&id);
                }
            }
            ok(json!({"mode": "virtual", "now": st.now}))
        }
        ("POST", ["__emulator", "users"]) => {
            let wa = body["wa_id"].as_str().unwrap_or_default().to_string();
            st.users.insert(
                wa.clone(),
                body["platform"].as_str().unwrap_or("android").into(),
            );
            ok(json!({"wa_id": wa}))
        }
        ("POST", ["__emulator", "users", wa, "tap"]) => {
            let msg = body["message_id"].as_str().unwrap_or_default();
            let Some((_, payload, expires, phone)) = st.buttons.get(msg).cloned() else {
                return graph_error(400, 100, "unknown message");
            };
            if st.now >= expires {
                return graph_error(400, 100, "the button has expired");
            }
            let id = st.id("wacid");
            st.calls.insert(
                id.clone(),
                (wa.to_string(), payload, None, false, st.now, phone, false),
            );
            st.call_event(&id, "connect");
            ok(json!({"call_id": id}))
        }
        ("POST", ["__emulator", "users", wa, "messages"]) => {
            let phone = body["phone_number_id"]
                .as_str()
                .unwrap_or(PHONE)
                .to_string();
            let id = st.id("wamid");
            let now = st.now.to_string();
            st.deliver(
                "messages",
                &phone,
                json!({"messaging_product": "whatsapp", "messages": [{"from": wa, "id": id,
                "timestamp": now, "type": "text", "text": {"body": body["text"]}}]}),
            );
            ok(json!({"message_id": id}))
        }
        ("POST", ["__emulator", "users", wa, "call"]) => {
            let phone = body["phone_number_id"]
                .as_str()
                .unwrap_or(PHONE)
                .to_string();
            let id = st.id("wacid");
            st.calls.insert(
                id.clone(),
                (wa.to_string(), None, None, false, st.now, phone, false),
            );
            st.call_event(&id, "connect");
            ok(json!({"call_id": id}))
        }
        ("POST", ["__emulator", "calls", id, "answer"]) => {
            let Some(call) = st.calls.get_mut(*id) else {
                return graph_error(404, 100, "unknown call");
            };
            call.2 = Some(st.now);
            ok(json!({"call_id": id, "status": "ACCEPTED"}))
        }
        ("POST", ["__emulator", "calls", id, "hangup"]) => {
            if !st.calls.contains_key(*id) {
                return graph_error(404, 100, "unknown call");
            }
            st.end(id);
            ok(json!({"call_id": id, "status": "COMPLETED"}))
        }
        ("GET", ["__emulator", "webhooks"]) => {
            let since: u64 = query
                .strip_prefix("since=")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let items: Vec<Value> = st
                .deliveries
                .iter()
                .filter(|d| d["seq"].as_u64() > Some(since))
                .cloned()
                .collect();
            ok(json!({"deliveries": items, "evicted": 0, "capacity": 1000}))
        }
        ("GET", ["__emulator", "requests"]) => {
            let since: u64 = query
                .strip_prefix("since=")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let items: Vec<Value> = st
                .requests
                .iter()
                .filter(|d| d["seq"].as_u64() > Some(since))
                .cloned()
                .collect();
            ok(json!({"requests": items, "evicted": 0, "capacity": 1000}))
        }
        ("POST", [_, phone @ (PHONE | PHONE2), "messages"]) => {
            let phone = phone.to_string();
            let to = wa_id_of(body["to"].as_str().unwrap_or_default(), &phone);
            if body["interactive"]["action"]["parameters"]["display_text"]
                .as_str()
                .is_some_and(|t| t.chars().count() > 20)
            {
                return graph_error(400, 131009, "display_text is longer than 20 characters");
            }
            let id = st.id("wamid");
            let params = &body["interactive"]["action"]["parameters"];
            let ttl = params["ttl_minutes"].as_u64().unwrap_or(10080);
            let payload = params["payload"].as_str().map(str::to_string);
            st.buttons.insert(
                id.clone(),
                (to.clone(), payload, st.now + ttl * 60, phone.clone()),
            );
            let now = st.now.to_string();
            st.deliver(
                "messages",
                &phone,
                json!({"messaging_product": "whatsapp", "statuses": [{"id": id, "status": "sent",
                "timestamp": now, "recipient_id": to}]}),
            );
            ok(
                json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": id}]}),
            )
        }
        ("POST", [_, phone @ (PHONE | PHONE2), "calls"]) if body["action"] == "connect" => {
            if *phone == PHONE {
                return graph_error(
                    400,
                    138013,
                    "business-initiated calling is not available for +1 numbers",
                );
            }
            let to = wa_id_of(body["to"].as_str().unwrap_or_default(), phone);
            let id = st.id("wacid");
            st.calls.insert(
                id.clone(),
                (to, None, None, false, st.now, phone.to_string(), true),
            );
            st.call_event(&id, "connect");
            ok(json!({"messaging_product": "whatsapp", "calls": [{"id": id}]}))
        }
        ("POST", [_, PHONE | PHONE2, "calls"]) => {
            let id = body["call_id"].as_str().unwrap_or_default().to_string();
            let Some(call) = st.calls.get(&id).cloned() else {
                return graph_error(400, 100, "unknown call id");
            };
            if call.3 {
                return graph_error(400, 138004, "the call has ended");
            }
            match body["action"].as_str() {
                Some("accept") => st.calls.get_mut(&id).expect("known").2 = Some(st.now),
                Some("terminate") | Some("reject") => st.end(&id),
                _ => {}
            }
            ok(json!({"messaging_product": "whatsapp", "success": true}))
        }
        _ => graph_error(404, 100, &format!("the fake has no {method} {path}")),
    }
}

/// A running fake; dropping it stops its accept loop.
pub struct Fake {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningTarget for Fake {
    fn base_url(&self) -> String {
        self.url.clone()
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            now: 1_700_000_000,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let query = req.uri().query().unwrap_or("").to_string();
                            let raw = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                            let (status, reply) = {
                                let mut st = state.lock().unwrap();
                                let (status, reply) =
                                    handle(&mut st, &method, &path, &query, body.clone());
                                if !path.starts_with("/__emulator") {
                                    st.req_seq += 1;
                                    let seq = st.req_seq;
                                    st.requests.push(json!({"seq": seq, "method": method, "path": path, "query": query,
                                        "body": body, "status": status, "response": reply}));
                                }
                                (status, reply)
                            };
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(reply.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Fake { url, state, task }
    }

    /// Makes every echoed cta_payload wrong, to see how failures read.
    pub fn echo_wrong_payload(&self, p: &str) {
        self.state.lock().unwrap().wrong_payload = Some(p.to_string());
    }
}

/// Starts a fresh fake per scenario, like the in-process door.
pub struct FakeFactory;

impl TargetFactory for FakeFactory {
    fn start(&self, _seed: u64) -> Starting<'_> {
        Box::pin(async { Ok(Box::new(Fake::start().await) as Box<dyn RunningTarget>) })
    }
}
