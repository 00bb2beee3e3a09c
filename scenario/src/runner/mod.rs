//! Runs one checked scenario against an emulator at a base URL, over HTTP only: the
//! Graph API with the tenant's bearer token, and the `/__emulator` admin API.
//!
//! Webhook expectations read the emulator's delivery log (`GET /__emulator/webhooks`),
//! which records deliveries even with no callback URL, so a scenario that plays both
//! sides needs no receiver. App expectations read the Graph request journal
//! (`GET /__emulator/requests`).
//!
//! # Layout
//! - `mod.rs`: [`run_scenario`] (setup, then each step in order) and `Ctx::step`, which
//!   hands each kind of step to the file below that runs it.
//! - `context.rs`: `Ctx`, what one run knows (ids, users, `$vars`, logs read so far), and
//!   its doors: the admin API, the Graph API, the clock.
//! - `business.rs`: business steps as Graph requests; `business has number …` (an admin
//!   call) and `business uses number …`.
//! - `user.rs`: `user alice is …` and user steps, as admin API calls.
//! - `response.rs`: `expect status/error/success/response` on the step before.
//! - `webhook.rs`: the delivery log and `expect a … webhook`: matching, counting, and the
//!   closest delivery when nothing matched.
//! - `app.rs`: the request journal and `expect the app to …`.
//! - `media.rs`: `expect alice to hear audio on $call`, `expect media for $call …`: the
//!   user's media endpoint, polled in real time.
//! - `matcher.rs`: JSON subset matching (times on the clock included) and field-level
//!   differences.
//! - `http.rs`: the HTTP exchange ([`http::Reply`]).
//! - `target.rs`: the two doors, an emulator in this process or at a URL.

mod app;
mod business;
mod context;
pub mod http;
pub mod matcher;
mod media;
mod response;
pub mod target;
mod user;
mod webhook;

use crate::diagnostic::Source;
use crate::syntax::*;
use context::Ctx;
use http::{Http, Reply};
use matcher::Expected;
use serde_json::{json, Value};
use std::time::Duration;
use wa_emulator::api::admin_types::Clock;

pub use webhook::event_of;

/// The Graph API version the runner speaks; the emulator accepts any.
pub const GRAPH_VERSION: &str = "v21.0";

/// How the runner behaves beyond the scenario text.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--app URL`: webhooks go to an app under test.
    pub app: Option<String>,
    /// Bearer token for the admin API, when the emulator requires one.
    pub admin_token: Option<String>,
    /// `POST /__emulator/reset` before the scenario (a shared `--target` emulator with
    /// `--app`, or one without tenants).
    pub reset: bool,
    /// Where the admin routes are: `None` for `/__emulator` (the default tenant), or a
    /// tenant's `admin_path` (`/__emulator/tenants/{id}`), as `run --target` gives each
    /// scenario. Its Graph token comes from that tenant's `config`.
    pub admin_path: Option<String>,
    /// On a tenant: the default tenant's ids (app, WABA, numbers by position), each with
    /// the tenant's id in its place, so a story that writes the default tenant's ids runs
    /// unchanged on a tenant that mirrors its numbers (as `run --target` makes them).
    pub portable_ids: Vec<(String, String)>,
    /// Real time a positive expectation keeps polling before it fails, for emulators
    /// that log deliveries asynchronously.
    pub grace: Duration,
    /// Deadline for `expect the app to …` without `within`.
    pub app_default_within: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            app: None,
            admin_token: None,
            reset: false,
            admin_path: None,
            portable_ids: Vec::new(),
            grace: Duration::from_millis(1500),
            app_default_within: Duration::from_secs(5),
        }
    }
}

/// Why a scenario failed: at which step (index into `steps`), and what happened.
#[derive(Clone, Debug)]
pub struct Failure {
    pub step: Option<usize>,
    pub message: String,
}

/// Whether a scenario needs `--app` (it has `expect the app …` steps).
pub fn needs_app(s: &Scenario) -> bool {
    s.steps
        .iter()
        .any(|st| matches!(st.kind, StepKind::ExpectApp { .. }))
}

/// Runs every step in order; stops at the first failing step.
pub async fn run_scenario(
    http: &Http,
    base_url: &str,
    src: &Source,
    scenario: &Scenario,
    opts: &Options,
) -> Result<(), Failure> {
    run(http, base_url, None, src, scenario, opts).await
}

/// [`run_scenario`] on an emulator a [`target::TargetFactory`] has just started for this
/// scenario: its logs hold nothing from before, and what the door knows of its
/// configuration ([`target::RunningTarget::setup`]) is not asked for again.
pub async fn run_scenario_on_fresh(
    http: &Http,
    target: &dyn target::RunningTarget,
    src: &Source,
    scenario: &Scenario,
    opts: &Options,
) -> Result<(), Failure> {
    let fresh = Fresh {
        setup: target.setup(),
    };
    let base_url = target.base_url();
    // An emulator in this process is driven without sockets; with an app under test,
    // everything stays on loopback as the app sees it.
    let in_memory = match (&opts.app, target.in_memory()) {
        (None, Some(client)) => Some(http.with_in_memory(&base_url, client)),
        _ => None,
    };
    let http = in_memory.as_ref().unwrap_or(http);
    run(http, &base_url, Some(fresh), src, scenario, opts).await
}

/// An emulator started for the scenario.
struct Fresh {
    setup: Option<target::Setup>,
}

async fn run(
    http: &Http,
    base_url: &str,
    fresh: Option<Fresh>,
    src: &Source,
    scenario: &Scenario,
    opts: &Options,
) -> Result<(), Failure> {
    let setup = |message: String| Failure {
        step: None,
        message,
    };
    let mut ctx = Ctx::new(http, base_url, src, scenario, opts);
    if opts.reset {
        ctx.admin_ok("POST", "/reset", Some(&json!({})))
            .await
            .map_err(setup)?;
    }
    match fresh.as_ref().and_then(|f| f.setup.clone()) {
        Some(known) => ctx.set_up(known).map_err(setup)?,
        None => ctx.load_config().await.map_err(setup)?,
    }
    if let Some(app) = &opts.app {
        ctx.admin_ok("PUT", "/webhook", Some(&json!({"url": app})))
            .await
            .map_err(|e| {
                setup(format!(
                    "pointing the emulator's webhooks at the app under test failed: {e}"
                ))
            })?;
    }
    // Deliveries and requests from before this scenario (a shared emulator whose reset
    // keeps its logs) are not this scenario's business; a fresh emulator has none.
    if fresh.is_none() {
        ctx.refresh_webhooks().await.map_err(setup)?;
        ctx.webhooks_from = ctx.webhook_max_seq;
        ctx.deliveries.clear();
        if needs_app(scenario) {
            ctx.refresh_requests().await.map_err(setup)?;
            ctx.requests_from = ctx.request_max_seq;
            ctx.requests.clear();
        }
    }
    let steps = &scenario.steps;
    for (i, step) in steps.iter().enumerate() {
        let fail = |message: String| Failure {
            step: Some(i),
            message,
        };
        let reply = ctx.step(i, step).await.map_err(fail)?;
        if let Some(reply) = reply {
            let checked_next = matches!(
                steps.get(i + 1).map(|s| &s.kind),
                Some(StepKind::ExpectResponse(_))
            );
            if !reply.is_success() && !checked_next {
                let code = reply
                    .error_code()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default();
                return Err(fail(format!(
                    "the request failed with HTTP {}:\n    {}\n  help: if this failure is what the scenario tests, add `expect error{code}` on the next line",
                    reply.status,
                    summarize(&reply.body)
                )));
            }
            ctx.last = Some(reply);
        } else if !matches!(step.kind, StepKind::ExpectResponse(_)) {
            ctx.last = None;
        }
    }
    Ok(())
}

impl<'a> Ctx<'a> {
    /// Executes one step; returns the response for steps that make a request.
    async fn step(&mut self, index: usize, step: &Step) -> Result<Option<Reply>, String> {
        match &step.kind {
            StepKind::User(u) => {
                self.declare_user(u).await?;
                Ok(None)
            }
            StepKind::UseNumber(n) => {
                self.use_number(n)?;
                Ok(None)
            }
            StepKind::AddNumber { number, bind } => {
                self.add_number(number, bind).await?;
                Ok(None)
            }
            StepKind::Advance(d) => {
                self.advance(d.ms).await?;
                Ok(None)
            }
            StepKind::Wait(d) => {
                tokio::time::sleep(Duration::from_millis(d.ms)).await;
                Ok(None)
            }
            StepKind::Business { action, bind } => {
                let reply = self.business(action).await?;
                if reply.is_success() {
                    let id = match action {
                        BusinessAction::CreateTemplate { .. } => {
                            reply.body.get("id").and_then(id_string)
                        }
                        _ => first_id(&reply.body),
                    };
                    self.bind(bind, id, "the response")?;
                }
                Ok(Some(reply))
            }
            StepKind::Act { user, action, bind } => {
                let wa_id = self.user(user)?;
                let reply = self.user_action(&wa_id, action).await?;
                if reply.is_success() {
                    let id = first_id(&reply.body);
                    self.bind(bind, id, "the response")?;
                }
                Ok(Some(reply))
            }
            StepKind::ExpectResponse(r) => {
                self.expect_response(r).await?;
                Ok(None)
            }
            StepKind::ExpectWebhook { then, exp } => {
                self.expect_webhook(index, *then, exp).await?;
                Ok(None)
            }
            StepKind::ExpectApp { then, exp } => self.expect_app(index, *then, exp).await,
            StepKind::ExpectMedia(m) => {
                self.expect_media(m).await?;
                Ok(None)
            }
        }
    }
}

impl<'a> Ctx<'a> {
    /// The emulator's clock in Unix seconds, for the `now` of a JSON pattern: read when
    /// the step that uses it starts.
    async fn clock_secs(&mut self, j: &Json) -> Result<Option<i64>, String> {
        if j.pat.clock_values().is_empty() {
            return Ok(None);
        }
        let clock: Clock = self.admin_answer("/clock").await?;
        Ok(Some(i64::try_from(clock.now).unwrap_or(i64::MAX)))
    }

    /// JSON a step sends, `$names` bound and `now + …` as an integer of Unix seconds.
    async fn body_json(&mut self, j: &Json) -> Result<Value, String> {
        match self.clock_secs(j).await? {
            None => self.pattern(j),
            Some(now) => j
                .pat
                .to_value_at(&|name| self.vars.get(name).cloned(), Some(now))
                .map(|v| self.portable(v)),
        }
    }

    /// JSON an expectation looks for, `$names` bound and `now + …` read off the clock.
    async fn expected(&mut self, j: &Json) -> Result<Expected, String> {
        let now = self.clock_secs(j).await?;
        Expected::from_pat(&j.pat, &|name| self.vars.get(name).cloned(), now)
            .map(|e| self.portable_expected(e))
    }
}

/// Whether `seq` comes after the `then` anchor, if there is one.
fn is_after(anchor: Option<u64>, seq: u64) -> bool {
    anchor.is_none_or(|a| seq > a)
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id a response names: a sent message, a started call, a created template.
fn first_id(body: &Value) -> Option<String> {
    [
        "/messages/0/id",
        "/calls/0/id",
        "/call_id",
        "/message_id",
        "/id",
    ]
    .iter()
    .find_map(|p| body.pointer(p).and_then(id_string))
}

/// JSON on one line, cut to a readable length.
pub fn summarize(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 400 {
        format!("{}…", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_id_reads_graph_and_admin_responses() {
        assert_eq!(
            first_id(&json!({"messages": [{"id": "wamid.X"}]})).as_deref(),
            Some("wamid.X")
        );
        assert_eq!(
            first_id(&json!({"calls": [{"id": "wacid.Y"}]})).as_deref(),
            Some("wacid.Y")
        );
        assert_eq!(
            first_id(&json!({"call_id": "wacid.Z"})).as_deref(),
            Some("wacid.Z")
        );
        assert_eq!(first_id(&json!({"id": 123})).as_deref(), Some("123"));
    }
}
