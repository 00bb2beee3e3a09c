//! The SIP gateway of business-initiated calls around its calls: which tenant a call
//! belongs to when tenants share a display number, a call surviving a restart with
//! `--state`, and a TLS certificate given with `--sip-tls-cert` / `--sip-tls-key`. sipp
//! plays the business as in `sip_gateway.rs`, whose helpers these tests share.

use super::harness::*;
use super::sip_gateway::{
    logs, sipp_missing, Business, Gateway, Keying, Transport, SIPP, SIP_HOST,
};
use serde_json::{json, Value};
use std::time::Duration;
use wa_emulator::engine::ClockMode;
use wa_emulator::server::ServeOptions;

/// Enables SIP with [`SIP_HOST`] on `phone` with `token`; answers the number's SIP password.
async fn enable_sip(emu: &Emu, token: &str, phone: &str) -> String {
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = json!({"calling":{"sip":{"status":"ENABLED","servers":[{"hostname":SIP_HOST,"port":5061}]}}});
    let (s, v) = emu
        .raw(
            "POST",
            &format!("/v21.0/{phone}/settings"),
            &headers,
            body.to_string(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, g) = emu
        .raw(
            "GET",
            &format!("/v21.0/{phone}/settings?include_sip_credentials=true"),
            &headers,
            "",
        )
        .await;
    g["calling"]["sip"]["servers"][0]["sip_user_password"]
        .as_str()
        .unwrap_or_else(|| panic!("{g}"))
        .to_owned()
}

/// The gateway's UDP/TCP address from the configuration (no TLS in these tests).
async fn gateway(emu: &Emu) -> Gateway {
    let config = emu.ok("GET", "/config", Value::Null).await;
    Gateway {
        addr: config["sip"]["udp"].as_str().unwrap().to_owned(),
        tls: config["sip"]["tls"].as_str().unwrap().to_owned(),
        ca_file: std::env::temp_dir(),
    }
}

/// The default tenant's admin path.
const DEFAULT: &str = "/__emulator";

/// The calls of the tenant at `admin` ([`DEFAULT`] or `/__emulator/tenants/{id}`).
async fn calls_at(emu: &Emu, admin: &str) -> Vec<Value> {
    let (_, v) = emu.raw("GET", &format!("{admin}/calls"), &[], "").await;
    v["calls"].as_array().cloned().unwrap_or_default()
}

async fn ringing_at(emu: &Emu, admin: &str, sipp: &mut Business) -> String {
    for _ in 0..750 {
        if let Some(c) = calls_at(emu, admin)
            .await
            .into_iter()
            .find(|c| c["status"] == "ringing")
        {
            return c["id"].as_str().unwrap().to_owned();
        }
        if let Ok(Some(exit)) = sipp.child.try_wait() {
            panic!(
                "sipp exited ({exit}) before a call rang:\n{}",
                logs(&sipp.dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no call rang at {admin:?}:\n{}", logs(&sipp.dir));
}

#[tokio::test]
async fn a_tenant_sharing_the_display_number_is_told_apart_by_its_sip_password() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let emu = Emu::start().await;
    // A tenant with the default tenant's UK number, as `run --target` makes them.
    let tenant = emu
        .ok(
            "POST",
            "/tenants",
            json!({"phone_numbers":[{"display_phone_number": DISPLAY2}]}),
        )
        .await;
    let admin = format!("/__emulator/tenants/{}", tenant["id"].as_str().unwrap());
    let token = tenant["access_token"].as_str().unwrap();
    let tenant_phone = tenant["phone_numbers"][0]["id"].as_str().unwrap();
    let default_password = enable_sip(&emu, TOKEN, PHONE2).await;
    let tenant_password = enable_sip(&emu, token, tenant_phone).await;
    assert_ne!(default_password, tenant_password);
    let grant = json!({"response":"accept","permanent":true,"phone_number_id":tenant_phone});
    let (s, v) = emu
        .raw(
            "POST",
            &format!("{admin}/users/{USER}/permission-reply"),
            &[("content-type", "application/json")],
            grant.to_string(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let gateway = gateway(&emu).await;
    let mut sipp = Business::call(
        "business-call-declined.xml",
        Transport::Udp,
        &gateway,
        USER,
        &tenant_password,
        &[],
    )
    .await;
    let call = ringing_at(&emu, &admin, &mut sipp).await;
    assert!(
        calls_at(&emu, DEFAULT).await.is_empty(),
        "the default tenant has no call"
    );
    let (s, v) = emu
        .raw("POST", &format!("{admin}/calls/{call}/decline"), &[], "")
        .await;
    assert_eq!(s, 200, "{v}");
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(calls_at(&emu, &admin).await[0]["status"], "declined");
}

#[tokio::test]
async fn a_call_over_sip_survives_a_restart_with_state() {
    if sipp_missing() {
        return;
    }
    let _one = SIPP.lock().await;
    let state = std::env::temp_dir().join(format!(
        "wa-emulator-it-gateway-state-{}.json",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&state);
    let options = || {
        let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 11);
        opts.state = Some(state.clone());
        opts
    };
    let emu = Emu::start_with(options()).await;
    let password = enable_sip(&emu, TOKEN, PHONE2).await;
    emu.permission_reply(
        USER,
        json!({"response":"accept","permanent":true,"phone_number_id":PHONE2}),
    )
    .await;
    let user_id = emu.ok("GET", "/users", Value::Null).await["users"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut vars = vec![
        ("exp_user_id", user_id),
        ("exp_duration", "9".to_owned()),
        ("hangup", "user".to_owned()),
    ];
    vars.extend(Keying::Dtls.vars());
    let mut sipp = Business::call(
        "business-call-answered.xml",
        Transport::Tcp,
        &gateway(&emu).await,
        USER,
        &password,
        &vars,
    )
    .await;
    let call = ringing_at(&emu, DEFAULT, &mut sipp).await;
    emu.ok("POST", &format!("/calls/{call}/answer"), json!({}))
        .await;
    emu.advance(9.0).await;
    emu.ok("POST", &format!("/calls/{call}/hangup"), json!({}))
        .await;
    sipp.finish().await.unwrap_or_else(|e| panic!("{e}"));
    let before = calls_at(&emu, DEFAULT).await;
    emu._running.shutdown().await;
    // The admission, the SIP messages and the user's actions are replayed.
    let emu = Emu::start_with(options()).await;
    let after = calls_at(&emu, DEFAULT).await;
    assert_eq!(after, before);
    assert_eq!(after[0]["id"], call.as_str());
    assert_eq!(after[0]["status"], "completed");
    assert_eq!(after[0]["duration"], 9);
    let (_, log) = emu.admin("GET", "/sip", Value::Null).await;
    assert!(
        log["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["call_id"] == call.as_str() && m["first_line"] == "SIP/2.0 180 Ringing"),
        "{log}"
    );
    let _ = std::fs::remove_file(&state);
}

#[tokio::test]
async fn a_configured_tls_certificate_is_the_one_the_gateway_serves() {
    let dir = std::env::temp_dir().join(format!(
        "wa-emulator-it-gateway-cert-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = wa_emulator::server::tls::Ca::generate("gateway test CA").unwrap();
    let leaf = ca.issue(&["wa.meta.vc"]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.sip_tls_identity = Some((cert.clone(), key.clone()));
    let emu = Emu::start_with(opts).await;
    let config = emu.ok("GET", "/config", Value::Null).await;
    assert_eq!(config["sip"]["ca_pem"], leaf.cert_pem.as_str());
    // A key that does not go with the certificate stops the start with a reason.
    let other = ca.issue(&["wa.meta.vc"]).unwrap();
    std::fs::write(&key, &other.key_pem).unwrap();
    let mut opts = ServeOptions::for_tests(ClockMode::Virtual, 7);
    opts.sip_tls_identity = Some((cert, key));
    let err = match wa_emulator::server::spawn(opts).await {
        Ok(_) => panic!("the emulator started with a key of another certificate"),
        Err(e) => e,
    };
    assert!(err.starts_with("--sip-tls-cert: "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
