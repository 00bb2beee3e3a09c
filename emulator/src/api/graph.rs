//! The Graph surface: `/{version}/{object-id}/{edge}`, versioned or not.

use super::{Request, Response};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{AppId, PhoneNumberId, TemplateId, WabaId};
use crate::domain::version::{GraphVersion, Rule};
use crate::engine::{unknown_object, Engine};
use crate::wire::json::parse_object;
use serde_json::{json, Value};

/// `v21.0`, `v17`, … as Graph accepts them in a path.
fn path_version(seg: &str) -> Option<GraphVersion> {
    seg.starts_with('v')
        .then(|| GraphVersion::parse(seg))
        .flatten()
}

pub fn handle(engine: &mut Engine, req: &Request) -> Response {
    // A refused request takes back what it created on the way (users, windows, …).
    engine.begin();
    let result = route(engine, req);
    engine.finish(result.is_ok());
    let response = match result {
        Ok(Answer::Value(v)) => Response::ok(&v),
        Ok(Answer::Bytes(body)) => Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        },
        Err(e) => Response::error(engine, &e),
    };
    engine.record_request(
        &req.method,
        &req.path,
        &req.raw_query,
        &req.body,
        response.status,
        &response.body,
    );
    response
}

/// The access token of a Graph request: `Authorization: Bearer` (or `OAuth`), else
/// `?access_token=`. The server routes a request to the tenant this token belongs to.
pub fn token(req: &Request) -> Option<&str> {
    if let Some(h) = req.header("authorization") {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") {
            return Some(rest.trim());
        }
        return None;
    }
    req.query("access_token")
}

/// A successful answer: a JSON tree, or the bytes of one written directly (sends).
enum Answer {
    Value(Value),
    Bytes(Vec<u8>),
}

fn route(engine: &mut Engine, req: &Request) -> ApiResult<Answer> {
    let mut send = None;
    let answer = route_value(engine, req, &mut send)?;
    match send {
        Some((app, phone)) => engine
            .send_message_bytes(&app, &phone, &req.body)
            .map(Answer::Bytes),
        None => Ok(Answer::Value(answer)),
    }
}

/// Routes a request; a send (`POST /{phone}/messages`) is only named in `send`, for
/// [`route`] to answer in bytes.
fn route_value(
    engine: &mut Engine,
    req: &Request,
    send: &mut Option<(AppId, PhoneNumberId)>,
) -> ApiResult<Value> {
    // Read in place, not collected: every send passes here.
    let mut segs = req.path.split('/').filter(|s| !s.is_empty()).peekable();
    engine.graph_version = match segs.peek().and_then(|s| path_version(s)) {
        Some(v) => {
            segs.next();
            v
        }
        None => engine.behaviour.default_graph_version,
    };
    let app = match token(req) {
        None => {
            return Err(ApiError::new(
                ErrorKind::InvalidToken,
                "No access token: send Authorization: Bearer <token> (the default token is wa-emulator-token).",
            )
            .with_message("An active access token must be used to query information about the current user."))
        }
        Some(t) => engine.app_for_token(t).ok_or_else(|| {
            ApiError::new(ErrorKind::InvalidToken, format!("The access token {} is not one this emulator issued (see GET /__emulator/config).", mask(t)))
        })?,
    };
    let (id, edge) = match (segs.next(), segs.next(), segs.next()) {
        (None, ..) => {
            return Err(ApiError::new(
                ErrorKind::UnknownPath,
                "The request names no object: expected /{version}/{object-id}/{edge}.",
            ))
        }
        (Some(id), edge, None) => (id, edge),
        (Some(id), edge, Some(third)) => {
            let rest: Vec<&str> = edge.into_iter().chain([third]).chain(segs).collect();
            return Err(unknown_path(id, &rest.join("/")));
        }
    };
    let method = req.method.as_str();
    let phone = PhoneNumberId::from(id);
    if engine.phone(&phone).is_some() {
        if matches!(edge, Some("calls" | "call_permissions"))
            && !engine.graph_version.has(Rule::CallingApi)
        {
            let e = edge.unwrap_or_default();
            return Err(ApiError::new(
                ErrorKind::UnknownPath,
                format!(
                    "/{e} is part of the Calling API, which needs Graph API v17.0 or later; the request was made on {}.",
                    engine.graph_version
                ),
            )
            .with_message(format!("Unknown path components: /{e}")));
        }
        return match (method, edge) {
            ("POST", Some("messages")) => {
                *send = Some((app, phone));
                Ok(Value::Null)
            }
            ("POST", Some("calls")) => engine.call_action(&app, &phone, &parse_object(&req.body)?),
            ("GET", Some("call_permissions")) => {
                engine.get_call_permissions(&app, &phone, &req.query)
            }
            ("GET", Some("settings")) => engine.get_settings(
                &app,
                &phone,
                req.query("include_sip_credentials") == Some("true"),
            ),
            ("POST", Some("settings")) => {
                engine.post_settings(&app, &phone, &parse_object(&req.body)?)
            }
            ("GET", None) => phone_json(engine, &app, &phone),
            (_, Some(e)) if known_edge(e) => Err(unsupported_method(method, id, Some(e))),
            (_, Some(e)) => Err(unknown_path(id, e)),
            (_, None) => Err(unsupported_method(method, id, None)),
        };
    }
    if engine.app_of_waba(&WabaId::from(id)).is_some() {
        let waba = WabaId::from(id);
        return match (method, edge) {
            ("POST", Some("message_templates")) => {
                engine.create_template(&app, &waba, &parse_object(&req.body)?)
            }
            ("GET", Some("message_templates")) => engine.list_templates(&app, &waba, &req.query),
            ("DELETE", Some("message_templates")) => {
                engine.delete_template(&app, &waba, req.query("name"), req.query("hsm_id"))
            }
            ("GET", Some("phone_numbers")) => waba_phones(engine, &app, &waba),
            ("GET", None) => {
                engine.waba_for(&app, &waba)?;
                Ok(json!({ "id": waba.as_str(), "name": "wa-emulator" }))
            }
            (_, Some(e @ ("message_templates" | "phone_numbers"))) => {
                Err(unsupported_method(method, id, Some(e)))
            }
            (_, Some(e)) => Err(unknown_path(id, e)),
            (_, None) => Err(unsupported_method(method, id, None)),
        };
    }
    if engine.is_template(id) {
        let fields: Vec<&str> = req
            .query("fields")
            .map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        return match (method, edge) {
            ("GET", None) => engine.get_template(&app, &TemplateId::from(id), &fields),
            (_, Some(e)) => Err(unknown_path(id, e)),
            (_, None) => Err(unsupported_method(method, id, None)),
        };
    }
    Err(unknown_object(id))
}

fn known_edge(e: &str) -> bool {
    matches!(e, "messages" | "calls" | "call_permissions" | "settings")
}

fn mask(token: &str) -> String {
    let shown: String = token.chars().take(4).collect();
    format!("\"{shown}…\" ({} characters)", token.chars().count())
}

fn unknown_path(id: &str, edge: &str) -> ApiError {
    ApiError::new(
        ErrorKind::UnknownPath,
        format!("Object {id} has no edge /{edge}."),
    )
    .with_message(format!("Unknown path components: /{edge}"))
}

fn unsupported_method(method: &str, id: &str, edge: Option<&str>) -> ApiError {
    let what = edge.map(|e| format!("/{e}")).unwrap_or_default();
    ApiError::new(ErrorKind::UnknownObject, format!("{method} is not supported on {id}{what}."))
        .with_subcode(33)
        .with_message(format!(
            "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
            method.to_ascii_lowercase()
        ))
}

fn phone_json(engine: &Engine, app: &AppId, id: &PhoneNumberId) -> ApiResult<Value> {
    let p = engine.phone_for(app, id)?;
    Ok(json!({
        "verified_name": p.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": p.display_phone_number,
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": { "level": "STANDARD" },
        "id": p.id.as_str(),
    }))
}

fn waba_phones(engine: &Engine, app: &AppId, waba: &WabaId) -> ApiResult<Value> {
    engine.waba_for(app, waba)?;
    let ids: Vec<PhoneNumberId> = engine
        .st
        .tenants
        .phone_numbers
        .iter()
        .filter(|p| &p.waba_id == waba)
        .map(|p| p.id.clone())
        .collect();
    let data: ApiResult<Vec<Value>> = ids.iter().map(|id| phone_json(engine, app, id)).collect();
    Ok(json!({ "data": data?, "paging": { "cursors": { "before": "QVFI", "after": "QVFI" } } }))
}

#[cfg(test)]
mod tests {
    use crate::api::Request;
    use crate::domain::tenant::{Behaviour, Tenants};
    use crate::engine::{ClockMode, Engine};

    #[test]
    fn paths_without_an_object_or_with_too_many_segments_are_refused_by_name() {
        let mut e = Engine::new(
            Tenants::default(),
            Behaviour::default(),
            1,
            ClockMode::Virtual,
            1_700_000_000_000,
        );
        let phone = e.st.tenants.phone_numbers[0].id.as_str().to_owned();
        let auth = || {
            vec![(
                "authorization".to_owned(),
                "Bearer wa-emulator-token".to_owned(),
            )]
        };
        // The whole answer: the detail is in the error's data, not its message.
        let mut answer = |path: &str| {
            let r = super::handle(&mut e, &Request::new("GET", path, auth(), ""));
            String::from_utf8_lossy(&r.body).into_owned()
        };
        for path in ["/v21.0", "/v21.0/", "/", "//"] {
            let m = answer(path);
            assert!(m.contains("names no object"), "{path}: {m}");
        }
        for (path, edge) in [
            (format!("/v21.0/{phone}/messages/x"), "messages/x"),
            (format!("/{phone}//a/b/c/"), "a/b/c"),
            (format!("/v21.0/{phone}/messages"), ""),
        ] {
            let m = answer(&path);
            match edge {
                "" => assert!(!m.contains("has no edge"), "{path}: {m}"),
                _ => assert!(m.contains(&format!("has no edge /{edge}.")), "{path}: {m}"),
            }
        }
    }

    #[test]
    fn version_prefixes() {
        for v in ["v17.0", "v21.0", "v26.0", "v9", "v100.12"] {
            assert!(super::path_version(v).is_some(), "{v}");
        }
        for v in ["v", "21.0", "vX.0", "v21.", "106540352242922"] {
            assert!(super::path_version(v).is_none(), "{v}");
        }
    }
}
