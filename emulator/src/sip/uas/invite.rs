//! Reading a business's INVITE: the called user from the Request-URI, the calling
//! business and its SIP domain from From.

use super::super::message::{uri_of, SipMessage, StartLine};
use crate::domain::sip::{IncomingInvite, SipRefusal, SipTransport};

/// The INVITE as the engine judges it, or why it names no user (404) or no business
/// number (400).
pub(super) fn incoming_invite(
    req: &SipMessage,
    transport: SipTransport,
) -> Result<IncomingInvite, SipRefusal> {
    let uri = request_uri(req).unwrap_or_default();
    let user_number = digits_of(uri_user(uri)).ok_or_else(|| SipRefusal::new(404, "Not Found"))?;
    let from = uri_of(req.header("from").unwrap_or_default());
    let business_number = digits_of(uri_user(from)).ok_or_else(SipRefusal::unknown_number)?;
    Ok(IncomingInvite {
        business_number,
        user_number,
        from_host: host_without_port(uri_host(from)).to_ascii_lowercase(),
        transport,
        sdp_offer: req.body.clone(),
    })
}

pub(super) fn request_uri(req: &SipMessage) -> Option<&str> {
    match &req.start {
        StartLine::Request { uri, .. } => Some(uri),
        StartLine::Response { .. } => None,
    }
}

/// The user part of a SIP URI without its parameters: `sip:+1555;x=y@h` → `+1555`.
fn uri_user(uri: &str) -> &str {
    match without_scheme(uri).split_once('@') {
        Some((user, _)) => user.split(';').next().unwrap_or(""),
        None => "",
    }
}

/// The `host[:port]` of a SIP URI: `sip:+1555@h:5060;transport=tcp` → `h:5060`.
pub(super) fn uri_host(uri: &str) -> &str {
    let rest = without_scheme(uri);
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    host.split([';', '?']).next().unwrap_or("")
}

fn without_scheme(uri: &str) -> &str {
    uri.strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .unwrap_or(uri)
}

/// `h:5060` → `h`, `[::1]:5060` → `::1`; an unbracketed IPv6 address stays whole.
fn host_without_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => host_port,
    }
}

/// `+4477…` or `4477…` → `4477…`; `None` unless digits.
fn digits_of(user: &str) -> Option<String> {
    let digits = user.strip_prefix('+').unwrap_or(user);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_of_sip_uris() {
        assert_eq!(uri_user("sip:+447700900123;tgrp=x@h:5060"), "+447700900123");
        assert_eq!(uri_user("sips:1555@h"), "1555");
        assert_eq!(uri_user("sip:h"), "");
        assert_eq!(
            uri_host("sip:+1555@pbx.test:5061;transport=tls"),
            "pbx.test:5061"
        );
        assert_eq!(uri_host("sip:+1555@[::1]:5060?x=y"), "[::1]:5060");
        for (host_port, host) in [
            ("pbx.test:5061", "pbx.test"),
            ("pbx.test", "pbx.test"),
            ("[::1]:5060", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("10.0.0.9:5070", "10.0.0.9"),
        ] {
            assert_eq!(host_without_port(host_port), host, "{host_port}");
        }
        assert_eq!(digits_of("+447700900123").as_deref(), Some("447700900123"));
        assert_eq!(digits_of("pbx"), None);
        assert_eq!(digits_of("+"), None);
    }

    #[test]
    fn the_from_host_is_the_business_domain_without_port_or_case() {
        let invite = SipMessage::request("INVITE", "sip:+16315551234@127.0.0.1:5060").with(
            "From",
            "\"Shop\" <sip:+447700900461@PBX.Example.com:5061;transport=tls>;tag=a",
        );
        let read = incoming_invite(&invite, SipTransport::Tls).unwrap();
        assert_eq!(read.from_host, "pbx.example.com");
        assert_eq!(read.business_number, "447700900461");
        assert_eq!(read.user_number, "16315551234");
    }
}
