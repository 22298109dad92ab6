//! Automatic mutual TLS, as go-plugin does it, with rustls and the aws-lc-rs provider.
//!
//! Each side trusts exactly one certificate: the server gave us its own in
//! `PLUGIN_CLIENT_CERT`, and we give it ours in the handshake line. The server's certificate is
//! a self-signed P-521 CA certificate used as an end entity, which webpki refuses
//! (`CaUsedAsEndEntity`) and *ring* cannot verify, so both directions use verifiers that pin the
//! exact DER and check handshake signatures with aws-lc-rs.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

/// The ALPN protocol gRPC needs; the server's grpc-go enforces it in both directions.
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// The TLS server name both sides use (go-plugin's certificates are issued for it).
pub(crate) const SERVER_NAME: &str = "localhost";

/// A TLS setup failure.
#[derive(Debug)]
pub enum TlsError {
    /// `PLUGIN_CLIENT_CERT` is not one PEM certificate.
    BadPeerCertificate(String),
    /// Making our own certificate failed.
    Generate(rcgen::Error),
    /// The generated private key was refused.
    Key(rustls::Error),
    /// rustls refused the configuration.
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPeerCertificate(detail) => write!(
                f,
                "PLUGIN_CLIENT_CERT does not hold a PEM certificate ({detail}); the plugin host \
                 sets it to its own certificate when it launches the plugin"
            ),
            Self::Generate(_) => f.write_str("cannot generate the plugin's certificate"),
            Self::Key(_) => f.write_str(
                "cannot generate the plugin's certificate: the private key is not usable",
            ),
            Self::Config(_) => f.write_str("cannot configure TLS"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadPeerCertificate(_) => None,
            Self::Generate(e) => Some(e),
            Self::Key(e) | Self::Config(e) => Some(e),
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        Self::Config(e)
    }
}

/// The crypto provider for every connection: aws-lc-rs, because the server signs with P-521.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Our certificate and key, made fresh at every start.
pub(crate) struct Identity {
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// A self-signed ECDSA P-256 certificate for `localhost`, usable for server and client
    /// authentication, valid from a minute ago (clock skew) for ten years.
    pub(crate) fn generate() -> Result<Self, TlsError> {
        Self::generate_with(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// The same recipe with another signature algorithm (tests use P-521, as Go does).
    pub(crate) fn generate_with(alg: &'static rcgen::SignatureAlgorithm) -> Result<Self, TlsError> {
        let generate = TlsError::Generate;
        let key = rcgen::KeyPair::generate_for(alg).map_err(generate)?;
        let mut params =
            rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()]).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, SERVER_NAME);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "vault_plugin_sdk");
        params.is_ca = rcgen::IsCa::NoCa;
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(60)).into();
        params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 24 * 3600)).into();
        let cert = params.self_signed(&key).map_err(generate)?;
        Ok(Self {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        })
    }

    /// A certificate and key made elsewhere (the legacy bootstrap unwraps them). Fails when
    /// rustls cannot sign with the key.
    pub(crate) fn from_der(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(TlsError::Key)?;
        Ok(Self { cert, key })
    }

    /// The certificate as PEM, as a host puts it in `PLUGIN_CLIENT_CERT`.
    #[cfg(test)]
    pub(crate) fn cert_pem(&self) -> String {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.encode(self.cert.as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

/// Decodes the one certificate in `PLUGIN_CLIENT_CERT`.
pub fn parse_peer_certificate(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    let first = match certs.next() {
        Some(Ok(cert)) => cert,
        Some(Err(e)) => return Err(TlsError::BadPeerCertificate(e.to_string())),
        None => {
            return Err(TlsError::BadPeerCertificate(
                "no certificate found".to_owned(),
            ));
        }
    };
    if certs.next().is_some() {
        return Err(TlsError::BadPeerCertificate(
            "more than one certificate".to_owned(),
        ));
    }
    // A truncated or garbled body can still decode as base64; make sure it is X.509 DER: an
    // outer SEQUENCE whose length matches the bytes we have.
    if !is_complete_der_sequence(first.as_ref()) {
        return Err(TlsError::BadPeerCertificate(
            "the PEM body is not a complete DER certificate".to_owned(),
        ));
    }
    Ok(first)
}

/// True when `der` is exactly one DER SEQUENCE.
fn is_complete_der_sequence(der: &[u8]) -> bool {
    let [0x30, first_len, rest @ ..] = der else {
        return false;
    };
    let (len, body) = if first_len & 0x80 == 0 {
        (usize::from(*first_len), rest)
    } else {
        let count = usize::from(first_len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return false;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    body.len() == len
}

/// Accepts exactly one certificate, byte for byte (or, for `-tls-skip-verify` only, any), and
/// checks the peer's handshake signatures with the provider's algorithms (P-521 included).
#[derive(Debug)]
struct PeerVerifier {
    /// `None` accepts any certificate.
    pinned: Option<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    fn new(pinned: Option<CertificateDer<'static>>, provider: &CryptoProvider) -> Self {
        Self {
            pinned,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        match &self.pinned {
            Some(pinned) if presented.as_ref() != pinned.as_ref() => {
                tracing::warn!("refused a TLS peer whose certificate is not the pinned one");
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The handshake-signature checks, the same for both directions.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // An empty list lets Go's client send its only certificate.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    signature_checks!();
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    signature_checks!();
}

/// A server verifier that accepts any certificate but still checks handshake signatures: only
/// for an operator's explicit `-tls-skip-verify`.
pub(crate) fn any_server_certificate() -> Arc<dyn ServerCertVerifier> {
    Arc::new(PeerVerifier::new(None, &provider()))
}

/// The TLS server for the plugin's listener: presents `identity`, requires a client certificate
/// and accepts only `peer`, offers only `h2`.
pub(crate) fn server_config(
    identity: &Identity,
    peer: CertificateDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier::new(Some(peer), &provider));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The TLS client for broker connections back to the server: presents `identity`, accepts only
/// `peer`, asks for `h2`.
pub(crate) fn client_config(
    identity: &Identity,
    peer: CertificateDer<'static>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier::new(Some(peer), &provider));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
