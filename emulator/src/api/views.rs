//! How the admin API shows the engine's calls: the list at `GET /__emulator/calls` and
//! the short summary a simulated user's call action answers with.

use crate::domain::call::{Call, CallState, EndReason};
use crate::domain::ids::CallId;
use crate::engine::Engine;
use serde_json::{json, Value};

/// `GET /__emulator/calls`: the retained calls, oldest first, each with its admin
/// `status` and `duration`.
pub fn calls_json(engine: &Engine) -> Value {
    let st = &engine.st;
    let mut calls: Vec<&Call> = st
        .call_order
        .iter()
        .filter_map(|id| st.calls.get(id))
        .collect();
    calls.sort_by_key(|c| c.created_at_ms);
    let list: Vec<Value> = calls
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["status"] = state_name(c).into();
            v["duration"] = c.duration_secs().map(Value::from).unwrap_or(Value::Null);
            v
        })
        .collect();
    json!({ "calls": list, "evicted": st.calls_evicted })
}

/// The answer to `POST /__emulator/calls/{id}/{hangup|answer|decline|fail}`.
pub fn call_summary(engine: &Engine, id: &CallId) -> Value {
    match engine.st.calls.get(id) {
        Some(c) => {
            let mut v = json!({ "call_id": c.id.as_str(), "status": state_name(c) });
            if let Some(d) = c.duration_secs() {
                v["duration"] = d.into();
            }
            v
        }
        None => json!({ "call_id": id.as_str() }),
    }
}

/// A call's state as the admin API names it: the end reason tells ended calls apart.
fn state_name(c: &Call) -> &'static str {
    match (&c.state, &c.end_reason) {
        (CallState::Ringing, _) => "ringing",
        (CallState::PreAccepted, _) => "pre_accepted",
        (CallState::Active, _) => "active",
        (CallState::Ended, Some(EndReason::Completed)) => "completed",
        (CallState::Ended, Some(EndReason::RejectedByBusiness)) => "rejected",
        (CallState::Ended, Some(EndReason::DeclinedByUser)) => "declined",
        (CallState::Ended, Some(EndReason::Unanswered)) => "unanswered",
        (CallState::Ended, Some(EndReason::CancelledByUser)) => "cancelled",
        (CallState::Ended, Some(EndReason::TerminatedBeforeAnswer)) => "terminated",
        (CallState::Ended, _) => "failed",
    }
}
