//! TLS, the one place rustls is configured: what the emulator trusts when it connects
//! (https webhook receivers, SIP over TLS), the certificate it shows when it listens, and
//! TLS failures worded for people.
//!
//! - [`Trust`] → a [`rustls::ClientConfig`]: the system's roots plus the certificates of
//!   a CA file (`--webhook-ca`, `--sip-ca`), or, opted into loudly, any certificate. No
//!   client certificate is ever offered (Meta offers none, cloud-api §8.2).
//! - [`ServerIdentity`] → a [`rustls::ServerConfig`]: a certificate and key loaded from
//!   PEM files, or generated at start-up with a CA of its own whose PEM users can trust;
//!   [`Ca`] also makes the tests' CAs, expired and wrong-name certificates.
//! - [`describe`]: "unknown CA", "name mismatch", "certificate expired" … out of an error
//!   chain, for the delivery log, the GET handshake, the inspector and SIP.
//!
//! The ring provider only: aws-lc-rs needs cmake to build, and users need no OpenSSL.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The crypto of every TLS config the emulator makes.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which server certificates a TLS client of the emulator accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// PEM certificates trusted besides the system's roots: the CA of a local setup, or a
    /// self-signed certificate itself.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (no chain, name or date check).
    pub insecure: bool,
}

impl Trust {
    /// Reads the CA file, so a wrong path or a file without certificates is reported at
    /// start-up rather than at the first connection.
    pub fn check(&self) -> Result<(), String> {
        self.ca_certs().map(|_| ())
    }

    /// The client config of this trust. `peers` names what it connects to ("webhook
    /// receivers", "SIP servers") in the warning an insecure trust logs: call it once, at
    /// start-up.
    pub fn client_config(&self, peers: &str) -> Result<Arc<ClientConfig>, String> {
        if *self == Trust::default() {
            // The system's roots alone: the same config for every emulator of the
            // process, built once (a build copies every root and makes a verifier).
            static SYSTEM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
            if system_roots().roots.is_empty() {
                warn_no_root(peers);
            }
            return SYSTEM.get_or_init(|| self.build_client_config()).clone();
        }
        if self.insecure {
            tracing::warn!(
                "TLS certificates of {peers} are NOT checked (insecure trust): any \
                 certificate is accepted, whoever presents it; use a CA file instead"
            );
        }
        self.build_client_config()
    }

    fn build_client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .dangerous();
        let verifier: Arc<dyn ServerCertVerifier> = if self.insecure {
            Arc::new(AnyCertificate(provider))
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(system_roots().roots.iter().cloned());
            for cert in self.ca_certs()? {
                let file = self.ca_file.as_deref().unwrap_or(Path::new("?"));
                roots.add(cert).map_err(|e| {
                    format!(
                        "CA file {}: a certificate cannot be a trust anchor: {e}",
                        file.display()
                    )
                })?;
            }
            Arc::new(NamesSelfSigned::new(roots, provider)?)
        };
        Ok(Arc::new(
            builder
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ))
    }

    /// The trust in words, for the serve banner: "the system's 140 roots and 1
    /// certificate from ca.pem", "ANY certificate (insecure)".
    pub fn summary(&self) -> String {
        if self.insecure {
            return "ANY certificate (insecure: not checked)".into();
        }
        let system = system_roots().roots.len();
        let mut text = format!("the system's {system} root{}", plural(system));
        if let Some(file) = &self.ca_file {
            let n = self.ca_certs().map(|c| c.len()).unwrap_or(0);
            text.push_str(&format!(
                " and {n} certificate{} from {}",
                plural(n),
                file.display()
            ));
        }
        text
    }

    fn ca_certs(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        match &self.ca_file {
            None => Ok(Vec::new()),
            Some(file) => read_certs(file),
        }
    }
}

/// A trust with no root at all (no system CA certificates, no CA file).
fn warn_no_root(peers: &str) {
    tracing::warn!(
        "no trusted root for {peers}: the system has no CA certificates \
         and no CA file is given, so every TLS connection will fail"
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Every PEM certificate of `file`; an error when it cannot be read or holds none.
fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not valid PEM: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "no PEM certificate in {} (expected one or more -----BEGIN CERTIFICATE----- blocks)",
            file.display()
        ));
    }
    Ok(certs)
}

struct SystemRoots {
    roots: Vec<rustls::pki_types::TrustAnchor<'static>>,
}

/// The system's CA certificates, read once per process (a few hundred files). A system
/// without any (a `FROM scratch` container) has none, which only a CA file then helps.
fn system_roots() -> &'static SystemRoots {
    static ROOTS: OnceLock<SystemRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in found.errors.iter().take(3) {
            tracing::debug!("reading the system's CA certificates: {e}");
        }
        let mut store = RootCertStore::empty();
        let (_, ignored) = store.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::debug!("{ignored} system CA certificates could not be used");
        }
        SystemRoots { roots: store.roots }
    })
}

/// The webpki verifier, except that a certificate that signed itself is reported as
/// [`SelfSigned`] instead of the bare "unknown issuer".
///
/// With no root at all (a container FROM scratch, no CA file) webpki refuses to build a
/// verifier; the emulator must still start and serve plain http, so every certificate
/// is then refused as of an unknown CA, at the connection that needs it.
#[derive(Debug)]
struct NamesSelfSigned {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NamesSelfSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        match result {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty() && self.signed_itself(end_entity, server_name, now) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SelfSigned)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl NamesSelfSigned {
    fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let inner = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("TLS set-up: {e}"))?,
            )
        };
        Ok(NamesSelfSigned { inner, provider })
    }

    /// Whether the certificate would chain if it were its own root: then it signed itself.
    fn signed_itself(
        &self,
        cert: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let mut roots = RootCertStore::empty();
        if roots.add(cert.clone().into_owned()).is_err() {
            return false;
        }
        let Ok(alone) =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
        else {
            return false;
        };
        !matches!(
            alone.verify_server_cert(cert, &[], name, &[], now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        )
    }
}

/// The reason [`NamesSelfSigned`] gives for a self-signed certificate.
#[derive(Debug)]
struct SelfSigned;

impl fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("self-signed certificate")
    }
}

impl StdError for SelfSigned {}

/// The insecure trust: every certificate passes; the handshake's signatures are still
/// checked, so the connection is at least with the holder of the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS reason in an error chain, worded for people, with the hint of
/// `--webhook-ca`; `None` when the failure was not TLS's. See [`describe_for`].
pub fn describe(e: &(dyn StdError + 'static)) -> Option<String> {
    describe_for(e, "--webhook-ca")
}

/// The TLS reason in an error chain (rustls' error, also inside the `io::Error`s that
/// tokio-rustls and hyper wrap it in), worded for people; `ca_flag` is the flag that
/// makes a CA trusted (`--webhook-ca`, `--sip-ca`), named in the hint of an unknown CA.
pub fn describe_for(e: &(dyn StdError + 'static), ca_flag: &str) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(name(r, ca_flag));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // io::Error's source() skips the error it wraps: look at it directly.
            if let Some(inner) = io.get_ref() {
                if let Some(found) = describe_for(inner, ca_flag) {
                    return Some(found);
                }
            }
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                && io.to_string().contains("tls handshake eof")
            {
                return Some("the server closed the connection during the TLS handshake".into());
            }
        }
        cur = err.source();
    }
    None
}

fn name(e: &rustls::Error, ca_flag: &str) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => certificate(c, ca_flag),
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server does not speak TLS (plain http or TCP on this port?)".into()
        }
        E::InvalidMessage(m) => format!("TLS protocol failure: corrupt message ({m:?})"),
        E::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            "the server wants a client certificate (none is offered)".into()
        }
        E::AlertReceived(rustls::AlertDescription::ProtocolVersion) => {
            "no TLS version in common (TLS 1.2 and 1.3 are offered)".into()
        }
        E::AlertReceived(a) => format!("the server refused the TLS handshake (alert: {a:?})"),
        E::PeerIncompatible(p) => {
            format!("TLS handshake failed: the server is incompatible ({p:?})")
        }
        E::PeerMisbehaved(p) => format!("TLS protocol failure: the server misbehaved ({p:?})"),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        E::DecryptError => "TLS handshake failed: decryption failed".into(),
        other => format!("TLS failure: {other}"),
    }
}

fn certificate(c: &CertificateError, ca_flag: &str) -> String {
    use CertificateError as C;
    match c {
        C::UnknownIssuer => format!(
            "unknown CA (certificate not signed by a trusted root; pass {ca_flag} FILE)"
        ),
        C::Other(OtherError(o)) if o.downcast_ref::<SelfSigned>().is_some() => format!(
            "self-signed certificate (not issued by a trusted CA; pass the certificate itself with {ca_flag} FILE)"
        ),
        C::NotValidForNameContext { expected, presented } => {
            let names: Vec<String> = presented.iter().map(|p| shown_name(p)).collect();
            let is_for = if names.is_empty() {
                "for no name".to_string()
            } else {
                format!("for {}", names.join(", "))
            };
            format!("name mismatch (certificate is {is_for}, not {})", expected.to_str())
        }
        C::NotValidForName => "name mismatch (certificate is for another name)".into(),
        C::ExpiredContext { not_after, .. } => {
            format!("certificate expired (on {})", shown_time(not_after))
        }
        C::Expired => "certificate expired".into(),
        C::NotValidYetContext { not_before, .. } => {
            format!("certificate not yet valid (from {})", shown_time(not_before))
        }
        C::NotValidYet => "certificate not yet valid".into(),
        C::Revoked => "certificate revoked".into(),
        C::BadSignature => "certificate signature is invalid".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "certificate is not for TLS servers (extended key usage)".into()
        }
        C::BadEncoding => "certificate is malformed".into(),
        other => format!("certificate refused: {other}"),
    }
}

/// webpki shows names as `DnsName("a.example")` and `IpAddress(127.0.0.1)`.
fn shown_name(p: &str) -> String {
    p.strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| {
            p.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
        })
        .unwrap_or(p)
        .to_string()
}

fn shown_time(t: &UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{} (Unix)", t.as_secs()))
}

/// A certificate chain and its key, what a TLS server of the emulator presents.
pub struct ServerIdentity {
    /// The leaf first, then its issuers (a generated identity's CA is not sent).
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The chain as PEM, and the key as PKCS#8 PEM (to hand them to another program).
    pub cert_pem: String,
    pub key_pem: String,
    /// A generated identity's CA certificate as PEM: what a peer must trust. `None` for
    /// a loaded identity.
    pub ca_pem: Option<String>,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain", &self.chain.len())
            .field("ca_pem", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            ca_pem: self.ca_pem.clone(),
        }
    }
}

impl ServerIdentity {
    /// A fresh CA and a certificate it issued for `names` (DNS names or IP addresses).
    pub fn generate(names: &[&str]) -> Result<ServerIdentity, String> {
        Ca::generate("wa-emulator local CA")?.issue(names)
    }

    /// The certificate chain (leaf first) of `cert_file` and the private key (PKCS#8,
    /// PKCS#1 or SEC1) of `key_file`, both PEM.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<ServerIdentity, String> {
        let chain = read_certs(cert_file)?;
        let key_bytes = std::fs::read(key_file)
            .map_err(|e| format!("cannot read {}: {e}", key_file.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => format!(
                "no PEM private key in {} (expected a -----BEGIN PRIVATE KEY----- block)",
                key_file.display()
            ),
            e => format!("{}: not valid PEM: {e}", key_file.display()),
        })?;
        let identity = ServerIdentity {
            chain,
            key,
            cert_pem: String::from_utf8_lossy(&std::fs::read(cert_file).unwrap_or_default())
                .into_owned(),
            key_pem: String::from_utf8_lossy(&key_bytes).into_owned(),
            ca_pem: None,
        };
        // A key that does not match the certificate fails here, not at the first peer.
        server_config(&identity)
            .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))?;
        Ok(identity)
    }
}

/// The server config presenting `identity`; no client certificate is asked for.
pub fn server_config(identity: &ServerIdentity) -> Result<Arc<ServerConfig>, String> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| format!("the certificate and key cannot be used: {e}"))?;
    Ok(Arc::new(config))
}

/// When an issued certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 1975 to 4096 (rcgen's default): valid whatever the clock says.
    Always,
    /// 2001 to 2002.
    Expired,
    /// From the year 4000.
    NotYetValid,
}

/// A certificate authority made on the spot: the emulator's own SIP identity, and the
/// tests' receivers and peers (a CA to trust or not, certificates that expired or are
/// for another name).
pub struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    pub fn generate(common_name: &str) -> Result<Ca, String> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(Ca { cert, key })
    }

    /// The CA's certificate as PEM: the file to pass as `--webhook-ca` / `--sip-ca`.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses), valid now.
    pub fn issue(&self, names: &[&str]) -> Result<ServerIdentity, String> {
        self.issue_with(names, Validity::Always)
    }

    pub fn issue_with(&self, names: &[&str], validity: Validity) -> Result<ServerIdentity, String> {
        let params = leaf_params(names, validity)?;
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(gen_err)?;
        Ok(identity(cert, key, Some(self.pem())))
    }
}

/// A certificate for `names` that signed itself (no CA).
pub fn self_signed(names: &[&str]) -> Result<ServerIdentity, String> {
    let params = leaf_params(names, Validity::Always)?;
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let pem = cert.pem();
    Ok(identity(cert, key, Some(pem)))
}

fn leaf_params(names: &[&str], validity: Validity) -> Result<rcgen::CertificateParams, String> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(gen_err)?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.as_str());
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    match validity {
        Validity::Always => {}
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        Validity::NotYetValid => {
            params.not_before = rcgen::date_time_ymd(4000, 1, 1);
            params.not_after = rcgen::date_time_ymd(4001, 1, 1);
        }
    }
    Ok(params)
}

fn identity(
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    ca_pem: Option<String>,
) -> ServerIdentity {
    ServerIdentity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem,
    }
}

fn gen_err(e: rcgen::Error) -> String {
    format!("cannot generate a certificate: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("wa-emu-tls-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let p = dir().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A TLS handshake over an in-memory pipe: the client's outcome, described.
    async fn handshake(server: &ServerIdentity, trust: &Trust, name: &str) -> Result<(), String> {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(server).unwrap());
        let connector = tokio_rustls::TlsConnector::from(trust.client_config("tests").unwrap());
        let (a, b) = tokio::io::duplex(64 * 1024);
        let serve = tokio::spawn(async move {
            if let Ok(mut s) = acceptor.accept(b).await {
                let _ = s.write_all(b"hi").await;
                let _ = s.shutdown().await;
            }
        });
        let name = ServerName::try_from(name.to_string()).unwrap();
        let result = match connector.connect(name, a).await {
            Ok(mut s) => {
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
                assert_eq!(buf, b"hi");
                Ok(())
            }
            Err(e) => Err(describe(&e).unwrap_or_else(|| format!("not described: {e}"))),
        };
        serve.abort();
        result
    }

    fn trusting(ca: &Ca, file: &str) -> Trust {
        Trust {
            ca_file: Some(write(file, &ca.pem())),
            insecure: false,
        }
    }

    /// A machine (or a FROM scratch container) without CA certificates still starts:
    /// the verifier builds, and a certificate is refused as of an unknown CA.
    #[tokio::test]
    async fn with_no_root_at_all_certificates_are_refused_as_unknown_ca() {
        let ca = Ca::generate("test CA").unwrap();
        let server = ca.issue(&["receiver.test"]).unwrap();
        let verifier = NamesSelfSigned::new(RootCertStore::empty(), provider()).unwrap();
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&server).unwrap());
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let serve = tokio::spawn(async move {
            let _ = acceptor.accept(b).await;
        });
        let name = ServerName::try_from("receiver.test".to_string()).unwrap();
        let Err(e) = connector.connect(name, a).await else {
            panic!("a certificate was accepted with no root at all");
        };
        serve.abort();
        let reason = describe(&e).unwrap();
        assert!(reason.starts_with("unknown CA"), "{reason}");
    }

    #[tokio::test]
    async fn a_certificate_of_the_trusted_ca_is_accepted_and_others_are_named() {
        let ca = Ca::generate("test CA").unwrap();
        let good = ca.issue(&["receiver.test", "127.0.0.1"]).unwrap();
        let trust = trusting(&ca, "ca1.pem");
        assert_eq!(handshake(&good, &trust, "receiver.test").await, Ok(()));
        assert_eq!(handshake(&good, &trust, "127.0.0.1").await, Ok(()));

        let e = handshake(&good, &Trust::default(), "receiver.test")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "unknown CA (certificate not signed by a trusted root; pass --webhook-ca FILE)"
        );
        let e = handshake(&good, &trust, "other.test").await.unwrap_err();
        assert_eq!(
            e,
            "name mismatch (certificate is for receiver.test, 127.0.0.1, not other.test)"
        );
        let e = handshake(&good, &trust, "127.0.0.2").await.unwrap_err();
        assert!(e.starts_with("name mismatch ("), "{e}");
        assert!(e.ends_with("not 127.0.0.2)"), "{e}");

        let old = ca
            .issue_with(&["receiver.test"], Validity::Expired)
            .unwrap();
        let e = handshake(&old, &trust, "receiver.test").await.unwrap_err();
        assert_eq!(e, "certificate expired (on 2002-01-01 00:00:00 UTC)");
        let future = ca
            .issue_with(&["receiver.test"], Validity::NotYetValid)
            .unwrap();
        let e = handshake(&future, &trust, "receiver.test")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "certificate not yet valid (from 4000-01-01 00:00:00 UTC)"
        );

        // Another CA's certificate is unknown even with a CA file.
        let stranger = Ca::generate("other CA")
            .unwrap()
            .issue(&["receiver.test"])
            .unwrap();
        let e = handshake(&stranger, &trust, "receiver.test")
            .await
            .unwrap_err();
        assert!(e.starts_with("unknown CA"), "{e}");
    }

    #[tokio::test]
    async fn a_self_signed_certificate_is_named_and_can_be_trusted_itself() {
        let own = self_signed(&["receiver.test"]).unwrap();
        let e = handshake(&own, &Trust::default(), "receiver.test")
            .await
            .unwrap_err();
        assert!(e.starts_with("self-signed certificate"), "{e}");
        assert!(e.contains("--webhook-ca FILE"), "{e}");
        let itself = Trust {
            ca_file: Some(write("self.pem", own.ca_pem.as_deref().unwrap())),
            insecure: false,
        };
        assert_eq!(handshake(&own, &itself, "receiver.test").await, Ok(()));
    }

    #[tokio::test]
    async fn the_insecure_trust_accepts_any_certificate() {
        let insecure = Trust {
            ca_file: None,
            insecure: true,
        };
        let ca = Ca::generate("unknown").unwrap();
        for id in [
            ca.issue(&["a.test"]).unwrap(),
            ca.issue_with(&["a.test"], Validity::Expired).unwrap(),
            self_signed(&["a.test"]).unwrap(),
        ] {
            assert_eq!(handshake(&id, &insecure, "b.test").await, Ok(()));
        }
        assert!(insecure.summary().contains("insecure"));
    }

    #[tokio::test]
    async fn a_peer_that_does_not_speak_tls_is_named() {
        let connector =
            tokio_rustls::TlsConnector::from(Trust::default().client_config("tests").unwrap());
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let _ = b.read(&mut buf).await;
            let _ = b.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let e = connector
            .connect(ServerName::try_from("x.test").unwrap(), a)
            .await
            .unwrap_err();
        assert_eq!(
            describe(&e).as_deref(),
            Some("the server does not speak TLS (plain http or TCP on this port?)")
        );
    }

    #[test]
    fn describe_finds_rustls_inside_wrapped_errors_and_names_the_flag() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let outer = Outer(io);
        assert!(describe(&outer).unwrap().starts_with("unknown CA"));
        assert!(describe_for(&outer, "--sip-ca")
            .unwrap()
            .ends_with("pass --sip-ca FILE)"));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe(&refused), None);
    }

    #[test]
    fn ca_files_that_cannot_serve_say_which_file_and_what_was_expected() {
        let missing = dir().join("missing.pem");
        let e = Trust {
            ca_file: Some(missing.clone()),
            insecure: false,
        }
        .check()
        .unwrap_err();
        assert!(
            e.starts_with(&format!("cannot read {}", missing.display())),
            "{e}"
        );
        let empty = write("empty.pem", "not a certificate\n");
        let e = Trust {
            ca_file: Some(empty.clone()),
            insecure: false,
        }
        .client_config("tests")
        .unwrap_err();
        assert_eq!(
            e,
            format!(
                "no PEM certificate in {} (expected one or more -----BEGIN CERTIFICATE----- blocks)",
                empty.display()
            )
        );
        let ca = Ca::generate("c").unwrap();
        let trust = trusting(&ca, "ok.pem");
        assert_eq!(trust.check(), Ok(()));
        assert!(
            trust.summary().contains("and 1 certificate from "),
            "{}",
            trust.summary()
        );
    }

    #[tokio::test]
    async fn an_identity_loads_from_pem_files_and_a_mismatched_key_is_refused() {
        let ca = Ca::generate("files").unwrap();
        let id = ca.issue(&["sip.test"]).unwrap();
        let cert = write("cert.pem", &id.cert_pem);
        let key = write("key.pem", &id.key_pem);
        let loaded = ServerIdentity::load(&cert, &key).unwrap();
        assert_eq!(loaded.chain, id.chain);
        assert_eq!(loaded.ca_pem, None);
        assert_eq!(
            handshake(&loaded, &trusting(&ca, "files.pem"), "sip.test").await,
            Ok(())
        );

        let other_key = write("other-key.pem", &ca.issue(&["sip.test"]).unwrap().key_pem);
        let e = ServerIdentity::load(&cert, &other_key).unwrap_err();
        assert!(e.contains("cannot be used"), "{e}");
        let e = ServerIdentity::load(&cert, &cert).unwrap_err();
        assert!(e.starts_with("no PEM private key in"), "{e}");

        let generated = ServerIdentity::generate(&["localhost", "127.0.0.1"]).unwrap();
        let ca_file = write("generated-ca.pem", generated.ca_pem.as_deref().unwrap());
        let trust = Trust {
            ca_file: Some(ca_file),
            insecure: false,
        };
        assert_eq!(handshake(&generated, &trust, "localhost").await, Ok(()));
    }
}
