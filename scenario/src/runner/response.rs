//! `expect status …`, `expect error …`, `expect success`, `expect response {…} without
//! …`: checks on the response to the step just before.

use super::context::Ctx;
use super::matcher::{best_match, find_key, Mismatch};
use super::summarize;
use crate::syntax::*;

impl<'a> Ctx<'a> {
    pub(super) async fn expect_response(&mut self, r: &ResponseExpect) -> Result<(), String> {
        let pattern = match r {
            ResponseExpect::Body { with: Some(j), .. } => Some(self.expected(j).await?),
            _ => None,
        };
        let Some(reply) = &self.last else {
            return Err("there is no response to check: the step before made no request".into());
        };
        let got = || format!("got HTTP {}: {}", reply.status, summarize(&reply.body));
        match r {
            ResponseExpect::Status(s) => {
                if u64::from(reply.status) != s.value {
                    return Err(format!("expected HTTP {}, {}", s.value, got()));
                }
            }
            ResponseExpect::Success => {
                if !reply.is_success() {
                    return Err(format!("expected a 2xx response, {}", got()));
                }
            }
            ResponseExpect::Error { code, status } => {
                if reply.is_success() {
                    return Err(format!(
                        "expected an error{}, {}",
                        code.as_ref()
                            .map(|c| format!(" with code {}", c.value))
                            .unwrap_or_default(),
                        got()
                    ));
                }
                if let Some(c) = code {
                    if reply.error_code() != Some(c.value) {
                        let had = reply
                            .error_code()
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "none".into());
                        return Err(format!(
                            "expected error code {}, got code {had} (HTTP {}):\n    {}",
                            c.value,
                            reply.status,
                            summarize(&reply.body)
                        ));
                    }
                }
                if let Some(s) = status {
                    if u64::from(reply.status) != s.value {
                        return Err(format!("expected HTTP {}, {}", s.value, got()));
                    }
                }
            }
            ResponseExpect::Body { without, .. } => {
                if let Some(pat) = &pattern {
                    let diff = best_match(pat, &reply.body);
                    if !diff.is_empty() {
                        return Err(format!(
                            "expected the response to contain {}\n  the response (HTTP {}) differs:\n{}",
                            pat,
                            reply.status,
                            mismatch_lines(&diff)
                        ));
                    }
                }
                let present: Vec<Mismatch> = without
                    .iter()
                    .flat_map(|k| find_key(&reply.body, &k.value))
                    .map(|(path, v)| Mismatch {
                        path,
                        expected: "absent".into(),
                        got: summarize(&v),
                    })
                    .collect();
                if !present.is_empty() {
                    let keys: Vec<&str> = without.iter().map(|k| k.value.as_str()).collect();
                    return Err(format!(
                        "expected the response to have no {}\n  the response (HTTP {}) has:\n{}",
                        keys.join(", "),
                        reply.status,
                        mismatch_lines(&present)
                    ));
                }
            }
        }
        Ok(())
    }
}

fn mismatch_lines(diff: &[Mismatch]) -> String {
    diff.iter()
        .map(|m| format!("    {m}"))
        .collect::<Vec<_>>()
        .join("\n")
}
