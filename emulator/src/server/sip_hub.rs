//! SIP glue: [`SipHub`] starts the SIP user agent for each INVITE an engine asks for
//! (user-initiated calls), feeds its events back into that tenant's engine, logged first,
//! and hands the gateway of business-initiated calls the user's answers.

use super::tenants::Tenant;
use super::{run_effects, wal, Shared};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::watch;

/// A SIP event of one call, with the tenant whose engine it goes back to (gone once the
/// tenant is deleted).
type TenantSipEvent = (Weak<Tenant>, String, crate::sip::SipEvent);

/// SIP signalling for numbers with SIP enabled: starts the user agent for each call an
/// engine asks for and feeds its events back into that tenant's engine.
pub struct SipHub {
    /// Calls in progress by (tenant id, wacid): tenants may draw the same wacids.
    calls: Mutex<std::collections::HashMap<(String, String), crate::sip::CallHandle>>,
    events: tokio::sync::mpsc::UnboundedSender<TenantSipEvent>,
    /// The gateway of business-initiated calls (set once the server is up).
    pub(super) gateway: std::sync::OnceLock<crate::sip::listener::Gateway>,
    /// What the certificates of TLS SIP servers are checked against (`--sip-ca`).
    tls: Arc<rustls::ClientConfig>,
}

impl SipHub {
    pub(super) fn new(
        tls: Arc<rustls::ClientConfig>,
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<TenantSipEvent>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Self {
                calls: Mutex::new(Default::default()),
                events: tx,
                gateway: Default::default(),
                tls,
            },
            rx,
        )
    }

    pub(super) fn calls(
        &self,
    ) -> MutexGuard<'_, std::collections::HashMap<(String, String), crate::sip::CallHandle>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A deleted tenant's calls end (the user hangs up: BYE, or CANCEL while ringing)
    /// and are forgotten.
    pub(crate) fn forget_tenant(&self, tenant: &str) {
        if let Some(g) = self.gateway.get() {
            g.forget(tenant);
        }
        self.calls().retain(|(t, _), h| {
            if t == tenant {
                h.hangup(0);
            }
            t != tenant
        });
    }

    pub(super) fn stop_gateway(&self) {
        if let Some(g) = self.gateway.get() {
            g.stop();
        }
    }

    pub(super) fn run(&self, tenant: &Arc<Tenant>, effect: crate::engine::Effect) {
        use crate::engine::Effect;
        match effect {
            Effect::SipInvite(invite) => {
                let call_id = invite.call_id.0.clone();
                // The user agent reports to a channel of this call; a small task tags
                // each event with the tenant, in order, until the call's sender drops.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let handle = crate::sip::start_call(*invite, self.tls.clone(), tx);
                let (owner, hub) = (Arc::downgrade(tenant), self.events.clone());
                tokio::spawn(async move {
                    while let Some((wacid, event)) = rx.recv().await {
                        if hub.send((owner.clone(), wacid, event)).is_err() {
                            return;
                        }
                    }
                });
                let mut calls = self.calls();
                // Handles of finished calls are dropped here, so the map stays small.
                calls.retain(|_, h| !h.is_finished());
                calls.insert((tenant.id.clone(), call_id), handle);
            }
            Effect::SipReply { call_id, reply } => {
                if let Some(g) = self.gateway.get() {
                    g.reply(&tenant.id, &call_id, reply);
                }
            }
            Effect::SipHangup {
                call_id,
                duration_secs,
            } => {
                if let Some(h) = self
                    .calls()
                    .get(&(tenant.id.clone(), call_id.as_str().to_owned()))
                {
                    h.hangup(duration_secs);
                }
            }
            _ => {}
        }
    }
}

pub(super) async fn sip_events(
    shared: Arc<Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<TenantSipEvent>,
    mut stop: watch::Receiver<bool>,
) {
    use crate::sip::SipEvent;
    loop {
        // The sender lives as long as `Shared`, so stopping must not wait for it.
        let next = tokio::select! {
            n = rx.recv() => n,
            _ = stop.changed() => None,
        };
        let Some((owner, wacid, event)) = next else {
            return;
        };
        // A deleted tenant's calls report to no one.
        let Some(tenant) = owner.upgrade().filter(|t| !t.is_deleted()) else {
            continue;
        };
        let call = crate::domain::ids::CallId(wacid.clone());
        let entry = match &event {
            SipEvent::Message {
                outgoing,
                first_line,
                raw,
            } => Some(wal::SipInput::Message {
                outgoing: *outgoing,
                first_line: first_line.clone(),
                raw: raw.clone(),
            }),
            SipEvent::Answered { sdp } => Some(wal::SipInput::Answered { sdp: sdp.clone() }),
            SipEvent::Failed { status, .. } => Some(wal::SipInput::Failed { status: *status }),
            SipEvent::TimedOut => Some(wal::SipInput::TimedOut),
            SipEvent::ByeFromServer => Some(wal::SipInput::Bye),
            SipEvent::Provisional { .. } | SipEvent::Ended => None,
        };
        let effects = {
            let mut engine = tenant.lock();
            if let Some(event) = entry {
                let now = engine.now();
                // Background inputs need no acknowledgement; order is what matters.
                let _ = shared.log_input(&tenant, &mut engine, || wal::Input::Sip {
                    now,
                    wacid: wacid.clone(),
                    event,
                });
            }
            match event {
                SipEvent::Message {
                    outgoing,
                    first_line,
                    raw,
                } => engine.sip_log(&wacid, outgoing, first_line, raw),
                SipEvent::Provisional { .. } => {}
                SipEvent::Answered { sdp } => engine.sip_answered(&call, sdp),
                SipEvent::Failed { status, .. } => engine.sip_failed(&call, status),
                SipEvent::TimedOut => engine.sip_timed_out(&call),
                SipEvent::ByeFromServer => engine.sip_bye_from_server(&call),
                SipEvent::Ended => {}
            }
            engine.take_effects()
        };
        {
            let key = (tenant.id.clone(), wacid);
            let mut calls = shared.sip.calls();
            if calls.get(&key).is_some_and(|h| h.is_finished()) {
                calls.remove(&key);
            }
        }
        run_effects(&shared, &tenant, effects);
        shared.touched(&tenant);
    }
}
