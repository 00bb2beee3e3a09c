//! Webhook expectations against the emulator's delivery log: `expect a calls webhook
//! connect for $call with {…}`, `expect no …`, `expect 2 …`, `then expect …`. When
//! nothing matches, the message shows the closest delivery, field by field.

use super::context::Ctx;
use super::matcher::{best_match, find_key, get_path, mentions, Expected, Mismatch};
use super::{id_string, is_after, summarize};
use crate::syntax::duration::format_duration;
use crate::syntax::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use wa_emulator::api::admin_types::{WebhookLog, WebhookState};

pub(super) struct Delivery {
    seq: u64,
    field: String,
    events: Vec<String>,
    body: Value,
    state: WebhookState,
}

impl<'a> Ctx<'a> {
    pub(super) async fn refresh_webhooks(&mut self) -> Result<(), String> {
        let path = format!("/webhooks?since={}", self.webhook_max_seq);
        let log: WebhookLog = self.admin_answer(&path).await?;
        for d in log.deliveries {
            if d.seq <= self.webhook_max_seq {
                continue;
            }
            self.webhook_max_seq = d.seq;
            // The log's `event`, and what the body says happened when that reads
            // differently (`status_sent` is also `sent`).
            let mut events = vec![d.event];
            if let Some(e) = event_of(&d.body) {
                if !events.iter().any(|x| x.eq_ignore_ascii_case(&e)) {
                    events.push(e);
                }
            }
            self.deliveries.push(Delivery {
                seq: d.seq,
                field: d.field,
                events,
                body: d.body,
                state: d.state,
            });
        }
        Ok(())
    }

    async fn webhook_criteria(&mut self, exp: &WebhookExpect) -> Result<Criteria, String> {
        let with = match &exp.with {
            Some(j) => Some(self.expected(j).await?),
            None => None,
        };
        let subject = match &exp.subject {
            Some(Subject::Var(v)) => Some((format!("${}", v.name), self.var(v)?)),
            Some(Subject::User(n)) => Some((n.text.clone(), self.user(n)?)),
            None => None,
        };
        Ok(Criteria {
            field: exp.field.text.clone(),
            event: exp.event.as_ref().map(|e| e.text.clone()),
            subject,
            with,
            without: exp.without.iter().map(|t| t.value.clone()).collect(),
        })
    }

    #[allow(clippy::disallowed_methods, reason = "real-clock `within` and grace")]
    pub(super) async fn expect_webhook(
        &mut self,
        index: usize,
        then: bool,
        exp: &WebhookExpect,
    ) -> Result<(), String> {
        let crit = self.webhook_criteria(exp).await?;
        let after = if then { self.last_webhook_seq } else { None };
        match &exp.quant {
            Quant::A => {
                let within = exp.within.as_ref().map(|d| d.ms).unwrap_or(0);
                let virtual_clock = if within > 0 {
                    self.is_virtual().await?
                } else {
                    false
                };
                let started = Instant::now();
                let mut advanced = 0u64;
                let mut grace_start: Option<Instant> = None;
                loop {
                    self.refresh_webhooks().await?;
                    let found = self.deliveries.iter().find(|d| {
                        !self.consumed.contains_key(&d.seq)
                            && is_after(after, d.seq)
                            && crit.score(d).matched
                    });
                    if let Some(d) = found {
                        let (seq, id) = (d.seq, crit.bound_id(d));
                        self.consumed.insert(seq, index);
                        self.last_webhook_seq = Some(seq);
                        return self.bind(&exp.bind, id, "the matched webhook");
                    }
                    if virtual_clock && advanced < within {
                        // Step through the window so the match lands close to when it was due.
                        let step = (within / 20)
                            .max(1000)
                            .min(within - advanced)
                            .div_ceil(1000)
                            * 1000;
                        self.advance(step).await?;
                        advanced += step;
                        continue;
                    }
                    if !virtual_clock && (started.elapsed().as_millis() as u64) < within {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    let g = *grace_start.get_or_insert_with(Instant::now);
                    if g.elapsed() < self.opts.grace {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    return Err(self.webhook_miss(exp, &crit, after));
                }
            }
            Quant::No => {
                if let Some(d) = &exp.within {
                    self.let_time_pass(d.ms).await?;
                }
                self.refresh_webhooks().await?;
                let hits: Vec<&Delivery> = self
                    .deliveries
                    .iter()
                    .filter(|d| {
                        !self.consumed.contains_key(&d.seq)
                            && is_after(after, d.seq)
                            && crit.score(d).matched
                    })
                    .collect();
                if let Some(first) = hits.first() {
                    return Err(format!(
                        "expected {}, but {} arrived; the first:\n    {}",
                        crit.describe("no", exp.within.as_ref()),
                        plural(hits.len(), "matching webhook"),
                        delivery_line(first, &self.consumed)
                    ) + &format!("\n    body: {}", summarize(&first.body)));
                }
                Ok(())
            }
            Quant::Exactly(n) => {
                if let Some(d) = &exp.within {
                    self.let_time_pass(d.ms).await?;
                }
                self.refresh_webhooks().await?;
                let hits: Vec<&Delivery> = self
                    .deliveries
                    .iter()
                    .filter(|d| is_after(after, d.seq) && crit.score(d).matched)
                    .collect();
                if hits.len() as u64 != n.value {
                    let mut msg = format!(
                        "expected {}, but {} arrived",
                        crit.describe(&n.value.to_string(), exp.within.as_ref()),
                        hits.len()
                    );
                    for d in hits.iter().take(10) {
                        let _ = write!(msg, "\n    {}", delivery_line(d, &self.consumed));
                    }
                    if hits.is_empty() {
                        msg.push_str(&self.closest_delivery(&crit, after));
                    }
                    return Err(msg);
                }
                Ok(())
            }
        }
    }

    fn webhook_miss(&self, exp: &WebhookExpect, crit: &Criteria, after: Option<u64>) -> String {
        let mut msg = format!("expected {}", crit.describe("a", exp.within.as_ref()));
        if let Some(a) = after {
            let _ = write!(msg, ", after webhook #{a}");
        }
        msg.push_str(&self.closest_delivery(crit, after));
        msg
    }

    /// "the closest delivered webhook was …" with a field-level diff.
    fn closest_delivery(&self, crit: &Criteria, after: Option<u64>) -> String {
        if self.deliveries.is_empty() {
            return "\n  no webhook was delivered at all in this scenario".into();
        }
        let best = self
            .deliveries
            .iter()
            .map(|d| {
                let mut s = crit.score(d);
                if self.consumed.contains_key(&d.seq) {
                    s.rank -= 3;
                    s.notes.push(format!(
                        "already matched by the expectation on line {}",
                        self.src_line(self.consumed[&d.seq])
                    ));
                }
                if after.is_some_and(|a| d.seq <= a) {
                    s.rank -= 3;
                    s.notes.push(format!(
                        "arrived before webhook #{} that `then` must follow",
                        after.unwrap_or_default()
                    ));
                }
                (s, d)
            })
            .max_by_key(|(s, d)| (s.rank, std::cmp::Reverse(d.seq)))
            .expect("not empty");
        let (score, d) = best;
        let mut msg = format!(
            "\n  the closest delivered webhook was {}:",
            delivery_line(d, &self.consumed)
        );
        for n in &score.notes {
            let _ = write!(msg, "\n    {n}");
        }
        let others: Vec<String> = self
            .deliveries
            .iter()
            .filter(|o| o.seq != d.seq)
            .take(8)
            .map(|o| {
                format!(
                    "#{} {} {}",
                    o.seq,
                    o.field,
                    o.events.first().map(String::as_str).unwrap_or("")
                )
            })
            .collect();
        if !others.is_empty() {
            let more = self.deliveries.len() - 1 - others.len();
            let _ = write!(
                msg,
                "\n  other webhooks delivered: {}{}",
                others.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        msg
    }
}

/// What a webhook expectation looks for, with variables resolved.
struct Criteria {
    field: String,
    event: Option<String>,
    /// (how the scenario named it, the id or number it stands for)
    subject: Option<(String, String)>,
    with: Option<Expected>,
    without: Vec<String>,
}

struct Score {
    matched: bool,
    rank: i64,
    notes: Vec<String>,
}

impl Criteria {
    fn score(&self, d: &Delivery) -> Score {
        let mut rank = 0i64;
        let mut notes = Vec::new();
        let mut ok = true;
        if d.field == self.field {
            rank += 100;
        } else {
            ok = false;
            notes.push(format!(
                "field: expected `{}`, got `{}`",
                self.field, d.field
            ));
        }
        if let Some(e) = &self.event {
            if d.events.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                rank += 10;
            } else {
                ok = false;
                notes.push(format!(
                    "event: expected `{e}`, got `{}`",
                    d.events.join("` / `")
                ));
            }
        }
        if let Some((name, id)) = &self.subject {
            if mentions(&d.body, id) {
                rank += 10;
            } else {
                ok = false;
                notes.push(format!("for {name}: the webhook does not mention {id}"));
            }
        }
        if let Some(p) = &self.with {
            let diff = best_match(p, &d.body);
            if diff.is_empty() {
                rank += 10;
            } else {
                ok = false;
                rank -= diff.len() as i64;
                notes.extend(diff.iter().map(Mismatch::to_string));
            }
        }
        for key in &self.without {
            for (path, v) in find_key(&d.body, key) {
                ok = false;
                rank -= 1;
                notes.push(format!("{path}: expected absent, got {}", summarize(&v)));
            }
        }
        Score {
            matched: ok,
            rank,
            notes,
        }
    }

    /// What `as $name` binds: the id of the call, status or message the webhook is about.
    fn bound_id(&self, d: &Delivery) -> Option<String> {
        let value = get_path(&d.body, "entry[0].changes[0].value")?;
        for key in ["calls", "statuses", "messages"] {
            if let Some(id) = value
                .get(key)
                .and_then(|a| a.get(0))
                .and_then(|o| o.get("id"))
                .and_then(id_string)
            {
                return Some(id);
            }
        }
        value.get("message_template_id").and_then(id_string)
    }

    fn describe(&self, quant: &str, within: Option<&Dur>) -> String {
        let plural = quant != "a" && quant != "1";
        let mut s = format!(
            "{quant} `{}` webhook{}",
            self.field,
            if plural { "s" } else { "" }
        );
        if let Some(e) = &self.event {
            let _ = write!(s, " `{e}`");
        }
        if let Some((name, id)) = &self.subject {
            let _ = write!(s, " for {name} ({id})");
        }
        if let Some(p) = &self.with {
            let _ = write!(s, " with {p}");
        }
        if !self.without.is_empty() {
            let _ = write!(s, " without {}", self.without.join(", "));
        }
        if let Some(d) = within {
            let _ = write!(s, " within {}", format_duration(d.ms));
        }
        s
    }
}

/// The event a webhook body is about: a call's `event`, a status's `status`, an inbound
/// message's type (`interactive` ones by their interactive type), or a template `event`.
pub fn event_of(body: &Value) -> Option<String> {
    let value = get_path(body, "entry[0].changes[0].value")?;
    let first = |k: &str| value.get(k).and_then(|a| a.get(0));
    if let Some(e) = first("calls")
        .and_then(|c| c.get("event"))
        .and_then(Value::as_str)
    {
        return Some(e.to_string());
    }
    if let Some(s) = first("statuses")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
    {
        return Some(s.to_string());
    }
    if let Some(m) = first("messages") {
        if let Some(t) = m.pointer("/interactive/type").and_then(Value::as_str) {
            return Some(t.to_string());
        }
        if let Some(t) = m.get("type").and_then(Value::as_str) {
            return Some(t.to_string());
        }
    }
    value
        .get("event")
        .or_else(|| value.get("type"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn delivery_line(d: &Delivery, consumed: &HashMap<u64, usize>) -> String {
    let _ = consumed;
    format!(
        "#{} `{}` {} ({})",
        d.seq,
        d.field,
        d.events
            .first()
            .map(|e| format!("`{e}`"))
            .unwrap_or_else(|| "(no event)".into()),
        d.state.as_str()
    )
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_come_from_the_part_of_the_body_that_says_what_happened() {
        let call =
            json!({"entry": [{"changes": [{"value": {"calls": [{"event": "terminate"}]}}]}]});
        assert_eq!(event_of(&call).as_deref(), Some("terminate"));
        let status =
            json!({"entry": [{"changes": [{"value": {"statuses": [{"status": "failed"}]}}]}]});
        assert_eq!(event_of(&status).as_deref(), Some("failed"));
        let reply = json!({"entry": [{"changes": [{"value": {"messages": [{"type": "interactive", "interactive": {"type": "call_permission_reply"}}]}}]}]});
        assert_eq!(event_of(&reply).as_deref(), Some("call_permission_reply"));
    }
}
