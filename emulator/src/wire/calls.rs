//! `POST /{phone-number-id}/calls` bodies → call actions, with SDP checks
//! ([`crate::domain::sdp`]) that catch integration bugs early.

use super::json::{self, invalid, missing, quote_bounded, Obj};
use super::messages::{self, Recipient};
use crate::domain::error::{ApiError, ApiResult, ErrorKind};
use crate::domain::ids::{CallId, WaId};
use crate::domain::sdp::{self, SdpProblem};
use serde_json::{Map, Value};

pub const MAX_OPAQUE: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    Connect {
        /// Whom the request names: `to` (wins) or a BSUID `recipient`.
        recipient: Recipient,
        /// The user it reaches.
        to: WaId,
        sdp: String,
        biz_opaque_callback_data: Option<String>,
    },
    PreAccept {
        call_id: CallId,
        sdp: String,
    },
    Accept {
        call_id: CallId,
        sdp: String,
        biz_opaque_callback_data: Option<String>,
    },
    Reject {
        call_id: CallId,
    },
    Terminate {
        call_id: CallId,
    },
}

/// `resolve` turns a `connect`'s recipient into the user it reaches, as for `/messages`.
pub fn parse(
    body: &Map<String, Value>,
    require_fingerprint: bool,
    resolve: impl FnOnce(&Recipient) -> ApiResult<WaId>,
) -> ApiResult<CallAction> {
    let root = Obj::new("", body);
    json::require_whatsapp(&root)?;
    let action = root
        .enum_opt(
            "action",
            &["connect", "pre_accept", "accept", "reject", "terminate"],
            false,
        )?
        .ok_or_else(|| missing("action"))?;
    let opaque = root
        .text_opt("biz_opaque_callback_data", MAX_OPAQUE)?
        .map(str::to_owned);
    let call_id = || -> ApiResult<CallId> { Ok(CallId(root.str_req("call_id")?.to_owned())) };
    Ok(match action {
        "connect" => {
            let recipient = messages::recipient(&root)?;
            let to = resolve(&recipient)?;
            CallAction::Connect {
                recipient,
                to,
                sdp: session(&root, "offer", require_fingerprint)?,
                biz_opaque_callback_data: opaque,
            }
        }
        "pre_accept" => CallAction::PreAccept {
            call_id: call_id()?,
            sdp: session(&root, "answer", require_fingerprint)?,
        },
        "accept" => CallAction::Accept {
            call_id: call_id()?,
            sdp: session(&root, "answer", require_fingerprint)?,
            biz_opaque_callback_data: opaque,
        },
        "reject" => CallAction::Reject {
            call_id: call_id()?,
        },
        _ => CallAction::Terminate {
            call_id: call_id()?,
        },
    })
}

/// The `session` object (or the legacy `connection.webrtc.sdp` JSON string).
fn session(root: &Obj<'_>, expected_type: &str, require_fingerprint: bool) -> ApiResult<String> {
    if let Some(sess) = root.obj_opt("session")? {
        let s = Obj::new("session", sess);
        let ty = s.str_req("sdp_type")?;
        if ty != expected_type {
            return Err(invalid(
                "session.sdp_type",
                &format!("must be \"{expected_type}\" for this action"),
                quote_bounded(ty),
            ));
        }
        let sdp = s.str_req("sdp")?;
        check_sdp("session.sdp", sdp, require_fingerprint)?;
        return Ok(sdp.to_owned());
    }
    if let Some(conn) = root.obj_opt("connection")? {
        let webrtc = Obj::new(
            "connection.webrtc",
            Obj::new("connection", conn).obj_req("webrtc")?,
        );
        let raw = webrtc.str_req("sdp")?;
        let inner: Value = serde_json::from_str(raw).map_err(|e| {
            invalid(
                "connection.webrtc.sdp",
                "must be a JSON string {\"sdp\":…,\"type\":…}",
                e,
            )
        })?;
        let sdp = inner
            .get("sdp")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("connection.webrtc.sdp.sdp"))?;
        check_sdp("connection.webrtc.sdp", sdp, require_fingerprint)?;
        return Ok(sdp.to_owned());
    }
    Err(missing("session"))
}

/// The SDP checks of [`sdp::check`] as a Graph error naming the field.
pub fn check_sdp(path: &str, sdp: &str, require_fingerprint: bool) -> ApiResult<()> {
    let why = match sdp::check(sdp, require_fingerprint) {
        Ok(()) => return Ok(()),
        Err(SdpProblem::TooLong(n)) => format!("it is {n} bytes long, more than 64 KiB"),
        Err(SdpProblem::NoVersionLine(first)) => format!(
            "it must start with the line v=0, but starts with {}",
            quote_bounded(&first)
        ),
        Err(SdpProblem::NoAudioSection) => {
            "it has no m=audio line (WhatsApp calls need one audio section)".to_owned()
        }
        Err(SdpProblem::NoFingerprint) => "No fingerprint found in SDP (DTLS needs an a=fingerprint line; set srtp_key_exchange_protocol to SDES to go without)".to_owned(),
    };
    Err(ApiError::new(
        ErrorKind::InvalidParameter,
        format!("{path} is not a valid SDP: {why}."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\na=setup:active\r\n";

    /// From the UK number; BSUIDs are not resolved here.
    fn p(v: Value) -> ApiResult<CallAction> {
        parse(v.as_object().unwrap(), true, |r| match r {
            Recipient::Phone {
                digits,
                international,
                ..
            } => messages::wa_id_for_to(digits, *international, "447700900461", false),
            Recipient::Bsuid(b) => Ok(WaId(format!("bsuid:{b}"))),
        })
    }

    #[test]
    fn connect_takes_to_or_a_bsuid_recipient() {
        let connect = |extra: Value| {
            let mut v = json!({"messaging_product":"whatsapp","action":"connect","session":{"sdp_type":"offer","sdp":SDP}});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            p(v)
        };
        let to = |a: CallAction| match a {
            CallAction::Connect { to, recipient, .. } => (to.0, recipient.is_bsuid()),
            other => panic!("{other:?}"),
        };
        // Without +, the UK number's +44 is prepended: Meta's mis-delivery.
        assert_eq!(
            to(connect(json!({"to":"16315551234"})).unwrap()),
            ("4416315551234".into(), false)
        );
        assert_eq!(
            to(connect(json!({"to":"+16315551234"})).unwrap()),
            ("16315551234".into(), false)
        );
        assert_eq!(
            to(connect(json!({"recipient":"US.13491208655302741918"})).unwrap()),
            ("bsuid:US.13491208655302741918".into(), true)
        );
        assert_eq!(
            to(connect(json!({"to":"+16315551234","recipient":"US.1"})).unwrap()),
            ("16315551234".into(), false)
        );
        assert_eq!(
            connect(json!({"recipient":"nope"})).unwrap_err().code(),
            131009
        );
        assert_eq!(connect(json!({})).unwrap_err().code(), 131008);
    }

    #[test]
    fn actions_parse() {
        let a = p(
            json!({"messaging_product":"whatsapp","to":"16315551234","action":"connect",
            "session":{"sdp_type":"offer","sdp":SDP},"biz_opaque_callback_data":"x"}),
        )
        .unwrap();
        assert!(
            matches!(a, CallAction::Connect { ref biz_opaque_callback_data, .. } if biz_opaque_callback_data.as_deref() == Some("x"))
        );
        let a = p(json!({"messaging_product":"whatsapp","call_id":"wacid.1","action":"terminate"}))
            .unwrap();
        assert_eq!(
            a,
            CallAction::Terminate {
                call_id: CallId::from("wacid.1")
            }
        );
    }

    #[test]
    fn sdp_problems_are_explained() {
        let sess = |t: &str, sdp: &str| {
            p(
                json!({"messaging_product":"whatsapp","call_id":"wacid.1","action":"accept","session":{"sdp_type":t,"sdp":sdp}}),
            )
        };
        assert!(sess("answer", SDP).is_ok());
        assert!(sess("offer", SDP)
            .unwrap_err()
            .details
            .contains("must be \"answer\""));
        assert!(sess("answer", "o=x\r\nm=audio 1 RTP 0")
            .unwrap_err()
            .details
            .contains("must start with the line v=0"));
        assert!(sess("answer", "v=0\r\nm=video 1 RTP 0")
            .unwrap_err()
            .details
            .contains("no m=audio line"));
        assert!(sess("answer", "v=0\r\nm=audio 1 RTP 0")
            .unwrap_err()
            .details
            .contains("No fingerprint found in SDP"));
        assert!(check_sdp("s", "v=0\r\nm=audio 1 RTP 0", false).is_ok());
    }

    #[test]
    fn opaque_data_is_limited_to_512() {
        let with = |n: usize| {
            p(
                json!({"messaging_product":"whatsapp","to":"16315551234","action":"connect",
            "session":{"sdp_type":"offer","sdp":SDP},"biz_opaque_callback_data":"x".repeat(n)}),
            )
        };
        assert!(with(512).is_ok());
        assert_eq!(with(513).unwrap_err().code(), 131009);
    }
}
