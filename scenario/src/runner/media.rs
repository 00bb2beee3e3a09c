//! `expect alice to hear audio on $call`, `expect alice to hear keys "12" on $call`,
//! `expect media for $call with {…}`: the user's media endpoint, read from `GET
//! /__emulator/calls/{id}/media` until the expectation holds or `within` passes.
//!
//! Media runs in real time whatever the emulator's clock, so these poll in real time. A
//! signalling-only call (state `none`) never gets media: the expectation fails at once,
//! saying why.

use super::context::Ctx;
use super::matcher::best_match;
use super::summarize;
use crate::syntax::duration::format_duration;
use crate::syntax::*;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Above this level the user hears something (digital silence reads as the floor, -127).
pub const AUDIBLE_DBFS: f64 = -50.0;

impl<'a> Ctx<'a> {
    #[allow(clippy::disallowed_methods, reason = "media runs in real time")]
    pub(super) async fn expect_media(&mut self, m: &MediaExpect) -> Result<(), String> {
        let id = self.var(&m.call)?;
        let within = m.within.as_ref().map_or(MEDIA_DEFAULT_WITHIN_MS, |d| d.ms);
        let expected = match &m.check {
            MediaCheck::Report(j) => Some(self.expected(j).await?),
            MediaCheck::Hears { .. } => None,
        };
        let what = match &m.check {
            MediaCheck::Hears { user, keys: None } => format!("{} to hear audio", user.text),
            MediaCheck::Hears {
                user,
                keys: Some(k),
            } => format!("{} to hear the keys \"{}\"", user.text, k.value),
            MediaCheck::Report(j) => format!("the media report to contain {}", j.pat.print()),
        };
        let deadline = Instant::now() + Duration::from_millis(within);
        let path = format!("/calls/{id}/media");
        let report = loop {
            let r = self.admin("GET", &path, None).await?;
            if !r.is_success() {
                return Err(format!(
                    "expected {what} on ${} ({id}), but GET {}{path} answered HTTP {}: {}",
                    m.call.name,
                    self.admin_path,
                    r.status,
                    summarize(&r.body)
                ));
            }
            let report = r.body;
            let holds = match (&m.check, &expected) {
                (_, Some(e)) => best_match(e, &report).is_empty(),
                (MediaCheck::Hears { keys: None, .. }, _) => report["received"]["audio_level_dbfs"]
                    .as_f64()
                    .is_some_and(|db| db > AUDIBLE_DBFS),
                (MediaCheck::Hears { keys: Some(k), .. }, _) => report["received"]["dtmf"]
                    .as_str()
                    .is_some_and(|d| d.contains(&k.value)),
                _ => false,
            };
            if holds {
                return Ok(());
            }
            // Only a report pattern may be waiting for a call's media to fail or close.
            let settled = match report["state"].as_str() {
                Some("none") => true,
                Some("failed" | "closed") => expected.is_none(),
                _ => false,
            };
            if settled || Instant::now() >= deadline {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut msg = format!(
            "expected {what} on ${} ({id}) within {}",
            m.call.name,
            format_duration(within)
        );
        if report["state"] == "none" {
            msg.push_str("\n  the call is signalling only (media state `none`): the business's SDP had no ICE credentials and candidate, so no media flows");
            msg.push_str("\n  help: media needs a business that is a WebRTC peer (its SDP with ICE and a candidate); without one, a story can check the refusal: `alice presses \"1\" on $call`, then `expect error 100 with status 409` and `expect response {\"reason\": \"no_media\"}`");
            return Err(msg);
        }
        let rx = &report["received"];
        let _ = write!(
            msg,
            "\n  media: state {} (ICE {}, DTLS {}), received {} packets, level {}, keys {}",
            report["state"].as_str().unwrap_or("?"),
            report["ice"].as_str().unwrap_or("?"),
            report["dtls"].as_str().unwrap_or("?"),
            rx["packets"].as_u64().unwrap_or(0),
            rx["audio_level_dbfs"]
                .as_f64()
                .map_or("none yet".to_owned(), |db| format!("{db} dBFS")),
            match rx["dtmf"].as_str() {
                Some("") | None => "none".to_owned(),
                Some(k) => format!("\"{k}\""),
            }
        );
        if let Some(f) = report["failure"].as_str() {
            let _ = write!(msg, "\n  failure: {f}");
        }
        if let Some(e) = &expected {
            for d in best_match(e, &report) {
                let _ = write!(msg, "\n    {d}");
            }
        } else if matches!(m.check, MediaCheck::Hears { keys: None, .. })
            && rx["audio_level_dbfs"].as_f64().is_some()
        {
            let _ = write!(
                msg,
                "\n  help: the user hears audio above {AUDIBLE_DBFS} dBFS; the business sends silence"
            );
        }
        Err(msg)
    }
}
