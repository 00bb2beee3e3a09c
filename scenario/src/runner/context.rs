//! What one run knows, and its doors to the emulator: the admin API (`/__emulator`, or a
//! tenant's `/__emulator/tenants/{id}` on a shared emulator), the Graph API with the
//! tenant's token, and the clock (virtual or real).

use super::app::Journaled;
use super::http::{Http, Reply};
use super::matcher::Expected;
use super::target::Setup;
use super::webhook::Delivery;
use super::{summarize, Options};
use crate::diagnostic::Source;
use crate::syntax::*;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use wa_emulator::api::admin_types::{BusinessNumber, Clock, Config};
use wa_emulator::domain::ids::{PhoneNumberId, WabaId};
use wa_emulator::engine::ClockMode;

/// One scenario's run: the emulator's ids, the scenario's users and `$vars`, the last
/// response, and how far the delivery log and the request journal have been read and
/// matched. Each step file adds its methods in its own `impl Ctx`.
pub(super) struct Ctx<'a> {
    pub(super) http: &'a Http,
    pub(super) base: String,
    /// Where the admin routes are: `/__emulator`, or the run's tenant's
    /// `/__emulator/tenants/{id}` ([`Options::admin_path`]).
    pub(super) admin_path: String,
    pub(super) opts: &'a Options,
    /// Line number of each step, for messages that point at another step.
    pub(super) step_lines: Vec<usize>,
    /// Every business number the emulator hosts for the tenant, first one first
    /// (`GET /__emulator/config` `phone_numbers`).
    pub(super) numbers: Vec<BusinessNumber>,
    /// The number business steps act as (`business uses number …`; the first by default).
    pub(super) phone_number_id: PhoneNumberId,
    pub(super) waba_id: WabaId,
    pub(super) display_number: String,
    pub(super) token: String,
    pub(super) virtual_clock: Option<bool>,
    pub(super) users: HashMap<String, String>,
    pub(super) vars: HashMap<String, String>,
    pub(super) last: Option<Reply>,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) webhooks_from: u64,
    pub(super) webhook_max_seq: u64,
    /// Delivery seq → the step index that matched it.
    pub(super) consumed: HashMap<u64, usize>,
    pub(super) last_webhook_seq: Option<u64>,
    pub(super) requests: Vec<Journaled>,
    pub(super) requests_from: u64,
    pub(super) request_max_seq: u64,
    pub(super) requests_consumed: HashMap<u64, usize>,
    pub(super) last_request_seq: Option<u64>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        http: &'a Http,
        base: &str,
        src: &Source,
        scenario: &Scenario,
        opts: &'a Options,
    ) -> Ctx<'a> {
        Ctx {
            http,
            base: base.trim_end_matches('/').to_string(),
            admin_path: opts
                .admin_path
                .clone()
                .unwrap_or_else(|| "/__emulator".to_owned()),
            opts,
            step_lines: scenario
                .steps
                .iter()
                .map(|s| src.line_col(s.span.start).0)
                .collect(),
            numbers: Vec::new(),
            phone_number_id: PhoneNumberId::from(""),
            waba_id: WabaId::from(""),
            display_number: String::new(),
            token: String::new(),
            virtual_clock: None,
            users: HashMap::new(),
            vars: HashMap::new(),
            last: None,
            deliveries: Vec::new(),
            webhooks_from: 0,
            webhook_max_seq: 0,
            consumed: HashMap::new(),
            last_webhook_seq: None,
            requests: Vec::new(),
            requests_from: 0,
            request_max_seq: 0,
            requests_consumed: HashMap::new(),
            last_request_seq: None,
        }
    }

    pub(super) async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let url = format!("{}{}{path}", self.base, self.admin_path);
        self.http
            .send(method, &url, self.opts.admin_token.as_deref(), body)
            .await
    }

    /// An admin call that must succeed for the run to make sense (setup, logs, clock).
    pub(super) async fn admin_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let r = self.admin(method, path, body).await?;
        if r.is_success() {
            Ok(r)
        } else {
            Err(self.refused(method, path, &r))
        }
    }

    fn refused(&self, method: &str, path: &str, r: &Reply) -> String {
        format!(
            "{method} {}{path} answered HTTP {}: {}",
            self.admin_path,
            r.status,
            summarize(&r.body)
        )
    }

    /// An admin answer read as the emulator's own type for it (`api::admin_types`),
    /// straight from the bytes (the logs are read at every expectation).
    pub(super) async fn admin_answer<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{}{path}", self.base, self.admin_path);
        let answer = self
            .http
            .send_raw("GET", &url, self.opts.admin_token.as_deref(), None)
            .await?;
        let reply = || Reply::from_raw(answer.status.as_u16(), &answer.body);
        if !answer.is_success() {
            return Err(self.refused("GET", path, &reply()));
        }
        if let Ok(answer) = serde_json::from_slice(&answer.body) {
            return Ok(answer);
        }
        // Not the type: read it again the slow way for the same report as ever.
        let body = reply().body;
        serde_json::from_value(body.clone()).map_err(|e| {
            format!(
                "GET {}{path} answered something this runner cannot read ({e}): {}\n  help: is the target a wa-emulator of the same version as this runner?",
                self.admin_path,
                summarize(&body)
            )
        })
    }

    pub(super) async fn graph(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        self.http.send(method, &url, Some(&self.token), body).await
    }

    pub(super) async fn load_config(&mut self) -> Result<(), String> {
        let cfg: Config = self.admin_answer("/config").await?;
        let access_token = cfg
            .access_token
            .ok_or("GET /__emulator/config has no `access_token`: the emulator has no app")?;
        self.set_up(Setup {
            access_token,
            phone_numbers: cfg.phone_numbers,
        })
    }

    /// The token and the numbers, as `GET /__emulator/config` gives them.
    pub(super) fn set_up(&mut self, setup: Setup) -> Result<(), String> {
        let first = setup.phone_numbers.first().cloned().ok_or(
            "GET /__emulator/config lists no `phone_numbers`: the emulator has no business number",
        )?;
        self.token = setup.access_token;
        self.numbers = setup.phone_numbers;
        self.act_as(first);
        Ok(())
    }

    /// JSON from the story with the default tenant's ids replaced by the tenant's.
    pub(super) fn portable(&self, v: Value) -> Value {
        if self.opts.portable_ids.is_empty() {
            return v;
        }
        match v {
            Value::String(s) => Value::String(self.portable_id(s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|i| self.portable(i)).collect())
            }
            Value::Object(m) => {
                Value::Object(m.into_iter().map(|(k, i)| (k, self.portable(i))).collect())
            }
            other => other,
        }
    }

    /// An expectation with the default tenant's ids replaced by the tenant's.
    pub(super) fn portable_expected(&self, e: Expected) -> Expected {
        if self.opts.portable_ids.is_empty() {
            return e;
        }
        match e {
            Expected::Scalar(v) => Expected::Scalar(self.portable(v)),
            Expected::Array(items) => Expected::Array(
                items
                    .into_iter()
                    .map(|i| self.portable_expected(i))
                    .collect(),
            ),
            Expected::Object(fields) => Expected::Object(
                fields
                    .into_iter()
                    .map(|(k, i)| (k, self.portable_expected(i)))
                    .collect(),
            ),
            other => other,
        }
    }

    fn portable_id(&self, s: String) -> String {
        match self.opts.portable_ids.iter().find(|(d, _)| *d == s) {
            Some((_, own)) => own.clone(),
            None => s,
        }
    }

    pub(super) async fn is_virtual(&mut self) -> Result<bool, String> {
        if let Some(v) = self.virtual_clock {
            return Ok(v);
        }
        let clock: Clock = self.admin_answer("/clock").await?;
        let v = clock.mode == ClockMode::Virtual;
        self.virtual_clock = Some(v);
        Ok(v)
    }

    pub(super) async fn advance(&mut self, ms: u64) -> Result<(), String> {
        self.admin_ok(
            "POST",
            "/clock/advance",
            Some(&json!({"seconds": ms / 1000})),
        )
        .await?;
        Ok(())
    }

    /// Lets `ms` pass: on the virtual clock by advancing it, otherwise in real time.
    pub(super) async fn let_time_pass(&mut self, ms: u64) -> Result<(), String> {
        if self.is_virtual().await? {
            self.advance(ms.div_ceil(1000) * 1000).await
        } else {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
    }

    pub(super) fn var(&self, v: &Var) -> Result<String, String> {
        self.vars.get(&v.name).cloned().ok_or_else(|| {
            format!(
                "`${}` has no value: the step that should have bound it did not produce an id",
                v.name
            )
        })
    }

    pub(super) fn user(&self, n: &Name) -> Result<String, String> {
        self.users
            .get(&n.text)
            .cloned()
            .ok_or_else(|| format!("user `{}` is not declared", n.text))
    }

    /// A user as a Graph `to`: `+` and the digits, so the number stays the user's whatever
    /// the business number's country (without `+`, its calling code would be prepended).
    pub(super) fn to(&self, n: &Name) -> Result<String, String> {
        Ok(format!("+{}", self.user(n)?))
    }

    pub(super) fn pattern(&self, j: &Json) -> Result<Value, String> {
        j.pat
            .to_value(&|name| self.vars.get(name).cloned())
            .map(|v| self.portable(v))
    }

    pub(super) fn bind(
        &mut self,
        bind: &Option<Var>,
        id: Option<String>,
        what: &str,
    ) -> Result<(), String> {
        if let Some(v) = bind {
            let id = id.ok_or_else(|| format!("cannot bind `${}`: {what} has no id", v.name))?;
            self.vars.insert(v.name.clone(), id);
        }
        Ok(())
    }

    /// Maps a step index to its line in the file.
    pub(super) fn src_line(&self, step: usize) -> String {
        self.step_lines
            .get(step)
            .map(|l| l.to_string())
            .unwrap_or_else(|| "?".into())
    }
}
