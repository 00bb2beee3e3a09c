//! App expectations against the emulator's Graph request journal: `expect the app to
//! accept $call within 5s`, `expect the app not to …`, for an app under test (`--app`).

use super::context::Ctx;
use super::http::Reply;
use super::matcher::{best_match, get_path, Expected, Mismatch};
use super::{digits, first_id, is_after, summarize};
use crate::syntax::duration::format_duration;
use crate::syntax::json::quote;
use crate::syntax::*;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use wa_emulator::api::admin_types::RequestLog;

pub(super) struct Journaled {
    seq: u64,
    method: String,
    path: String,
    body: Value,
    reply: Reply,
}

impl<'a> Ctx<'a> {
    pub(super) async fn refresh_requests(&mut self) -> Result<(), String> {
        let path = format!("/requests?since={}", self.request_max_seq);
        let log: RequestLog = self.admin_answer(&path).await?;
        for r in log.requests {
            if r.seq <= self.request_max_seq {
                continue;
            }
            self.request_max_seq = r.seq;
            self.requests.push(Journaled {
                seq: r.seq,
                method: r.method,
                path: r.path,
                body: r.body,
                reply: Reply {
                    status: r.status,
                    body: r.response,
                },
            });
        }
        Ok(())
    }

    #[allow(clippy::disallowed_methods, reason = "the app runs in real time")]
    pub(super) async fn expect_app(
        &mut self,
        index: usize,
        then: bool,
        exp: &AppExpect,
    ) -> Result<Option<Reply>, String> {
        let m = self.app_criteria(exp).await?;
        let after = if then { self.last_request_seq } else { None };
        let within = exp.within.as_ref().map(|d| Duration::from_millis(d.ms));
        if exp.negated {
            if let Some(w) = within {
                tokio::time::sleep(w).await;
            }
            self.refresh_requests().await?;
            if let Some(r) = self
                .requests
                .iter()
                .find(|r| is_after(after, r.seq) && m.score(r).0)
            {
                return Err(format!(
                    "expected the app not to {}{}, but it did (request #{}: {} {} {})",
                    m.what,
                    exp.within
                        .as_ref()
                        .map(|d| format!(" within {}", format_duration(d.ms)))
                        .unwrap_or_default(),
                    r.seq,
                    r.method,
                    r.path,
                    summarize(&r.body)
                ));
            }
            return Ok(None);
        }
        let deadline = Instant::now() + within.unwrap_or(self.opts.app_default_within);
        loop {
            self.refresh_requests().await?;
            let found = self.requests.iter().find(|r| {
                !self.requests_consumed.contains_key(&r.seq)
                    && is_after(after, r.seq)
                    && m.score(r).0
            });
            if let Some(r) = found {
                let (seq, reply) = (r.seq, r.reply.clone());
                let id = match &exp.action {
                    AppAction::CallAction(_, v) => Some(self.var(v)?),
                    _ => first_id(&reply.body),
                };
                self.requests_consumed.insert(seq, index);
                self.last_request_seq = Some(seq);
                self.bind(&exp.bind, id, "the app's request")?;
                return Ok(Some(reply));
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let limit = within.unwrap_or(self.opts.app_default_within);
        let mut msg = format!(
            "expected the app to {} within {}",
            m.what,
            format_duration(limit.as_millis() as u64)
        );
        if let Some(a) = after {
            let _ = write!(msg, ", after request #{a}");
        }
        match self
            .requests
            .iter()
            .map(|r| (m.score(r), r))
            .max_by_key(|((_, rank, _), r)| (*rank, r.seq))
        {
            None => msg.push_str("\n  the app made no Graph request at all"),
            Some(((_, _, diffs), r)) => {
                let _ = write!(
                    msg,
                    "\n  the closest request the app made was #{}: {} {} (answered HTTP {})",
                    r.seq, r.method, r.path, r.reply.status
                );
                for d in diffs {
                    let _ = write!(msg, "\n    {d}");
                }
            }
        }
        Err(msg)
    }

    async fn app_criteria(&mut self, exp: &AppExpect) -> Result<AppCriteria, String> {
        let with = match &exp.with {
            Some(j) => Some(self.expected(j).await?),
            None => None,
        };
        let mut fields: Vec<(String, Value)> = Vec::new();
        let (method, suffix, what) = match &exp.action {
            AppAction::CallAction(v, call) => {
                let id = self.var(call)?;
                fields.push(("action".into(), json!(v.action())));
                fields.push(("call_id".into(), json!(id)));
                (
                    "POST".to_string(),
                    "/calls".to_string(),
                    format!("{} ${} ({id})", v.infinitive(), call.name),
                )
            }
            AppAction::Call(to) => {
                fields.push(("action".into(), json!("connect")));
                fields.push(("to".into(), json!(self.user(to)?)));
                ("POST".into(), "/calls".into(), format!("call {}", to.text))
            }
            AppAction::SendButton { to, payload } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                fields.push(("interactive.type".into(), json!("voice_call")));
                if let Some(p) = payload {
                    fields.push((
                        "interactive.action.parameters.payload".into(),
                        json!(p.value),
                    ));
                }
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("send {} a call button", to.text),
                )
            }
            AppAction::SendTemplate { to, name } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                fields.push(("template.name".into(), json!(name.value)));
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("send {} template {}", to.text, quote(&name.value)),
                )
            }
            AppAction::SendMessage { to } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("send {} a message", to.text),
                )
            }
            AppAction::AskPermission { to } => {
                fields.push(("to".into(), json!(self.user(to)?)));
                fields.push(("interactive.type".into(), json!("call_permission_request")));
                (
                    "POST".into(),
                    "/messages".into(),
                    format!("ask {} for call permission", to.text),
                )
            }
            AppAction::Request { method, path } => (
                method.text.clone(),
                path.value.clone(),
                format!("request {} {}", method.text, path.value),
            ),
        };
        Ok(AppCriteria {
            method,
            suffix,
            fields,
            with,
            what,
        })
    }
}

/// What an app expectation looks for in the request journal.
struct AppCriteria {
    method: String,
    suffix: String,
    /// Dotted paths into the request body and the value each must have.
    fields: Vec<(String, Value)>,
    with: Option<Expected>,
    what: String,
}

impl AppCriteria {
    /// (matched, rank, differences)
    fn score(&self, r: &Journaled) -> (bool, i64, Vec<String>) {
        let mut diffs = Vec::new();
        let mut rank = 0;
        let path = r.path.split('?').next().unwrap_or("");
        if r.method.eq_ignore_ascii_case(&self.method) && path.ends_with(&self.suffix) {
            rank += 100;
        } else {
            diffs.push(format!(
                "request: expected {} …{}, got {} {}",
                self.method, self.suffix, r.method, r.path
            ));
        }
        for (p, want) in &self.fields {
            let got = get_path(&r.body, p);
            let same = match (got, want) {
                (Some(Value::String(g)), Value::String(w)) if p == "to" => digits(g) == digits(w),
                (Some(g), w) => g == w,
                (None, _) => false,
            };
            if same {
                rank += 10;
            } else {
                diffs.push(format!(
                    "{p}: expected {want}, got {}",
                    got.map(summarize)
                        .unwrap_or_else(|| "nothing (key absent)".into())
                ));
            }
        }
        if let Some(w) = &self.with {
            let d = best_match(w, &r.body);
            rank -= d.len() as i64;
            diffs.extend(d.iter().map(Mismatch::to_string));
        }
        (diffs.is_empty(), rank, diffs)
    }
}
