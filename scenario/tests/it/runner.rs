//! The runner end to end against the real emulator, in-process: what passes, and how
//! failures read. Ids repeat from run to run (a seeded emulator per test).

use crate::fake::Misbehaving;
use scenario::cli::{load, render_failure, RunArgs};
use scenario::runner::http::Http;
use scenario::runner::target::InProcessTarget;
use scenario::runner::{run_scenario, Options};
use scenario::{InProcess, RunningTarget};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The default tenant's numbers: the first (+1) has no business-initiated calling.
const PHONE: &str = "106540352242922";
const PHONE2: &str = "110972043181256";
const DISPLAY2: &str = "447700900461";

/// An SDP answer the emulator accepts, for the "app" that accepts calls below.
const SDP_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:app1\r\na=ice-pwd:appappappappappappappapp\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\na=mid:audio\r\na=rtpmap:111 opus/48000/2\r\n";

fn opts() -> Options {
    Options {
        grace: Duration::from_millis(50),
        ..Options::default()
    }
}

async fn emulator() -> InProcessTarget {
    InProcess::spawn(5).await.expect("the emulator starts")
}

async fn run_on(emu: &InProcessTarget, text: &str, opts: &Options) -> Result<(), String> {
    run_at(&emu.base_url(), text, opts).await
}

async fn run_at(url: &str, text: &str, opts: &Options) -> Result<(), String> {
    let l = load("t.scn", text).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&Http::new(), url, &l.source, &l.scenario, opts)
        .await
        .map_err(|f| render_failure(&l, &f))
}

const BUTTON_FLOW: &str = "user alice is android 2.25.30 with an open window
business sends alice a call button with payload \"order-42\" as $msg
expect a messages webhook sent for $msg
alice taps $msg as $call
expect a calls webhook connect for $call with {\"cta_payload\": \"order-42\"}
business accepts $call
advance 2m
alice hangs up $call
then expect a calls webhook terminate for $call with {\"duration\": 120, \"cta_payload\": \"order-42\"}
expect 2 calls webhooks for $call
";

#[tokio::test]
async fn a_button_call_flow_passes() {
    let emu = emulator().await;
    run_on(&emu, BUTTON_FLOW, &opts()).await.unwrap();
}

#[tokio::test]
async fn a_wrong_payload_fails_with_the_step_and_a_field_level_diff() {
    let emu = emulator().await;
    let text = BUTTON_FLOW.replacen("\"order-42\" as $msg", "\"order-41\" as $msg", 1);
    let err = run_on(&emu, &text, &opts()).await.unwrap_err();
    assert!(err.contains("step t.scn:5:1"), "{err}");
    assert!(
        err.contains(
            "5 | expect a calls webhook connect for $call with {\"cta_payload\": \"order-42\"}"
        ),
        "{err}"
    );
    assert!(
        err.contains("expected a `calls` webhook `connect` for $call (wacid."),
        "{err}"
    );
    assert!(
        err.contains("the closest delivered webhook was #4 `calls` `connect` (held)"),
        "{err}"
    );
    assert!(
        err.contains("entry[0].changes[0].value.calls[0].cta_payload: expected \"order-42\", got \"order-41\""),
        "{err}"
    );
}

#[tokio::test]
async fn within_steps_through_the_virtual_clock_until_the_webhook_is_due() {
    // An unanswered call rings for 60 s, then ends.
    let emu = emulator().await;
    let text = "user alice is android 2.25.30
alice calls the business as $call
expect no calls webhook terminate for $call within 20s
expect a calls webhook terminate for $call within 2m without duration
";
    run_on(&emu, text, &opts()).await.unwrap();
    let too_soon = "user bob is android 2.25.30 with number 16505559999
bob calls the business as $call
expect a calls webhook terminate for $call within 30s
";
    let emu = emulator().await;
    let err = run_on(&emu, too_soon, &opts()).await.unwrap_err();
    assert!(
        err.contains("expected a `calls` webhook `terminate`"),
        "{err}"
    );
    assert!(err.contains("within 30s"), "{err}");
    assert!(
        err.contains("event: expected `terminate`, got `connect`"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unexpected_error_response_fails_and_suggests_expecting_it() {
    let emu = emulator().await;
    // display_text allows 20 characters.
    let text = "user alice is android 2.25.30\nbusiness sends alice a call button \"Call us right now!!!!\"\n";
    let err = run_on(&emu, text, &opts()).await.unwrap_err();
    assert!(err.contains("the request failed with HTTP 400"), "{err}");
    assert!(
        err.contains("add `expect error 131009` on the next line"),
        "{err}"
    );
    let expected = "user alice is android 2.25.30\nbusiness sends alice a call button \"Call us right now!!!!\"\nexpect error 131009 with status 400\n";
    run_on(&emu, expected, &opts()).await.unwrap();
    let wrong = "user alice is android 2.25.30\nbusiness sends alice a call button \"Call us right now!!!!\"\nexpect error 100\n";
    let err = run_on(&emu, wrong, &opts()).await.unwrap_err();
    assert!(
        err.contains("expected error code 100, got code 131009 (HTTP 400)"),
        "{err}"
    );
}

#[tokio::test]
async fn then_requires_order_and_each_webhook_is_matched_once() {
    let emu = emulator().await;
    let text = "user alice is android 2.25.30
alice calls the business as $call
alice hangs up $call
expect a calls webhook terminate for $call
then expect a calls webhook connect for $call
";
    let err = run_on(&emu, text, &opts()).await.unwrap_err();
    assert!(
        err.contains("arrived before webhook #2 that `then` must follow"),
        "{err}"
    );
    let emu = emulator().await;
    let twice = "user alice is android 2.25.30
alice calls the business as $call
expect a calls webhook connect for $call
expect a calls webhook connect for $call
";
    let err = run_on(&emu, twice, &opts()).await.unwrap_err();
    assert!(
        err.contains("already matched by the expectation on line 3"),
        "{err}"
    );
}

/// The Graph requests the emulator received, as (method, path, body).
async fn journal(emu: &InProcessTarget) -> Vec<(String, String, Value)> {
    let r = Http::new()
        .send(
            "GET",
            &format!("{}/__emulator/requests", emu.base_url()),
            None,
            None,
        )
        .await
        .unwrap();
    r.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["method"].as_str().unwrap().to_string(),
                q["path"].as_str().unwrap().to_string(),
                q["body"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn business_uses_number_switches_the_number_business_and_user_steps_act_on() {
    let emu = emulator().await;
    let text = format!(
        "user alice is android 2.25.30
business calls alice
expect error 138013 with status 400
business uses number {DISPLAY2}
alice says \"hi\"
expect a messages webhook text for alice with {{\"metadata\": {{\"phone_number_id\": \"{PHONE2}\"}}}}
business sends alice a call button as $msg
alice taps $msg as $tapped
expect a calls webhook connect for $tapped with {{\"to\": \"{DISPLAY2}\"}}
alice hangs up $tapped
business asks alice for call permission as $req
alice accepts call permission $req
business calls alice as $call
expect a calls webhook connect for $call with {{\"direction\": \"BUSINESS_INITIATED\", \"from\": \"{DISPLAY2}\", \"to\": \"16505550001\"}}
alice declines $call
alice calls the business as $native
expect a calls webhook connect for $native with {{\"calls\": [{{\"to\": \"{DISPLAY2}\"}}], \"metadata\": {{\"phone_number_id\": \"{PHONE2}\"}}}}
business uses number \"+15550783881\"
business calls alice
expect error 138013
"
    );
    run_on(&emu, &text, &opts()).await.unwrap();
    let requests = journal(&emu).await;
    let paths: Vec<&str> = requests.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            format!("/v21.0/{PHONE}/calls"),
            format!("/v21.0/{PHONE2}/messages"),
            format!("/v21.0/{PHONE2}/messages"),
            format!("/v21.0/{PHONE2}/calls"),
            format!("/v21.0/{PHONE}/calls"),
        ]
    );
    // `to` is always written with `+`, so the user keeps their number whatever the
    // business number's country.
    for (_, _, body) in &requests {
        assert_eq!(body["to"], "+16505550001", "{body}");
    }
}

#[tokio::test]
async fn business_has_number_adds_a_number_whose_country_decides_business_calling() {
    let emu = emulator().await;
    // The numbers come first: `with an open window` opens the window with every number
    // there is when the user is declared.
    let text = "business has number 5511962185237 in country BR as $br
business has number \"+20 100 123 4567\" as $eg
user bob is android 2.25.30 with an open window
business uses number \"+55 11 96218-5237\"
business asks bob for call permission as $req
bob accepts call permission $req
business calls bob as $call
expect a calls webhook connect for $call with {\"metadata\": {\"phone_number_id\": $br, \"display_phone_number\": \"5511962185237\"}}
business uses number 201001234567
business calls bob
expect error 138013
";
    // With a reset before each run (as --target does), the second run adds the same
    // numbers again: the reset took the first run's away.
    let reset = Options {
        reset: true,
        ..opts()
    };
    run_on(&emu, text, &reset).await.unwrap();
    run_on(&emu, text, &reset).await.unwrap();

    // Adding a number twice fails the step with the emulator's reason.
    let err = run_on(&emu, "business has number 447700900461\n", &opts())
        .await
        .unwrap_err();
    assert!(err.contains("step t.scn:1:1"), "{err}");
    assert!(
        err.contains("the emulator did not add business number 447700900461 (POST /__emulator/phone_numbers answered HTTP 400)"),
        "{err}"
    );
    assert!(
        err.contains("already phone number 110972043181256"),
        "{err}"
    );
}

#[tokio::test]
async fn response_expectations_check_absent_keys_and_times_on_the_clock() {
    let emu = emulator().await;
    let text = format!(
        "business uses number {DISPLAY2}
user bob is android 2.25.30 with an open window
business asks bob for call permission as $req
bob accepts call permission $req
expect a messages webhook call_permission_reply with {{\"expiration_timestamp\": now + 7d}}
advance 1d
business checks call permission for bob
expect response {{\"permission\": {{\"status\": \"temporary\", \"expiration_time\": now + 6d}}}} without error
expect response {{\"permission\": {{\"expiration_time\": now + 7d}}}}
"
    );
    let err = run_on(&emu, &text, &opts()).await.unwrap_err();
    assert!(err.contains("step t.scn:9:1"), "{err}");
    assert!(
        err.contains("permission.expiration_time: expected now + 7d (1767916800, ± 5s), got 1767830400 (1d earlier)"),
        "{err}"
    );

    let text = format!(
        "business uses number {DISPLAY2}
user bob is android 2.25.30 with an open window
business checks call permission for bob
expect response without expiration_time, actions
"
    );
    let err = run_on(&emu, &text, &opts()).await.unwrap_err();
    assert!(
        err.contains("expected the response to have no expiration_time, actions"),
        "{err}"
    );
    assert!(err.contains("actions: expected absent, got [{"), "{err}");
}

#[tokio::test]
async fn an_unknown_business_number_fails_its_step_with_the_numbers_there_are() {
    let emu = emulator().await;
    let text =
        "user alice is android 2.25.30\nbusiness uses number 447700900462\nbusiness calls alice\n";
    let err = run_on(&emu, text, &opts()).await.unwrap_err();
    assert!(err.contains("step t.scn:2:1"), "{err}");
    assert!(
        err.contains("2 | business uses number 447700900462"),
        "{err}"
    );
    assert!(
        err.contains("the emulator has no business number 447700900462"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "15550783881 (id {PHONE}), {DISPLAY2} (id {PHONE2})"
        )),
        "{err}"
    );
    assert!(
        journal(&emu).await.is_empty(),
        "no request after the failing step"
    );
}

#[tokio::test]
async fn absence_fails_when_a_matching_webhook_arrived() {
    let emu = emulator().await;
    let text = "user alice is android 2.25.30\nalice calls the business as $call\nexpect no calls webhook within 5s\n";
    let err = run_on(&emu, text, &opts()).await.unwrap_err();
    assert!(
        err.contains("expected no `calls` webhooks within 5s, but 1 matching webhook arrived"),
        "{err}"
    );
}

/// A webhook receiver that only passes the verification handshake and acknowledges
/// every webhook: enough of an app for `--app`, whose actions the test then takes.
async fn handshake_only_app() -> (String, tokio::task::JoinHandle<()>) {
    use http_body_util::Full;
    use hyper::body::Incoming;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(|req: hyper::Request<Incoming>| {
                let challenge = req
                    .uri()
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("hub.challenge="))
                    .unwrap_or("ok")
                    .to_string();
                async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        bytes::Bytes::from(challenge),
                    )))
                }
            });
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
async fn app_mode_matches_the_graph_requests_the_app_makes() {
    let emu = emulator().await;
    let (app_url, _app) = handshake_only_app().await;
    // The "app": waits for the connect in the delivery log, then pre-accepts and accepts.
    let url = emu.base_url();
    let app = tokio::spawn(async move {
        let http = Http::new();
        let call_id = loop {
            let log = http
                .send("GET", &format!("{url}/__emulator/webhooks"), None, None)
                .await
                .unwrap();
            let found = log.body["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|d| {
                    d.pointer("/body/entry/0/changes/0/value/calls/0/id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
            if let Some(id) = found {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        for action in ["pre_accept", "accept"] {
            let body = json!({"messaging_product": "whatsapp", "call_id": call_id, "action": action,
                "session": {"sdp_type": "answer", "sdp": SDP_ANSWER}});
            let r = http
                .send(
                    "POST",
                    &format!("{url}/v21.0/{PHONE}/calls"),
                    Some("wa-emulator-token"),
                    Some(&body),
                )
                .await
                .unwrap();
            assert!(r.is_success(), "{action}: {r:?}");
        }
    });
    let text = "user alice is android 2.25.30
alice calls the business as $call
expect the app to pre_accept $call within 5s
expect success
then expect the app to accept $call within 5s
advance 1m
alice hangs up $call
expect a calls webhook terminate for $call with {\"duration\": 60}
expect the app not to terminate $call
";
    let app_opts = Options {
        app: Some(app_url),
        ..opts()
    };
    run_on(&emu, text, &app_opts).await.unwrap();
    app.await.unwrap();
    let late = "user bob is android 2.25.30 with number 16505559999
bob calls the business as $call
expect the app to reject $call within 300ms
";
    let err = run_on(&emu, late, &app_opts).await.unwrap_err();
    assert!(err.contains("expected the app to reject $call"), "{err}");
    assert!(
        err.contains("the app made no Graph request at all"),
        "{err}"
    );
}

#[tokio::test]
async fn an_emulator_answering_other_shapes_fails_before_the_first_step_naming_the_route() {
    let fake = Misbehaving::start(|_, path| match path {
        "/__emulator/config" => (200, json!({"phone_number_id": PHONE})),
        _ => (404, json!({})),
    })
    .await;
    let err = run_at(&fake.url, "user alice is android 2.25.30\n", &opts())
        .await
        .unwrap_err();
    assert!(err.contains("before the first step"), "{err}");
    assert!(
        err.contains("GET /__emulator/config answered something this runner cannot read (missing field `url`"),
        "{err}"
    );
    assert!(err.contains("{\"phone_number_id\":"), "{err}");
    assert!(err.contains("help: is the target a wa-emulator"), "{err}");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scenario-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("calls")).unwrap();
    dir
}

fn args(paths: Vec<std::path::PathBuf>) -> RunArgs {
    RunArgs {
        paths,
        jobs: Some(2),
        seed: 7,
        partition: None,
        junit: None,
        target: None,
        no_tenants: false,
        config: None,
        app: None,
        admin_token: None,
        timeout: Duration::from_secs(20),
        check: false,
        quiet: true,
    }
}

#[tokio::test]
async fn the_cli_runs_folders_in_parallel_writes_junit_and_sets_the_exit_code() {
    let dir = temp_dir("cli");
    std::fs::write(dir.join("calls/a-passes.scn"), BUTTON_FLOW).unwrap();
    std::fs::write(dir.join("calls/b-passes.scn"), "user bob is ios 2.25.30\nbob calls the business as $c\nexpect a calls webhook connect for $c\n").unwrap();
    std::fs::write(dir.join("calls/c-fails.scn"), "user bob is ios 2.25.30\nbob calls the business as $c\nexpect a calls webhook terminate for $c\n").unwrap();
    std::fs::write(
        dir.join("calls/d-needs-app.scn"),
        "user bob is ios 2.25.30\nbob calls the business as $c\nexpect the app to accept $c\n",
    )
    .unwrap();
    let junit = dir.join("junit.xml");
    let mut a = args(vec![dir.clone()]);
    a.junit = Some(junit.clone());
    assert_eq!(scenario::run(a, Arc::new(InProcess)).await, 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"4\" failures=\"1\" skipped=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"c-fails.scn\""), "{xml}");

    // Shard 1 of 2 holds a-passes and c-fails; shard 2 holds the ones that pass or skip.
    let mut shard2 = args(vec![dir.clone()]);
    shard2.partition = Some(scenario::cli::parse_partition("2/2").unwrap());
    assert_eq!(scenario::run(shard2, Arc::new(InProcess)).await, 0);

    std::fs::write(dir.join("calls/e-broken.scn"), "advence 2h\n").unwrap();
    assert_eq!(
        scenario::run(args(vec![dir.clone()]), Arc::new(InProcess)).await,
        2
    );
    assert_eq!(
        scenario::run(args(vec![dir.join("missing")]), Arc::new(InProcess)).await,
        2
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn more_jobs_than_cores_give_the_same_outcomes_in_the_same_order_as_one_job() {
    let dir = temp_dir("jobs");
    for i in 0..6 {
        let event = if i % 3 == 2 { "terminate" } else { "connect" };
        std::fs::write(
            dir.join(format!("calls/story-{i}.scn")),
            format!("user bob is ios 2.25.30\nbob calls the business as $c\nexpect a calls webhook {event} for $c\n"),
        )
        .unwrap();
    }
    let files = scenario::cli::discover(std::slice::from_ref(&dir)).unwrap();
    let verdicts = |jobs: usize| {
        let (loaded, diagnostics) = scenario::cli::load_all(&files);
        assert!(diagnostics.is_empty(), "{diagnostics}");
        let a = args(vec![dir.clone()]);
        async move {
            scenario::cli::execute(loaded, jobs, &a, &Options::default(), Arc::new(InProcess))
                .await
                .into_iter()
                .map(|o| {
                    let name = o.name.rsplit('/').next().unwrap_or_default().to_owned();
                    (name, matches!(o.verdict, scenario::cli::Verdict::Passed))
                })
                .collect::<Vec<_>>()
        }
    };
    let one = verdicts(1).await;
    let expected: Vec<(String, bool)> = (0..6)
        .map(|i| (format!("story-{i}.scn"), i % 3 != 2))
        .collect();
    assert_eq!(one, expected);
    assert_eq!(verdicts(5).await, one);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_target_door_without_tenants_resets_the_shared_emulator_before_each_scenario() {
    let emu = emulator().await;
    let dir = temp_dir("target");
    // Both files declare the same user number; without a reset between them the second
    // would see the first one's webhooks and fail `expect exactly 1`.
    for name in ["a", "b"] {
        std::fs::write(
            dir.join(format!("calls/{name}.scn")),
            "user bob is ios 2.25.30\nbob calls the business as $c\nexpect exactly 1 calls webhook connect\n",
        )
        .unwrap();
    }
    let mut a = args(vec![dir.clone()]);
    a.target = Some(emu.base_url());
    a.no_tenants = true;
    assert_eq!(scenario::run(a, Arc::new(InProcess)).await, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn config_gives_every_in_process_emulator_the_file_s_numbers_and_behaviour() {
    let dir = temp_dir("config");
    let config = dir.join("tenant.toml");
    std::fs::write(
        &config,
        "[behaviour]\nring_timeout_secs = 30\n
[[apps]]\nid = \"1\"\nsecret = \"s\"\naccess_tokens = [\"t\"]\n
[[wabas]]\nid = \"2\"\napp_id = \"1\"\n
[[phone_numbers]]\nid = \"3\"\nwaba_id = \"2\"\ndisplay_phone_number = \"5511962185237\"\n",
    )
    .unwrap();
    // The Brazilian number is the only one, so it is the business; it may call users, and
    // an unanswered call ends after the file's 30 s instead of the default 60.
    std::fs::write(
        dir.join("calls/brazil.scn"),
        "user bob is android 2.25.30 with an open window
business asks bob for call permission as $req
bob accepts call permission $req
business calls bob as $call
expect a calls webhook connect for $call with {\"metadata\": {\"phone_number_id\": \"3\"}}
advance 30s
expect a calls webhook terminate for $call
",
    )
    .unwrap();
    let mut a = args(vec![dir.clone()]);
    a.config = Some(config.clone());
    let factory = scenario::cli::in_process(&a).unwrap();
    assert_eq!(scenario::run(a, factory).await, 0);

    // With --target the remote emulator has its own configuration: a usage error.
    let mut a = args(vec![dir.clone()]);
    a.config = Some(config.clone());
    a.target = Some("http://127.0.0.1:9".into());
    let e = scenario::cli::in_process(&a).err().unwrap();
    assert!(e.contains("cannot be used with --target"), "{e}");
    assert!(e.contains("its own configuration"), "{e}");
    assert_eq!(scenario::run(a, Arc::new(InProcess)).await, 2);

    // A file that does not parse stops the run before anything starts.
    std::fs::write(&config, "clokc = \"virtual\"\n").unwrap();
    let mut a = args(vec![dir.clone()]);
    a.config = Some(config);
    let e = scenario::cli::in_process(&a).err().unwrap();
    assert!(e.contains("unknown field `clokc`"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_target_door_fails_each_scenario_whose_reset_is_refused() {
    let fake = Misbehaving::start(|_, _| {
        (
            500,
            json!({"error": {"message": "(#1) An unknown error occurred", "code": 1}}),
        )
    })
    .await;
    let dir = temp_dir("target-refused");
    std::fs::write(
        dir.join("calls/a.scn"),
        "user bob is ios 2.25.30\nbob calls the business as $c\n",
    )
    .unwrap();
    let mut a = args(vec![dir.clone()]);
    a.target = Some(fake.url.clone());
    let outcomes = scenario::cli::execute(
        scenario::cli::load_all(&scenario::cli::discover(std::slice::from_ref(&dir)).unwrap()).0,
        1,
        &a,
        &Options {
            reset: true,
            ..Options::default()
        },
        Arc::new(InProcess),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    match &outcomes[..] {
        [o] => match &o.verdict {
            scenario::cli::Verdict::Failed(msg) => assert!(
                msg.contains("before the first step")
                    && msg.contains("POST /__emulator/reset answered HTTP 500"),
                "{msg}"
            ),
            v => panic!("expected a failure, got {v:?}"),
        },
        other => panic!("one outcome expected: {other:?}"),
    }
}

/// A call the business accepted with the runner's SDP, which has no ICE candidate: the
/// call is signalling only (issue 18), as every story without a WebRTC peer.
const SIGNALLING_ONLY_CALL: &str = "user alice is android 2.25.30 with an open window
business sends alice a call button as $msg
alice taps $msg as $call
business accepts $call
";

#[tokio::test]
async fn media_steps_on_a_signalling_only_call_are_refused_with_the_reason() {
    // Unexpected: the step fails, naming the refusal and how to expect it.
    let text = format!("{SIGNALLING_ONLY_CALL}alice presses \"12#\" on $call\n");
    let err = run_on(&emulator().await, &text, &opts()).await.unwrap_err();
    assert!(err.contains("step t.scn:5:1"), "{err}");
    assert!(
        err.contains("HTTP 409")
            && err.contains("signalling only")
            && err.contains("expect error 100"),
        "{err}"
    );
    // Each story on a fresh emulator: alice would still be in the first call.
    // Expected: the story passes, for keys and for sound.
    let text = format!(
        "{SIGNALLING_ONLY_CALL}alice presses \"12#\" on $call
expect error 100 with status 409
expect response {{\"reason\": \"no_media\"}}
alice plays a 440 Hz tone on $call
expect response {{\"reason\": \"no_media\"}}
expect media for $call with {{\"state\": \"none\", \"received\": {{\"packets\": 0}}}}
"
    );
    run_on(&emulator().await, &text, &opts()).await.unwrap();
    // Hearing audio on it fails at once (the state never changes), saying why.
    let text = format!("{SIGNALLING_ONLY_CALL}expect alice to hear audio on $call within 30s\n");
    let err = run_on(&emulator().await, &text, &opts()).await.unwrap_err();
    assert!(err.contains("step t.scn:5:1"), "{err}");
    assert!(
        err.contains("expected alice to hear audio on $call (wacid.")
            && err.contains("the call is signalling only (media state `none`)")
            && err.contains("no_media"),
        "{err}"
    );
}

#[tokio::test]
async fn media_steps_on_a_call_whose_business_sdp_can_connect_reach_the_endpoint() {
    let emu = emulator().await;
    // The business pre-accepts with an SDP that has a candidate (on a port nobody
    // answers): the user's endpoint starts, and stays connecting.
    let sdp = "v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\\r\\nc=IN IP4 127.0.0.1\\r\\na=mid:0\\r\\na=rtcp-mux\\r\\na=rtpmap:111 opus/48000/2\\r\\na=rtpmap:126 telephone-event/8000\\r\\na=candidate:c1 1 udp 2130706431 127.0.0.1 9 typ host\\r\\na=ice-ufrag:abcd\\r\\na=ice-pwd:0123456789abcdef012345\\r\\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\\r\\na=setup:active\\r\\n";
    let text = format!(
        "user alice is android 2.25.30 with an open window
business sends alice a call button as $msg
alice taps $msg as $call
business requests POST /calls {{\"messaging_product\": \"whatsapp\", \"call_id\": $call, \"action\": \"pre_accept\", \"session\": {{\"sdp_type\": \"answer\", \"sdp\": \"{sdp}\"}}}}
expect success
alice plays a 440 Hz tone on $call
expect response {{\"playing\": \"tone\"}}
expect media for $call with {{\"state\": \"connecting\", \"playing\": \"tone\"}} within 2s
expect alice to hear audio on $call within 200ms
"
    );
    let err = run_on(&emu, &text, &opts()).await.unwrap_err();
    assert!(
        err.contains("step t.scn:9:1"),
        "the steps before pass: {err}"
    );
    assert!(
        err.contains("expected alice to hear audio on $call (wacid.")
            && err.contains("within 200ms")
            && err.contains("media: state connecting (ICE "),
        "{err}"
    );
}

/// The thousand-scenario benchmark workload, each scenario against its own in-process
/// emulator: the runner and the emulator together.
/// `cargo test -p scenario --release --test it -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark, not a test"]
#[allow(clippy::disallowed_methods, reason = "benchmarks measure real time")]
async fn bench_a_thousand_fifteen_step_scenarios_in_process() {
    let dir = temp_dir("bench");
    for i in 0..1000 {
        std::fs::write(
            dir.join(format!("calls/story-{i:04}.scn")),
            scenario::bench_scenario(i),
        )
        .unwrap();
    }
    let started = std::time::Instant::now();
    let mut a = args(vec![dir.clone()]);
    a.jobs = None;
    assert_eq!(scenario::run(a, Arc::new(InProcess)).await, 0);
    println!("1000 scenarios x 15 steps: {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}
