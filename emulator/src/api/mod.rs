//! Requests in, responses out — pure routing over the project's own request type.
//!
//! The server turns each hyper request into a [`Request`] once, then calls [`handle`]
//! with the engine locked. Every failure becomes a Graph-shaped JSON error here; nothing
//! below this layer can make the service fail.
//!
//! # Layout
//! - `mod.rs`: [`Request`], [`Response`], [`handle`] (Graph or admin), query parsing.
//! - `graph.rs`: the Graph surface, `/{version}/{object-id}/{edge}`, versioned or not.
//! - `admin.rs`: the `/__emulator` admin and user-simulation routes.
//! - [`admin_types`]: the admin answers clients read, as shared types.
//! - `views.rs`: the admin views of calls (the list, a call's summary, status names).

pub(crate) mod admin;
pub mod admin_types;
mod graph;
mod views;

use crate::domain::error::{ApiError, ErrorKind};
use crate::engine::Engine;
use crate::wire::url::percent_decode;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case method.
    pub method: String,
    pub path: String,
    pub raw_query: String,
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

impl Request {
    pub fn new(
        method: &str,
        path_and_query: &str,
        headers: Vec<(String, String)>,
        body: impl Into<bytes::Bytes>,
    ) -> Self {
        let (path, raw_query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            raw_query: raw_query.to_owned(),
            query: parse_query(raw_query),
            // Names already in lower case (hyper's always are) are kept, not copied.
            headers: headers
                .into_iter()
                .map(|(k, v)| match k.bytes().any(|b| b.is_ascii_uppercase()) {
                    true => (k.to_ascii_lowercase(), v),
                    false => (k, v),
                })
                .collect(),
            body: body.into(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    pub fn ok(v: &Value) -> Self {
        Self::json(200, v)
    }

    pub fn error(engine: &mut Engine, e: &ApiError) -> Self {
        let trace = engine.fbtrace_id();
        let mut r = Self::json(e.http_status(), &e.to_json(&trace));
        if e.kind == ErrorKind::InvalidToken {
            r.headers.push((
                "www-authenticate",
                format!(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                    e.message()
                ),
            ));
        }
        r
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the shell knows that the engine does not.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub listen_url: String,
    pub admin_token: Option<String>,
    /// The SIP gateway's addresses and CA, when it runs.
    pub sip: Option<admin_types::SipGateway>,
}

pub const ADMIN_PREFIX: &str = "/__emulator";

/// Whether a request may use the admin API: always without `--admin-token`, otherwise
/// with `Authorization: Bearer <token>` (or `?token=` where a browser cannot set headers).
pub fn admin_token_ok(ctx: &Context, req: &Request, allow_query: bool) -> bool {
    let Some(expected) = &ctx.admin_token else {
        return true;
    };
    let header = req.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    });
    header == Some(expected.as_str())
        || (allow_query && req.query("token") == Some(expected.as_str()))
}

pub fn admin_token_error() -> ApiError {
    ApiError::new(
        ErrorKind::InvalidToken,
        "The admin API needs Authorization: Bearer <admin token> (set with --admin-token).",
    )
}

pub use admin::ROUTES as ADMIN_ROUTES;
pub use admin::{advance_target as advance_target_of, clock_json as clock_json_of};
#[cfg(feature = "server")]
pub(crate) use graph::token as access_token;

pub fn handle(engine: &mut Engine, req: &Request, ctx: &Context) -> Response {
    // Reads change nothing a watcher shows; everything else may.
    if req.method != "GET" {
        engine.revision += 1;
    }
    if req.path == ADMIN_PREFIX || req.path.starts_with("/__emulator/") {
        return admin::handle(engine, req, ctx);
    }
    graph::handle(engine, req)
}

/// A URL component as the API reads it: bad escapes are kept as written, never refused.
pub(crate) fn decode_component(s: &str) -> String {
    percent_decode(s).unwrap_or_else(|lenient| lenient)
}

pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_decoded() {
        assert_eq!(
            parse_query("a=1&b=x%20y+z&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(decode_component("%zz%4"), "%zz%4");
        assert_eq!(decode_component("%C3%A9"), "é");
        assert_eq!(decode_component("%é%"), "%é%");
    }
}
