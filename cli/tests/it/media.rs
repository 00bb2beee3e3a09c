//! The user's media from the terminal (issue 18): `wa-emulator media`, `dtmf` and `play`
//! against a `wa-emulator serve` process. No WebRTC peer here (the end-to-end tests with
//! aiortc are the emulator's): a signalling-only call shows the `no_media` refusal in
//! words, and a call whose business SDP can connect (ICE credentials, a fingerprint, a
//! candidate nobody answers on) takes the user's keys and tone while it connects.

use super::harness::*;
use serde_json::json;

/// `wa-emulator ARGS --url URL`: exit code, stdout, stderr.
fn user(served: &Served, args: &[&str]) -> (i32, String, String) {
    let out = binary()
        .args(args)
        .args(["--url", &served.url])
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An answer a WebRTC stack could send: ICE credentials, a fingerprint, Opus on 111,
/// telephone-event on 126, and a host candidate on a loopback port nothing answers.
const CONNECTABLE_ANSWER: &str = "v=0\r\no=- 3921 3921 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic:WMS *\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=mid:0\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=candidate:c1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:active\r\n";

/// The user calls the business; the business pre-accepts with this SDP answer.
async fn call_pre_accepted(served: &Served, sdp: &str) -> String {
    let (s, r) = served
        .call(
            "POST",
            &format!("/__emulator/users/{USER}/call"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let id = r["call_id"].as_str().unwrap().to_owned();
    let (s, r) = served
        .request(
            "POST",
            &format!("/v21.0/{PHONE}/calls"),
            json!({"messaging_product":"whatsapp","call_id":id,"action":"pre_accept","session":{"sdp_type":"answer","sdp":sdp}}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    id
}

#[tokio::test]
async fn a_signalling_only_call_shows_no_media_and_refuses_keys_and_sound_in_words() {
    let served = Served::start(&["--addr", "127.0.0.1:0", "--clock", "virtual"], &[]);
    let (code, _, err) = user(&served, &["media", "wacid.nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused (404") && err.contains("wacid.nope"),
        "{err}"
    );

    // A ringing call the business has not answered: no business SDP, so no media.
    let (s, r) = served
        .call(
            "POST",
            &format!("/__emulator/users/{USER}/call"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let id = r["call_id"].as_str().unwrap().to_owned();
    let (code, out, err) = user(&served, &["media", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&id) && out.contains("signalling only"),
        "{out}"
    );

    let (code, out, err) = user(&served, &["dtmf", &id, "12#"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("refused (409, no_media)")
            && err.contains("signalling only")
            && err.contains("ICE credentials and a candidate"),
        "the reason, the emulator's words and what to do: {err}"
    );
    let (code, _, err) = user(&served, &["play", &id, "--tone", "440"]);
    assert_eq!(code, 1);
    assert!(err.contains("no_media"), "{err}");

    // A key that is not a phone key is the emulator's 400, naming the field.
    let (code, _, err) = user(&served, &["dtmf", &id, "12x"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("refused (400") && err.contains("digits"),
        "{err}"
    );
    // `play` takes exactly one sound, and a WAV file it can read.
    let (code, _, err) = user(&served, &["play", &id]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = user(&served, &["play", &id, "--tone", "440", "--silence"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, err) = user(&served, &["play", &id, "--wav", "/nonexistent/hello.wav"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read the WAV file /nonexistent/hello.wav"),
        "{err}"
    );
    served.stop();
}

#[tokio::test]
async fn a_call_whose_business_sdp_can_connect_takes_keys_and_a_tone() {
    let served = Served::start(&["--addr", "127.0.0.1:0", "--clock", "virtual"], &[]);
    let id = call_pre_accepted(&served, CONNECTABLE_ANSWER).await;
    let (code, out, err) = user(&served, &["media", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("call {id}: media connecting"))
            && out.contains("the user says: silence")
            && out.contains("received: 0 packets, 0 bytes, no audio yet, keys none"),
        "{out}"
    );
    let (code, out, err) = user(&served, &["play", &id, "--tone", "440"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("the user now says a 440 Hz tone") && out.contains("the user says: tone"),
        "{out}"
    );
    let (code, out, err) = user(&served, &["media", &id, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v["call_id"], id.as_str());
    assert_eq!(v["playing"], "tone");
    served.stop();
}
