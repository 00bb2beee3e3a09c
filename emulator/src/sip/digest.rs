//! HTTP Digest authentication for SIP (RFC 2617 as used by RFC 3261 §22.4): reading a
//! `WWW-Authenticate` / `Proxy-Authenticate` challenge and answering it with MD5 (the
//! user-initiated side), and checking a business's answer to the gateway's 407
//! ([`parse_credentials`], [`verify`]).

use md5::{Digest as _, Md5};

/// A Digest challenge from a 401/407.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// As sent (`MD5`, `MD5-sess`, …); `None` means MD5.
    pub algorithm: Option<String>,
    /// The offered qop values (`auth`, `auth-int`); empty for the RFC 2069 form.
    pub qop: Vec<String>,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestError {
    UnsupportedAlgorithm(String),
    UnsupportedQop(Vec<String>),
}

impl std::fmt::Display for DigestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DigestError::UnsupportedAlgorithm(a) => write!(f, "unsupported digest algorithm {a}"),
            DigestError::UnsupportedQop(q) => write!(f, "unsupported qop {}", q.join(",")),
        }
    }
}

/// What the client contributes to a response besides the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNonce {
    pub cnonce: String,
    pub nc: u32,
}

/// Parses `Digest realm="…", nonce="…", …`. `None` for other schemes or without the
/// mandatory realm and nonce.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace)?);
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let params = parse_params(rest);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge {
        realm: get("realm")?,
        nonce: get("nonce")?,
        opaque: get("opaque"),
        algorithm: get("algorithm"),
        qop: get("qop")
            .map(|q| {
                q.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `name=value` pairs separated by commas; values are tokens or quoted strings (with
/// backslash escapes). Tolerates stray whitespace and empty items.
fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            if chars.next().is_none() {
                return out;
            }
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        _ => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((name, value));
    }
}

fn md5_hex(data: &str) -> String {
    hex::encode(Md5::digest(data.as_bytes()))
}

/// The qop the client will use: `auth` when offered, else `auth-int`, else none.
fn chosen_qop(ch: &Challenge) -> Result<Option<&'static str>, DigestError> {
    if ch.qop.is_empty() {
        Ok(None)
    } else if ch.qop.iter().any(|q| q == "auth") {
        Ok(Some("auth"))
    } else if ch.qop.iter().any(|q| q == "auth-int") {
        Ok(Some("auth-int"))
    } else {
        Err(DigestError::UnsupportedQop(ch.qop.clone()))
    }
}

/// The `response` value (lowercase hex) of RFC 2617 §3.2.2.1.
#[allow(clippy::too_many_arguments)]
pub fn response_hash(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    body: &str,
    client: &ClientNonce,
) -> Result<String, DigestError> {
    let algorithm = ch.algorithm.as_deref().unwrap_or("MD5");
    let sess = if algorithm.eq_ignore_ascii_case("MD5") {
        false
    } else if algorithm.eq_ignore_ascii_case("MD5-sess") {
        true
    } else {
        return Err(DigestError::UnsupportedAlgorithm(algorithm.to_owned()));
    };
    let qop = chosen_qop(ch)?;
    let mut ha1 = md5_hex(&format!("{username}:{}:{password}", ch.realm));
    if sess {
        ha1 = md5_hex(&format!("{ha1}:{}:{}", ch.nonce, client.cnonce));
    }
    let ha2 = match qop {
        Some("auth-int") => md5_hex(&format!("{method}:{uri}:{}", md5_hex(body))),
        _ => md5_hex(&format!("{method}:{uri}")),
    };
    Ok(match qop {
        Some(qop) => md5_hex(&format!(
            "{ha1}:{}:{:08x}:{}:{qop}:{ha2}",
            ch.nonce, client.nc, client.cnonce
        )),
        None => md5_hex(&format!("{ha1}:{}:{ha2}", ch.nonce)),
    })
}

/// The `Authorization` / `Proxy-Authorization` header value answering `ch`.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    body: &str,
    client: &ClientNonce,
) -> Result<String, DigestError> {
    let response = response_hash(ch, username, password, method, uri, body, client)?;
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
        quote(username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(uri)
    );
    if let Some(algorithm) = &ch.algorithm {
        out.push_str(&format!(", algorithm={algorithm}"));
    }
    if let Some(qop) = chosen_qop(ch)? {
        out.push_str(&format!(
            ", cnonce=\"{}\", qop={qop}, nc={:08x}",
            quote(&client.cnonce),
            client.nc
        ));
    }
    if let Some(opaque) = &ch.opaque {
        out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    Ok(out)
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The credentials a client sent in `Authorization` / `Proxy-Authorization`: what the
/// emulator's gateway checks when a business answers its 407.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    /// The nonce count as sent (8 hex digits).
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

/// Parses `Digest username="…", realm="…", …`. `None` for other schemes or without the
/// fields every answer needs (username, realm, nonce, uri, response).
pub fn parse_credentials(value: &str) -> Option<Credentials> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace)?);
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let params = parse_params(rest);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    Some(Credentials {
        username: get("username")?,
        realm: get("realm")?,
        nonce: get("nonce")?,
        uri: get("uri")?,
        response: get("response")?,
        algorithm: get("algorithm"),
        cnonce: get("cnonce"),
        qop: get("qop"),
        nc: get("nc"),
        opaque: get("opaque"),
    })
}

/// Whether `creds` answer a challenge for `method` (with this `body`, for auth-int) with
/// `password`: the server side of [`response_hash`].
pub fn verify(creds: &Credentials, password: &str, method: &str, body: &str) -> bool {
    let nc = match &creds.nc {
        Some(nc) => match u32::from_str_radix(nc, 16) {
            Ok(n) => n,
            Err(_) => return false,
        },
        None => 0,
    };
    // A qop answer needs a client nonce; without qop (RFC 2069) there is none.
    if creds.qop.is_some() && creds.cnonce.is_none() {
        return false;
    }
    let challenge = Challenge {
        realm: creds.realm.clone(),
        nonce: creds.nonce.clone(),
        opaque: creds.opaque.clone(),
        algorithm: creds.algorithm.clone(),
        qop: creds.qop.iter().map(|q| q.to_ascii_lowercase()).collect(),
    };
    let client = ClientNonce {
        cnonce: creds.cnonce.clone().unwrap_or_default(),
        nc,
    };
    response_hash(
        &challenge,
        &creds.username,
        password,
        method,
        &creds.uri,
        body,
        &client,
    )
    .is_ok_and(|expected| expected.eq_ignore_ascii_case(creds.response.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params_of(header: &str) -> Vec<(String, String)> {
        let rest = header.trim_start().strip_prefix("Digest").unwrap();
        parse_params(rest)
    }

    #[test]
    fn parses_metas_proxy_challenge() {
        let ch = parse_challenge(
            "Digest realm=\"wa.meta.vc\",nonce=\"419ac2415577f8e1\",opaque=\"440badfc05072367\",algorithm=MD5,qop=\"auth\"",
        )
        .unwrap();
        assert_eq!(ch.realm, "wa.meta.vc");
        assert_eq!(ch.nonce, "419ac2415577f8e1");
        assert_eq!(ch.opaque.as_deref(), Some("440badfc05072367"));
        assert_eq!(ch.algorithm.as_deref(), Some("MD5"));
        assert_eq!(ch.qop, vec!["auth"]);
    }

    #[test]
    fn parses_spaced_and_escaped_params() {
        let ch = parse_challenge(
            "digest  realm = \"a \\\"b\\\" c\" ,, nonce=abc , qop=\"auth-int, auth\" , stale=FALSE",
        )
        .unwrap();
        assert_eq!(ch.realm, "a \"b\" c");
        assert_eq!(ch.nonce, "abc");
        assert_eq!(ch.qop, vec!["auth-int", "auth"]);
        assert_eq!(ch.opaque, None);
    }

    #[test]
    fn other_schemes_and_incomplete_challenges_are_not_answered() {
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
        assert_eq!(parse_challenge("Digest nonce=\"x\""), None);
        assert_eq!(parse_challenge("Digest"), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 (computed for the HTTP method GET).
        let ch = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: None,
            qop: vec!["auth".into(), "auth-int".into()],
        };
        let client = ClientNonce {
            cnonce: "0a4f113b".into(),
            nc: 1,
        };
        let resp = response_hash(
            &ch,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "",
            &client,
        )
        .unwrap();
        assert_eq!(resp, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_md5_example_response() {
        let ch = Challenge {
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: None,
            algorithm: Some("MD5".into()),
            qop: vec!["auth".into()],
        };
        let client = ClientNonce {
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into(),
            nc: 1,
        };
        let resp = response_hash(
            &ch,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "",
            &client,
        )
        .unwrap();
        assert_eq!(resp, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn without_qop_the_response_omits_cnonce_and_nc() {
        let ch = parse_challenge("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let client = ClientNonce {
            cnonce: "c".into(),
            nc: 1,
        };
        let header = authorization(&ch, "u", "p", "INVITE", "sip:x@y", "", &client).unwrap();
        // RFC 2069: MD5(HA1:nonce:HA2).
        let ha1 = md5_hex("u:r:p");
        let ha2 = md5_hex("INVITE:sip:x@y");
        let expected = md5_hex(&format!("{ha1}:n:{ha2}"));
        assert!(
            header.contains(&format!("response=\"{expected}\"")),
            "{header}"
        );
        assert!(!header.contains("cnonce"));
        assert!(!header.contains("nc="));
    }

    #[test]
    fn authorization_header_carries_everything_the_server_checks() {
        let ch = parse_challenge(
            "Digest realm=\"wa.meta.vc\", nonce=\"419ac2415577f8e1\", opaque=\"440badfc05072367\", algorithm=MD5, qop=\"auth\"",
        )
        .unwrap();
        let client = ClientNonce {
            cnonce: "abcdef".into(),
            nc: 1,
        };
        let uri = "sip:+15550783881@pbx.example.com:5060";
        let header =
            authorization(&ch, "15550783881", "s3cret", "INVITE", uri, "", &client).unwrap();
        let params = params_of(&header);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("username"), Some("15550783881"));
        assert_eq!(get("realm"), Some("wa.meta.vc"));
        assert_eq!(get("uri"), Some(uri));
        assert_eq!(get("qop"), Some("auth"));
        assert_eq!(get("nc"), Some("00000001"));
        assert_eq!(get("cnonce"), Some("abcdef"));
        assert_eq!(get("opaque"), Some("440badfc05072367"));
        assert_eq!(get("algorithm"), Some("MD5"));
        let expected =
            response_hash(&ch, "15550783881", "s3cret", "INVITE", uri, "", &client).unwrap();
        assert_eq!(get("response"), Some(expected.as_str()));
        // A wrong password gives a different response.
        let wrong = response_hash(&ch, "15550783881", "other", "INVITE", uri, "", &client).unwrap();
        assert_ne!(wrong, expected);
    }

    #[test]
    fn md5_sess_and_auth_int_follow_rfc2617() {
        let ch = parse_challenge(
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess, qop=\"auth-int\"",
        )
        .unwrap();
        let client = ClientNonce {
            cnonce: "c".into(),
            nc: 2,
        };
        let got = response_hash(&ch, "u", "p", "INVITE", "sip:a", "v=0\r\n", &client).unwrap();
        let ha1 = md5_hex(&format!("{}:n:c", md5_hex("u:r:p")));
        let ha2 = md5_hex(&format!("INVITE:sip:a:{}", md5_hex("v=0\r\n")));
        let expected = md5_hex(&format!("{ha1}:n:00000002:c:auth-int:{ha2}"));
        assert_eq!(got, expected);
    }

    #[test]
    fn unsupported_algorithms_and_qops_are_errors() {
        let sha = parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256").unwrap();
        let client = ClientNonce {
            cnonce: "c".into(),
            nc: 1,
        };
        assert_eq!(
            authorization(&sha, "u", "p", "INVITE", "sip:a", "", &client),
            Err(DigestError::UnsupportedAlgorithm("SHA-256".into()))
        );
        let qop = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"weird\"").unwrap();
        assert!(matches!(
            authorization(&qop, "u", "p", "INVITE", "sip:a", "", &client),
            Err(DigestError::UnsupportedQop(_))
        ));
    }

    #[test]
    fn the_server_verifies_what_the_client_answers() {
        let ch = parse_challenge(
            "Digest realm=\"wa.meta.vc\",nonce=\"419ac2415577f8e1\",opaque=\"440badfc05072367\",algorithm=MD5,qop=\"auth\"",
        )
        .unwrap();
        let client = ClientNonce {
            cnonce: "0a4f113b".into(),
            nc: 1,
        };
        let uri = "sip:+447700900123@127.0.0.1:5060;transport=tcp";
        let header =
            authorization(&ch, "447700900461", "s3cret", "INVITE", uri, "", &client).unwrap();
        let creds = parse_credentials(&header).unwrap();
        assert_eq!(creds.username, "447700900461");
        assert_eq!(creds.nonce, "419ac2415577f8e1");
        assert_eq!(creds.opaque.as_deref(), Some("440badfc05072367"));
        assert!(verify(&creds, "s3cret", "INVITE", ""));
        assert!(!verify(&creds, "S3cret", "INVITE", ""));
        assert!(!verify(&creds, "s3cret", "BYE", ""));
        // Any tampered field breaks the response.
        for tamper in [
            |c: &mut Credentials| c.uri.push('x'),
            |c: &mut Credentials| c.nonce.push('x'),
            |c: &mut Credentials| c.username.push('1'),
            |c: &mut Credentials| c.nc = Some("00000002".into()),
            |c: &mut Credentials| c.nc = Some("zz".into()),
            |c: &mut Credentials| c.cnonce = None,
            |c: &mut Credentials| c.algorithm = Some("SHA-256".into()),
        ] {
            let mut bad = creds.clone();
            tamper(&mut bad);
            assert!(!verify(&bad, "s3cret", "INVITE", ""), "{bad:?}");
        }
        // The RFC 2069 form (no qop) verifies too.
        let plain = parse_challenge("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let header = authorization(&plain, "u", "p", "INVITE", "sip:a", "", &client).unwrap();
        assert!(verify(
            &parse_credentials(&header).unwrap(),
            "p",
            "INVITE",
            ""
        ));
    }

    #[test]
    fn credentials_need_their_mandatory_fields() {
        assert_eq!(parse_credentials("Basic dXNlcjpwYXNz"), None);
        assert_eq!(
            parse_credentials("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:a\""),
            None
        );
        assert!(
            parse_credentials("digest username=u,realm=r,nonce=n,uri=\"sip:a\",response=abc")
                .is_some()
        );
    }

    proptest! {
        #[test]
        fn quoted_values_survive_a_round_trip(realm in "[ -~]{0,30}", nonce in "[ -~]{1,30}") {
            let ch = Challenge { realm, nonce, opaque: None, algorithm: None, qop: vec![] };
            let header = format!("Digest realm=\"{}\", nonce=\"{}\"", quote(&ch.realm), quote(&ch.nonce));
            prop_assert_eq!(parse_challenge(&header), Some(ch));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = parse_challenge(&text);
            let _ = parse_credentials(&format!("Digest {text}"));
            let _ = parse_challenge(&format!("Digest {text}"));
        }
    }
}
