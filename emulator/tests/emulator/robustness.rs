//! Bad input gets a Graph-shaped error and the server keeps serving.

use super::harness::*;
use serde_json::json;

#[tokio::test]
async fn malformed_and_hostile_requests_get_graph_errors_and_the_server_keeps_serving() {
    let emu = Emu::start().await;
    let auth = format!("Bearer {TOKEN}");
    let path = format!("/v21.0/{PHONE}/messages");
    let big = vec![b'a'; 10 * 1024 * 1024];
    let cases: Vec<(&str, String, Vec<u8>, u16, u64)> = vec![
        ("POST", path.clone(), b"{\"messaging_product\":".to_vec(), 400, 100),
        ("POST", path.clone(), b"[1,2]".to_vec(), 400, 100),
        ("POST", path.clone(), vec![0xff, 0xfe, 0x00], 400, 100),
        ("POST", path.clone(), b"{\"messaging_product\":\"whatsapp\",\"to\":5,\"type\":\"text\"}".to_vec(), 400, 100),
        ("POST", path.clone(), b"{\"messaging_product\":\"whatsapp\",\"to\":\"16315551234\",\"type\":\"interactive\",\"interactive\":null}".to_vec(), 400, 131008),
        ("POST", path.clone(), big, 413, 100),
        ("POST", format!("/v21.0/{PHONE}/nonsense"), b"{}".to_vec(), 400, 100),
        ("GET", "/v21.0/999999/messages".into(), Vec::new(), 400, 100),
        ("GET", "/".into(), Vec::new(), 400, 100),
        ("PATCH", format!("/v21.0/{PHONE}/messages"), b"{}".to_vec(), 400, 100),
        ("POST", "/__emulator/nope".into(), Vec::new(), 404, 100),
        ("POST", format!("/__emulator/users/{USER}/tap"), b"{\"message_id\": 7}".to_vec(), 400, 100),
    ];
    for (method, p, body, status, code) in cases {
        let (s, v) = emu
            .raw(
                method,
                &p,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
        assert_eq!(s, status, "{method} {p}: {v}");
        assert_eq!(v["error"]["code"].as_u64(), Some(code), "{method} {p}: {v}");
        assert!(
            v["error"]["error_data"]["details"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{v}"
        );
    }
    let (s, _) = emu.raw("GET", "/__emulator/health", &[], "").await;
    assert_eq!(s, 200);
    emu.send(voice_call(USER, json!({}))).await;
}

#[tokio::test]
async fn unversioned_paths_and_chunked_bodies_are_accepted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let emu = Emu::start().await;
    let body = voice_call(USER, json!({})).to_string();
    let addr = emu.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (a, b) = body.split_at(body.len() / 2);
    let req = format!(
        "POST /{PHONE}/messages HTTP/1.1\r\nHost: {addr}\r\nauthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("wamid."), "{out}");
}
