//! `wa-emulator serve` options: flags, `WA_EMULATOR_*` environment variables and an
//! optional TOML file, in that order of precedence, over the embedded default tenant.

use crate::domain::ids::{AppId, PhoneNumberId, WaId, WabaId};
use crate::domain::settings::CallingSettings;
use crate::domain::tenant::{
    App, Behaviour, DeclaredUser, NumberProfile, PhoneNumber, Tenants, Waba,
};
use crate::domain::user::{ClientVersion, Platform};
use crate::domain::version::GraphVersion;
use crate::engine::ClockMode;
use crate::server::tls::Trust;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args, Default)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "WA_EMULATOR_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Callback URL for webhooks, http:// or https:// (the GET verification handshake
    /// runs at start-up).
    #[arg(long, env = "WA_EMULATOR_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Also trust these PEM certificates for https receivers, besides the system's roots:
    /// the CA of a local setup (mkcert's rootCA.pem, your own CA) or a self-signed
    /// certificate itself. Without it, such a receiver's deliveries fail with "unknown
    /// CA" in the delivery log and are retried.
    #[arg(long, env = "WA_EMULATOR_WEBHOOK_CA", value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,
    /// Accept ANY certificate from https receivers (no CA, name or date check), with a
    /// warning in the log. For a quick try only: --webhook-ca checks what Meta checks.
    #[arg(
        long,
        env = "WA_EMULATOR_WEBHOOK_INSECURE",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub webhook_insecure: bool,
    /// App secret that signs webhooks (X-Hub-Signature-256) [default: wa-emulator-secret].
    #[arg(long, env = "WA_EMULATOR_APP_SECRET", value_name = "SECRET")]
    pub app_secret: Option<String>,
    /// Token sent as hub.verify_token in the handshake [default: wa-emulator-verify].
    #[arg(long, env = "WA_EMULATOR_VERIFY_TOKEN", value_name = "TOKEN")]
    pub verify_token: Option<String>,
    /// The bearer token Graph requests must carry [default: wa-emulator-token].
    #[arg(long, env = "WA_EMULATOR_ACCESS_TOKEN", value_name = "TOKEN")]
    pub access_token: Option<String>,
    /// `real`, or `virtual`: time moves only through POST /__emulator/clock/advance.
    #[arg(long, env = "WA_EMULATOR_CLOCK", value_name = "real|virtual")]
    pub clock: Option<String>,
    /// Seed for every generated id (wamid, wacid, template ids, fbtrace_id): same seed, same ids.
    #[arg(long, env = "WA_EMULATOR_SEED", value_name = "N")]
    pub seed: Option<u64>,
    /// Keep state in this file across restarts (loaded at start, saved while running and at exit).
    #[arg(long, env = "WA_EMULATOR_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Write every delivered webhook as a fixture file `DIR/<field>/<event>_<n>.json`.
    #[arg(long, env = "WA_EMULATOR_RECORD", value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "WA_EMULATOR_LOG_FORMAT", value_name = "text|json")]
    pub log_format: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on /__emulator (needed to bind beyond loopback).
    #[arg(long, env = "WA_EMULATOR_ADMIN_TOKEN", value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// TOML file with more tenants, users and behaviour switches (see README).
    #[arg(long, env = "WA_EMULATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Virtual clock start, Unix seconds [default: the real time at start-up].
    #[arg(long, env = "WA_EMULATOR_CLOCK_START", value_name = "UNIX_SECONDS")]
    pub clock_start: Option<u64>,
    /// Where the SIP gateway (Meta's wa.meta.vc) listens for the INVITEs of
    /// business-initiated calls, UDP and TCP on one port; port 0 picks a free one, shown
    /// in the banner and in GET /__emulator/config [default: 127.0.0.1:0].
    #[arg(long, env = "WA_EMULATOR_SIP_ADDR", value_name = "HOST:PORT")]
    pub sip_addr: Option<String>,
    /// Where the SIP gateway listens for SIP over TLS [default: 127.0.0.1:0].
    #[arg(long, env = "WA_EMULATOR_SIP_TLS_ADDR", value_name = "HOST:PORT")]
    pub sip_tls_addr: Option<String>,
    /// The certificate chain (PEM) the SIP gateway presents over TLS, with --sip-tls-key;
    /// without them it makes one at start-up for wa.meta.vc, localhost and 127.0.0.1,
    /// whose CA GET /__emulator/sip/ca.pem serves.
    #[arg(
        long,
        env = "WA_EMULATOR_SIP_TLS_CERT",
        value_name = "FILE",
        requires = "sip_tls_key"
    )]
    pub sip_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --sip-tls-cert.
    #[arg(
        long,
        env = "WA_EMULATOR_SIP_TLS_KEY",
        value_name = "FILE",
        requires = "sip_tls_cert"
    )]
    pub sip_tls_key: Option<PathBuf>,
    /// The Graph version unversioned paths (`/106540352242922/messages`) act as; versioned
    /// paths (`/v23.0/…`) use their own. It decides version-dependent shapes, e.g.
    /// `conversation` on status webhooks exists only before v24.0 [default: v25.0].
    #[arg(long, env = "WA_EMULATOR_GRAPH_VERSION", value_name = "vNN.N")]
    pub graph_version: Option<String>,
    /// Tenants (POST /__emulator/tenants) that may be live at once [default: 1000].
    #[arg(long, env = "WA_EMULATOR_MAX_TENANTS", value_name = "N")]
    pub max_tenants: Option<usize>,
    /// Also trust these PEM certificates for SIP servers with `transport` tls, besides
    /// the system's roots: the CA of a local setup or a self-signed certificate itself.
    /// Without it, calls to such a server fail with "unknown CA" in their SIP log.
    #[arg(long, env = "WA_EMULATOR_SIP_CA", value_name = "FILE")]
    pub sip_ca: Option<PathBuf>,
}

/// The TOML file. Every key is optional; `apps`, `wabas`, `phone_numbers` replace the
/// embedded default tenant when given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<String>,
    pub webhook_url: Option<String>,
    /// PEM certificates trusted for https receivers besides the system's roots.
    pub webhook_ca: Option<PathBuf>,
    /// Accept any certificate from https receivers.
    pub webhook_insecure: Option<bool>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub access_token: Option<String>,
    pub clock: Option<String>,
    pub seed: Option<u64>,
    pub state: Option<PathBuf>,
    pub record: Option<PathBuf>,
    pub log_format: Option<String>,
    pub admin_token: Option<String>,
    pub clock_start: Option<u64>,
    pub graph_version: Option<String>,
    /// The SIP gateway's UDP and TCP address [default: 127.0.0.1:0].
    pub sip_addr: Option<String>,
    /// The SIP gateway's TLS address [default: 127.0.0.1:0].
    pub sip_tls_addr: Option<String>,
    /// The SIP gateway's TLS certificate chain and key (PEM files), both or neither.
    pub sip_tls_cert: Option<PathBuf>,
    pub sip_tls_key: Option<PathBuf>,
    /// Request bodies above this many bytes get a 413 [default: 4 MiB].
    pub body_limit: Option<usize>,
    /// Seconds before a webhook attempt counts as timed out [default: 20].
    pub webhook_timeout_secs: Option<u64>,
    /// Seconds a client may take to send its headers, then its body [default: 30].
    pub client_timeout_secs: Option<u64>,
    /// Tenants (`POST /__emulator/tenants`) live at once [default: 1000].
    pub max_tenants: Option<usize>,
    /// PEM certificates trusted for TLS SIP servers besides the system's roots.
    pub sip_ca: Option<PathBuf>,
    pub behaviour: Option<Behaviour>,
    #[serde(default)]
    pub apps: Vec<FileApp>,
    #[serde(default)]
    pub wabas: Vec<FileWaba>,
    #[serde(default)]
    pub phone_numbers: Vec<FilePhone>,
    #[serde(default)]
    pub users: Vec<FileUser>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApp {
    pub id: String,
    pub secret: String,
    pub access_tokens: Vec<String>,
    pub webhook_url: Option<String>,
    pub verify_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWaba {
    pub id: String,
    pub app_id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePhone {
    pub id: String,
    pub waba_id: String,
    pub display_phone_number: String,
    pub verified_name: Option<String>,
    /// `ENABLED` (default) or `DISABLED`.
    pub calling: Option<String>,
    pub callback_permission_status: Option<String>,
    /// Overrides the country rule: `true` allows business-initiated calling on a +1,
    /// +20, +84 or +234 number, `false` forbids it elsewhere.
    pub business_initiated_calling: Option<bool>,
    /// `production` (default) or `test`: the sandbox / public test number limits.
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUser {
    pub wa_id: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub version: Option<String>,
}

/// Everything `serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub tenants: Tenants,
    pub behaviour: Behaviour,
    pub clock: ClockMode,
    pub clock_start_ms: Option<u64>,
    pub seed: u64,
    pub state: Option<PathBuf>,
    pub record: Option<PathBuf>,
    pub json_logs: bool,
    pub admin_token: Option<String>,
    /// The SIP gateway's UDP and TCP address, and its TLS address.
    pub sip_addr: SocketAddr,
    pub sip_tls_addr: SocketAddr,
    /// The gateway's TLS certificate chain and key files; generated when `None`.
    pub sip_tls_identity: Option<(PathBuf, PathBuf)>,
    pub body_limit: usize,
    pub webhook_timeout_ms: u64,
    /// Which certificates of https receivers are accepted (`--webhook-ca`,
    /// `--webhook-insecure`).
    pub webhook_trust: Trust,
    /// How long a client may stall its headers, and then its body.
    pub client_timeout_ms: u64,
    /// Tenants created by `POST /__emulator/tenants` that may be live at once.
    pub max_tenants: usize,
    /// Which certificates of TLS SIP servers are accepted (`--sip-ca`).
    pub sip_trust: crate::server::tls::Trust,
}

/// [`ServeOptions::max_tenants`] unless configured.
pub const DEFAULT_MAX_TENANTS: usize = 1_000;

impl ServeOptions {
    /// The embedded default on a free loopback port: what tests and scenarios use.
    pub fn for_tests(clock: ClockMode, seed: u64) -> Self {
        Self {
            addr: "127.0.0.1:0".parse().expect("static address"),
            tenants: Tenants::default(),
            behaviour: Behaviour::default(),
            clock,
            clock_start_ms: None,
            seed,
            state: None,
            record: None,
            json_logs: false,
            admin_token: None,
            sip_addr: "127.0.0.1:0".parse().expect("static address"),
            sip_tls_addr: "127.0.0.1:0".parse().expect("static address"),
            sip_tls_identity: None,
            body_limit: 4 * 1024 * 1024,
            webhook_timeout_ms: 20_000,
            webhook_trust: Trust::default(),
            client_timeout_ms: 30_000,
            max_tenants: DEFAULT_MAX_TENANTS,
            sip_trust: Default::default(),
        }
    }

    pub fn resolve(args: &ServeArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let addr_s = args
            .addr
            .clone()
            .or(file.addr.clone())
            .unwrap_or_else(|| "127.0.0.1:4004".into());
        let addr: SocketAddr = addr_s.parse().map_err(|_| {
            format!("--addr: expected HOST:PORT such as 127.0.0.1:4004, got {addr_s:?}")
        })?;
        let clock = match args
            .clock
            .as_deref()
            .or(file.clock.as_deref())
            .unwrap_or("real")
        {
            "real" => ClockMode::Real,
            "virtual" => ClockMode::Virtual,
            other => return Err(format!("--clock: expected real or virtual, got {other:?}")),
        };
        let json_logs = match args
            .log_format
            .as_deref()
            .or(file.log_format.as_deref())
            .unwrap_or("text")
        {
            "text" => false,
            "json" => true,
            other => {
                return Err(format!(
                    "--log-format: expected text or json, got {other:?}"
                ))
            }
        };
        let mut tenants = file_tenants(&file)?;
        let app = tenants
            .apps
            .first_mut()
            .ok_or("the config declares no app")?;
        if let Some(s) = args.app_secret.clone().or(file.app_secret.clone()) {
            app.secret = s;
        }
        if let Some(t) = args.access_token.clone().or(file.access_token.clone()) {
            app.access_tokens = vec![t];
        }
        if let Some(t) = args.verify_token.clone().or(file.verify_token.clone()) {
            app.verify_token = t;
        }
        if let Some(u) = args.webhook_url.clone().or(file.webhook_url.clone()) {
            check_url(&u)?;
            app.webhook_url = Some(u);
        }
        let webhook_trust = Trust {
            ca_file: args.webhook_ca.clone().or(file.webhook_ca.clone()),
            insecure: args.webhook_insecure || file.webhook_insecure.unwrap_or(false),
        };
        webhook_trust
            .check()
            .map_err(|e| format!("--webhook-ca: {e}"))?;
        let admin_token = args.admin_token.clone().or(file.admin_token.clone());
        let sip_addr = sip_address(
            "--sip-addr",
            args.sip_addr.as_ref().or(file.sip_addr.as_ref()),
        )?;
        let sip_tls_addr = sip_address(
            "--sip-tls-addr",
            args.sip_tls_addr.as_ref().or(file.sip_tls_addr.as_ref()),
        )?;
        let sip_tls_identity = match (
            args.sip_tls_cert.clone().or(file.sip_tls_cert.clone()),
            args.sip_tls_key.clone().or(file.sip_tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--sip-tls-cert and --sip-tls-key go together: give both, or neither for a certificate made at start-up".into()),
        };
        #[allow(clippy::disallowed_methods, reason = "a fresh seed per run")]
        let seed = args.seed.or(file.seed).unwrap_or_else(rand::random);
        let mut behaviour = file.behaviour.clone().unwrap_or_default();
        if let Some(v) = args.graph_version.clone().or(file.graph_version.clone()) {
            behaviour.default_graph_version = GraphVersion::parse(&v).ok_or_else(|| {
                format!("--graph-version: expected a Graph version such as v24.0, got {v:?}")
            })?;
        }
        let sip_trust = crate::server::tls::Trust {
            ca_file: args.sip_ca.clone().or(file.sip_ca.clone()),
            insecure: false,
        };
        sip_trust.check().map_err(|e| format!("--sip-ca: {e}"))?;
        Ok(Self {
            addr,
            tenants,
            behaviour,
            clock,
            clock_start_ms: args.clock_start.or(file.clock_start).map(|s| s * 1000),
            seed,
            state: args.state.clone().or(file.state.clone()),
            record: args.record.clone().or(file.record.clone()),
            json_logs,
            admin_token,
            sip_addr,
            sip_tls_addr,
            sip_tls_identity,
            body_limit: file.body_limit.unwrap_or(4 * 1024 * 1024),
            webhook_timeout_ms: file.webhook_timeout_secs.unwrap_or(20) * 1000,
            webhook_trust,
            client_timeout_ms: file.client_timeout_secs.unwrap_or(30) * 1000,
            max_tenants: args
                .max_tenants
                .or(file.max_tenants)
                .unwrap_or(DEFAULT_MAX_TENANTS),
            sip_trust,
        })
    }
}

/// A callback URL: absolute `http://` or `https://` (Meta itself delivers only to https;
/// plain http is for local receivers).
/// A SIP gateway address, `127.0.0.1:0` (a free port on loopback) when not given.
fn sip_address(flag: &str, given: Option<&String>) -> Result<SocketAddr, String> {
    let text = given.map_or("127.0.0.1:0", String::as_str);
    text.parse()
        .map_err(|_| format!("{flag}: expected HOST:PORT such as 127.0.0.1:5060, got {text:?}"))
}

pub fn check_url(u: &str) -> Result<(), String> {
    if !u.starts_with("http://") && !u.starts_with("https://") {
        return Err(format!(
            "webhook URL must start with http:// or https://, got {u:?}"
        ));
    }
    let uri = u
        .parse::<hyper::Uri>()
        .map_err(|e| format!("webhook URL {u:?} is not a valid URL: {e}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("webhook URL {u:?} has no host"));
    }
    Ok(())
}

fn file_tenants(file: &FileConfig) -> Result<Tenants, String> {
    let mut t = Tenants::default();
    if !file.apps.is_empty() {
        t.apps = file
            .apps
            .iter()
            .map(|a| App {
                id: AppId(a.id.clone()),
                secret: a.secret.clone(),
                access_tokens: a.access_tokens.clone(),
                webhook_url: a.webhook_url.clone(),
                verify_token: a
                    .verify_token
                    .clone()
                    .unwrap_or_else(|| "wa-emulator-verify".into()),
            })
            .collect();
    }
    if !file.wabas.is_empty() {
        t.wabas = file
            .wabas
            .iter()
            .map(|w| Waba {
                id: WabaId(w.id.clone()),
                app_id: AppId(w.app_id.clone()),
                name: w.name.clone().unwrap_or_else(|| "wa-emulator".into()),
            })
            .collect();
    }
    if !file.phone_numbers.is_empty() {
        t.phone_numbers = file
            .phone_numbers
            .iter()
            .map(|p| {
                let mut calling = CallingSettings::default();
                match p.calling.as_deref() {
                    None | Some("ENABLED") => {}
                    Some("DISABLED") => calling.enabled = false,
                    Some(o) => {
                        return Err(format!(
                            "phone number {}: calling must be ENABLED or DISABLED, got {o:?}",
                            p.id
                        ))
                    }
                }
                calling.callback_permission_enabled =
                    p.callback_permission_status.as_deref() == Some("ENABLED");
                let profile = match p.profile.as_deref() {
                    None | Some("production") => NumberProfile::Production,
                    Some("test") => NumberProfile::Test,
                    Some(o) => {
                        return Err(format!(
                            "phone number {}: profile must be production or test, got {o:?}",
                            p.id
                        ))
                    }
                };
                Ok(PhoneNumber {
                    id: PhoneNumberId(p.id.clone()),
                    waba_id: WabaId(p.waba_id.clone()),
                    display_phone_number: p.display_phone_number.clone(),
                    verified_name: p
                        .verified_name
                        .clone()
                        .unwrap_or_else(|| "wa-emulator".into()),
                    calling,
                    business_initiated_calling: p.business_initiated_calling,
                    profile,
                })
            })
            .collect::<Result<_, String>>()?;
    }
    for w in &t.wabas {
        if !t.apps.iter().any(|a| a.id == w.app_id) {
            return Err(format!(
                "WABA {} names app {}, which the config does not declare",
                w.id, w.app_id
            ));
        }
    }
    for p in &t.phone_numbers {
        if !t.wabas.iter().any(|w| w.id == p.waba_id) {
            return Err(format!(
                "phone number {} names WABA {}, which the config does not declare",
                p.id, p.waba_id
            ));
        }
    }
    t.users = file
        .users
        .iter()
        .map(|u| {
            let platform = match u.platform.as_deref() {
                None => Platform::Android,
                Some(p) => Platform::parse(p).ok_or_else(|| {
                    format!(
                        "user {}: platform must be one of {}, got {p:?}",
                        u.wa_id,
                        Platform::NAMES
                    )
                })?,
            };
            let version = match u.version.as_deref() {
                None => crate::domain::user::VersionRules::default().latest,
                Some(v) => ClientVersion::parse(v).ok_or_else(|| {
                    format!(
                        "user {}: version must look like 2.25.27, got {v:?}",
                        u.wa_id
                    )
                })?,
            };
            Ok(DeclaredUser {
                wa_id: WaId(u.wa_id.clone()),
                name: u.name.clone(),
                platform,
                version,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_tenant() {
        let o = ServeOptions::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(o.addr.to_string(), "127.0.0.1:4004");
        assert_eq!(
            o.tenants.apps[0].access_tokens,
            vec!["wa-emulator-token".to_string()]
        );
        assert_eq!(o.clock, ClockMode::Real);
    }

    #[test]
    fn flags_override_the_file_and_bad_values_are_explained() {
        let dir = std::env::temp_dir().join(format!("wa-emu-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "clock = \"virtual\"\nseed = 9\naccess_token = \"file-token\"\n[behaviour]\nring_timeout_secs = 30\n[[users]]\nwa_id = \"16315551234\"\nplatform = \"ios\"\nversion = \"2.25.30\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            access_token: Some("flag-token".into()),
            ..Default::default()
        };
        let o = ServeOptions::resolve(&args).unwrap();
        assert_eq!(o.clock, ClockMode::Virtual);
        assert_eq!(o.seed, 9);
        assert_eq!(
            o.tenants.apps[0].access_tokens,
            vec!["flag-token".to_string()]
        );
        assert_eq!(o.behaviour.ring_timeout_secs, 30);
        assert_eq!(o.tenants.users[0].platform, Platform::Ios);
        std::fs::write(&path, "clokc = \"virtual\"\n").unwrap();
        let e = ServeOptions::resolve(&ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("unknown field `clokc`"), "{e}");
        let e = ServeOptions::resolve(&ServeArgs {
            clock: Some("fast".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("expected real or virtual"), "{e}");
    }

    #[test]
    fn webhook_urls_may_be_https_and_the_webhook_ca_must_hold_certificates() {
        assert_eq!(check_url("https://receiver.test:8443/hook"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:8000/webhook"), Ok(()));
        for bad in [
            "ftp://receiver.test/hook",
            "127.0.0.1:8000/webhook",
            "https:///hook",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let dir = std::env::temp_dir().join(format!("wa-emu-webhookca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, crate::server::tls::Ca::generate("t").unwrap().pem()).unwrap();
        let toml = dir.join("c.toml");
        std::fs::write(
            &toml,
            format!(
                "webhook_url = \"https://receiver.test/hook\"\nwebhook_ca = {:?}\nwebhook_insecure = true\n",
                ca.display().to_string()
            ),
        )
        .unwrap();
        let o = ServeOptions::resolve(&ServeArgs {
            config: Some(toml),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            o.webhook_trust,
            Trust {
                ca_file: Some(ca),
                insecure: true
            }
        );
        assert_eq!(
            o.tenants.apps[0].webhook_url.as_deref(),
            Some("https://receiver.test/hook")
        );
        assert_eq!(
            ServeOptions::resolve(&ServeArgs::default())
                .unwrap()
                .webhook_trust,
            Trust::default()
        );
        let e = ServeOptions::resolve(&ServeArgs {
            webhook_ca: Some(dir.join("missing.pem")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.starts_with("--webhook-ca: cannot read "), "{e}");
    }

    #[test]
    fn the_sip_gateway_listens_on_free_loopback_ports_unless_told() {
        let o = ServeOptions::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(o.sip_addr.to_string(), "127.0.0.1:0");
        assert_eq!(o.sip_tls_addr.to_string(), "127.0.0.1:0");
        assert_eq!(o.sip_tls_identity, None);
        let dir = std::env::temp_dir().join(format!("wa-emu-sipgw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml = dir.join("c.toml");
        std::fs::write(
            &toml,
            "sip_addr = \"127.0.0.1:5060\"\nsip_tls_cert = \"c.pem\"\n",
        )
        .unwrap();
        let e = ServeOptions::resolve(&ServeArgs {
            config: Some(toml.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("--sip-tls-cert and --sip-tls-key go together"),
            "{e}"
        );
        let o = ServeOptions::resolve(&ServeArgs {
            config: Some(toml),
            sip_tls_key: Some("k.pem".into()),
            sip_tls_addr: Some("127.0.0.1:5061".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.sip_addr.to_string(), "127.0.0.1:5060");
        assert_eq!(o.sip_tls_addr.to_string(), "127.0.0.1:5061");
        assert_eq!(o.sip_tls_identity, Some(("c.pem".into(), "k.pem".into())));
        let e = ServeOptions::resolve(&ServeArgs {
            sip_addr: Some("localhost".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.starts_with("--sip-addr: expected HOST:PORT"), "{e}");
    }

    #[test]
    fn the_sip_ca_comes_from_the_flag_or_the_file_and_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("wa-emu-sipca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let pem = crate::server::tls::Ca::generate("sip test CA")
            .unwrap()
            .pem();
        std::fs::write(&ca, pem).unwrap();
        let toml = dir.join("c.toml");
        std::fs::write(&toml, format!("sip_ca = {:?}\n", ca.display().to_string())).unwrap();
        let from_file = ServeOptions::resolve(&ServeArgs {
            config: Some(toml),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(from_file.sip_trust.ca_file.as_deref(), Some(ca.as_path()));
        assert!(!from_file.sip_trust.insecure);
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let e = ServeOptions::resolve(&ServeArgs {
            sip_ca: Some(not_pem),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.starts_with("--sip-ca: no PEM certificate in "), "{e}");
        assert!(ServeOptions::resolve(&ServeArgs::default())
            .unwrap()
            .sip_trust
            .ca_file
            .is_none());
    }
}
