//! The SIP gateway joined to the engines (business-initiated calls over SIP): starts its
//! listeners (`--sip-addr`, `--sip-tls-addr` with the identity of `--sip-tls-cert` and
//! `--sip-tls-key`, or one made at start-up), judges each INVITE on the tenant whose
//! number and SIP password it names, and feeds what the gateway sees back into that
//! tenant's engine, logged first with `--state`.

use std::sync::{Arc, OnceLock, Weak};

use super::tenants::Tenant;
use super::{run_effects, wal, ServeOptions, Shared};
use crate::api::admin_types::SipGateway;
use crate::domain::ids::CallId;
use crate::domain::sip::{Admission, AdmittedCall, IncomingInvite, SipRefusal};
use crate::server::tls::{self, ServerIdentity};
use crate::sip::digest::{self, Credentials};
use crate::sip::listener::{Gateway, GatewayConfig, GatewayHost, Owner};
use crate::sip::uas::GatewayEvent;
use crate::sip::UacConfig;

/// Binds the gateway; it judges nothing until [`Host::attach`] gives it the server.
pub(super) async fn start(opts: &ServeOptions) -> Result<(Gateway, Arc<Host>, SipGateway), String> {
    let (identity, server) = match &opts.sip_tls_identity {
        Some((cert, key)) => {
            let identity =
                ServerIdentity::load(cert, key).map_err(|e| format!("--sip-tls-cert: {e}"))?;
            let server = tls::server_config(&identity)?;
            (identity, server)
        }
        // Made once per process (`keys.rs`).
        None => super::keys::sip_tls()?,
    };
    let host = Arc::new(Host {
        shared: OnceLock::new(),
    });
    let config = GatewayConfig {
        addr: opts.sip_addr,
        tls: Some((opts.sip_tls_addr, server)),
        timers: UacConfig::default(),
    };
    let gateway = Gateway::start(config, host.clone()).await.map_err(|e| {
        format!(
            "cannot listen for SIP on {} (--sip-addr): {e}",
            opts.sip_addr
        )
    })?;
    let info = SipGateway {
        udp: gateway.udp.to_string(),
        tcp: gateway.tcp.to_string(),
        tls: gateway.tls.map(|a| a.to_string()),
        // A loaded certificate is trusted through its own CA, which the user has; the
        // certificate itself is the best we can offer (right for a self-signed one).
        ca_pem: Some(identity.ca_pem.clone().unwrap_or(identity.cert_pem.clone())),
    };
    Ok((gateway, host, info))
}

/// The gateway's view of the server.
pub(super) struct Host {
    shared: OnceLock<Weak<Shared>>,
}

impl Host {
    pub fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.get().and_then(Weak::upgrade)
    }

    /// Every live tenant, the default one first.
    fn tenants(shared: &Shared) -> Vec<Arc<Tenant>> {
        let mut all = vec![shared.default.clone()];
        all.extend(shared.registry().all().cloned());
        all.retain(|t| !t.is_deleted());
        all
    }

    fn tenant(shared: &Shared, owner: Option<&str>) -> Option<Arc<Tenant>> {
        let tenant = match owner {
            None | Some("") => shared.default.clone(),
            Some(id) => shared.registry().get(id)?,
        };
        (!tenant.is_deleted()).then_some(tenant)
    }
}

impl GatewayHost for Host {
    fn admit(
        &self,
        invite: &IncomingInvite,
        credentials: &Credentials,
    ) -> Result<(Owner, AdmittedCall), (Option<Owner>, SipRefusal)> {
        let Some(shared) = self.shared() else {
            return Err((None, SipRefusal::new(503, "Service Unavailable")));
        };
        // The digest username is the business number (cloud-api §8.2).
        let password_ok = |password: &str| {
            credentials.username == invite.business_number
                && digest::verify(credentials, password, "INVITE", &invite.sdp_offer)
        };
        // Tenants may share display numbers (run --target mirrors the default tenant's):
        // the SIP password, drawn per tenant, says whose number is calling.
        let mut wrong_password: Option<Owner> = None;
        for tenant in Self::tenants(&shared) {
            let (admission, effects) = {
                let mut engine = tenant.lock();
                let now = engine.now();
                engine.begin();
                let admission = engine.sip_admit(invite, &password_ok);
                let ringing = matches!(admission, Admission::Ringing(_));
                engine.finish(ringing);
                if ringing {
                    // Background inputs need no acknowledgement; order is what matters.
                    let _ = shared.log_input(&tenant, &mut engine, || wal::Input::SipAdmit {
                        now,
                        invite: invite.clone(),
                    });
                }
                (admission, engine.take_effects())
            };
            run_effects(&shared, &tenant, effects);
            match admission {
                Admission::UnknownNumber => {}
                Admission::WrongPassword => {
                    wrong_password.get_or_insert(tenant.id.clone());
                }
                Admission::Refused(refusal) => return Err((Some(tenant.id.clone()), refusal)),
                Admission::Ringing(call) => {
                    shared.touched(&tenant);
                    return Ok((tenant.id.clone(), call));
                }
            }
        }
        match wrong_password {
            Some(owner) => Err((Some(owner), SipRefusal::invalid_digest())),
            None => Err((None, SipRefusal::unknown_number())),
        }
    }

    fn event(&self, owner: &str, wacid: &CallId, event: GatewayEvent) {
        let Some(shared) = self.shared() else { return };
        let Some(tenant) = Self::tenant(&shared, Some(owner)) else {
            return;
        };
        let effects = {
            let mut engine = tenant.lock();
            let now = engine.now();
            let input = match event {
                GatewayEvent::Hangup => wal::SipInput::Bye,
                GatewayEvent::TimedOut => wal::SipInput::TimedOut,
            };
            let _ = shared.log_input(&tenant, &mut engine, || wal::Input::Sip {
                now,
                wacid: wacid.0.clone(),
                event: input,
            });
            match event {
                GatewayEvent::Hangup => engine.sip_bye_from_server(wacid),
                GatewayEvent::TimedOut => engine.sip_timed_out(wacid),
            }
            engine.take_effects()
        };
        run_effects(&shared, &tenant, effects);
        shared.touched(&tenant);
    }

    fn message(&self, owner: Option<&str>, call: &str, outgoing: bool, raw: &str) {
        let Some(shared) = self.shared() else { return };
        let Some(tenant) = Self::tenant(&shared, owner) else {
            return;
        };
        let first_line = raw.lines().next().unwrap_or_default().to_owned();
        let mut engine = tenant.lock();
        let now = engine.now();
        let _ = shared.log_input(&tenant, &mut engine, || wal::Input::Sip {
            now,
            wacid: call.to_owned(),
            event: wal::SipInput::Message {
                outgoing,
                first_line: first_line.clone(),
                raw: raw.to_owned(),
            },
        });
        engine.sip_log(call, outgoing, first_line, raw.to_owned());
    }
}
