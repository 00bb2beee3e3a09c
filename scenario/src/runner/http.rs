//! The runner's view of an HTTP exchange: a status and a JSON body ([`Reply`]), sent
//! through the emulator library's client (`wa_emulator::server::client`), one per run so
//! connections are pooled across scenarios.

use serde_json::Value;
use std::time::Duration;
use wa_emulator::server::client::{Client, Response};

/// How long one request may take before the step fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
pub struct Http {
    client: Client,
    /// An emulator in this process: requests under its base URL go over `client`'s
    /// in-memory streams instead ([`Http::with_in_memory`]).
    in_memory: Option<(String, Client)>,
}

/// A response: its status and its body as JSON (`null` when empty, a JSON string when it
/// was not JSON).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// A response from its status and body bytes (the body read as [`Reply::body`] says).
    pub fn from_raw(status: u16, body: &[u8]) -> Reply {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        Reply { status, body }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The Graph error code, when the body is a Graph error envelope.
    pub fn error_code(&self) -> Option<u64> {
        self.body.pointer("/error/code").and_then(Value::as_u64)
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::new().with_timeout(REQUEST_TIMEOUT),
            in_memory: None,
        }
    }

    /// This client, with requests to `base_url` (an emulator in this process) sent over
    /// `client` (its in-memory door) instead: the same requests and answers, no loopback
    /// connection.
    pub fn with_in_memory(&self, base_url: &str, client: Client) -> Http {
        Http {
            client: self.client.clone(),
            in_memory: Some((
                base_url.trim_end_matches('/').to_string(),
                client.with_timeout(REQUEST_TIMEOUT),
            )),
        }
    }

    /// The client for `url`.
    fn client_for(&self, url: &str) -> &Client {
        match &self.in_memory {
            Some((base, client))
                if url
                    .strip_prefix(base.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?'])) =>
            {
                client
            }
            _ => &self.client,
        }
    }

    /// Sends a request and returns the answer as it came (its body unread); `Err` only
    /// when no HTTP response came back at all.
    pub async fn send_raw(
        &self,
        method: &str,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Response, String> {
        self.client_for(url)
            .json(method, url, bearer, body)
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a request; `Err` only when no HTTP response came back at all.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let answer = self
            .client_for(url)
            .json(method, url, bearer, body)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            status: answer.status.as_u16(),
            body: answer.json(),
        })
    }
}
