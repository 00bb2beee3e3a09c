//! `wa-emulator run --target URL` on one shared emulator: a tenant per scenario, in
//! parallel, each deleted at its end; with `--app`, the default tenant, reset before
//! each scenario; an emulator without tenants gets the reset too.

use super::fake::Misbehaving;
use bytes::Bytes;
use http_body_util::Full;
use scenario::runner::http::Http;
use scenario::runner::target::InProcessTarget;
use scenario::{InProcess, RunArgs, RunningTarget};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn args(dir: &std::path::Path, target: &str) -> RunArgs {
    RunArgs {
        paths: vec![dir.to_path_buf()],
        jobs: Some(4),
        seed: 7,
        partition: None,
        junit: None,
        target: Some(target.to_owned()),
        no_tenants: false,
        config: None,
        app: None,
        admin_token: None,
        timeout: Duration::from_secs(30),
        check: false,
        quiet: true,
    }
}

fn folder(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("scenario-it-tenants-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

async fn admin(emu: &InProcessTarget, method: &str, path: &str) -> Value {
    let r = Http::new()
        .send(
            method,
            &format!("{}/__emulator{path}", emu.base_url()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r.body
}

/// The same user in every story, an unanswered call each, time moved on each story's own
/// clock, and a real wait so the stories overlap.
fn story(i: usize) -> String {
    format!(
        "user bob is ios 2.25.30 named \"Bob {i}\"
bob calls the business as $c
expect exactly 1 calls webhook connect
wait 300ms
advance {}s
expect a calls webhook terminate for $c
expect exactly 2 calls webhooks
",
        61 + i
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn run_target_runs_a_folder_in_parallel_on_a_tenant_each() {
    let emu = InProcess::spawn(3).await.unwrap();
    let files: Vec<(String, String)> = (0..6).map(|i| (format!("s{i}.scn"), story(i))).collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let dir = folder("parallel", &files);
    let clock_before = admin(&emu, "GET", "/clock").await;

    // Watch how many tenants are live while the run goes.
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (most, url) = (most.clone(), emu.base_url());
        tokio::spawn(async move {
            let http = Http::new();
            loop {
                if let Ok(r) = http
                    .send("GET", &format!("{url}/__emulator/tenants"), None, None)
                    .await
                {
                    let live = r.body["live"].as_u64().unwrap_or(0) as usize;
                    most.fetch_max(live, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let code = scenario::run(args(&dir, &emu.base_url()), Arc::new(InProcess)).await;
    watcher.abort();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "every story passes on its own tenant");
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "the stories ran one at a time (at most {} tenant live)",
        most.load(Ordering::SeqCst)
    );
    // Every tenant was deleted; the default tenant saw nothing and its clock never moved.
    assert_eq!(admin(&emu, "GET", "/tenants").await["live"], 0);
    assert_eq!(admin(&emu, "GET", "/users").await["users"], json!([]));
    assert_eq!(
        admin(&emu, "GET", "/webhooks").await["deliveries"],
        json!([])
    );
    assert_eq!(admin(&emu, "GET", "/clock").await, clock_before);
}

#[tokio::test]
async fn a_failing_story_on_its_tenant_fails_alone_and_its_tenant_is_deleted() {
    let emu = InProcess::spawn(3).await.unwrap();
    let dir = folder(
        "failing",
        &[
            ("a.scn", &story(0)),
            (
                "b.scn",
                "user bob is ios 2.25.30\nbob calls the business as $c\nexpect a calls webhook terminate for $c\n",
            ),
        ],
    );
    let code = scenario::run(args(&dir, &emu.base_url()), Arc::new(InProcess)).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 1);
    assert_eq!(admin(&emu, "GET", "/tenants").await["live"], 0);
}

/// A receiver that passes the webhook handshake and accepts every webhook: the app.
async fn app() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let challenge = req
                        .uri()
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .find_map(|p| p.strip_prefix("hub.challenge="))
                        .unwrap_or("")
                        .to_owned();
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        challenge,
                    ))))
                },
            );
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn with_app_the_stories_run_on_the_default_tenant_the_app_knows() {
    let emu = InProcess::spawn(3).await.unwrap();
    let (app_url, app_task) = app().await;
    let dir = folder("app", &[("a.scn", &story(0)), ("b.scn", &story(1))]);
    let mut a = args(&dir, &emu.base_url());
    a.app = Some(app_url.clone());
    let code = scenario::run(a, Arc::new(InProcess)).await;
    let _ = std::fs::remove_dir_all(&dir);
    app_task.abort();
    assert_eq!(code, 0);
    // No tenant: the default tenant's webhooks went to the app, and its clock moved.
    assert_eq!(
        admin(&emu, "GET", "/config").await["webhook_url"],
        app_url.as_str()
    );
    let log = admin(&emu, "GET", "/webhooks").await;
    assert!(!log["deliveries"].as_array().unwrap().is_empty());
    assert_eq!(admin(&emu, "GET", "/tenants").await["live"], 0);
}

#[tokio::test]
async fn tenants_unless_the_app_needs_the_default_one_or_the_emulator_has_none() {
    use scenario::cli::{sharing_of, Sharing};
    let emu = InProcess::spawn(3).await.unwrap();
    // An emulator from before tenants: `/__emulator/tenants` (like `/reset` here) is not
    // a route.
    let old = Misbehaving::start(|_, _| {
        (
            404,
            json!({"error": {"message": "not an admin route", "code": 100}}),
        )
    })
    .await;
    let dir = folder(
        "sharing",
        &[(
            "a.scn",
            "user bob is ios 2.25.30\nbob calls the business as $c\n",
        )],
    );
    let url = emu.base_url();
    assert_eq!(
        sharing_of(&url, &args(&dir, &url)).await.0,
        Sharing::Tenants
    );
    let mut with_app = args(&dir, &url);
    with_app.app = Some("http://127.0.0.1:9/webhook".into());
    assert_eq!(sharing_of(&url, &with_app).await.0, Sharing::Reset);
    let mut without = args(&dir, &url);
    without.no_tenants = true;
    assert_eq!(sharing_of(&url, &without).await.0, Sharing::Reset);
    assert_eq!(
        sharing_of(&old.url, &args(&dir, &old.url)).await,
        (Sharing::Reset, "the emulator has no tenants")
    );
    // Such an emulator's refused reset fails the story (no tenant is asked for).
    assert_eq!(
        scenario::run(args(&dir, &old.url), Arc::new(InProcess)).await,
        1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The whole corpus, written against the default tenant (its display numbers, and ids in
/// a few expectations), passes on tenants of one shared emulator with a real clock, in
/// parallel: two doors, one behaviour.
#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_story_passes_on_a_tenant_of_one_shared_real_clock_emulator() {
    let opts =
        wa_emulator::server::ServeOptions::for_tests(wa_emulator::engine::ClockMode::Real, 11);
    let emu = wa_emulator::server::spawn(opts).await.unwrap();
    let mut a = args(std::path::Path::new("scenarios"), &emu.url());
    a.jobs = Some(8);
    a.timeout = Duration::from_secs(60);
    assert_eq!(scenario::run(a, Arc::new(InProcess)).await, 0);
    let r = Http::new()
        .send(
            "GET",
            &format!("{}/__emulator/tenants", emu.url()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.body["live"], 0, "every tenant was deleted");
}
