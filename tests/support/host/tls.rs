//! The host's certificate, made as go-plugin makes the server's, and the TLS configurations
//! it dials the plugin and serves its brokered listeners with.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use vault_plugin_sdk::internals;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server's AutoMTLS certificate and key, made as go-plugin's `generateCert` does.
pub struct HostCert {
    pub der: CertificateDer<'static>,
    /// What goes into `PLUGIN_CLIENT_CERT`.
    pub pem: String,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for HostCert {
    fn clone(&self) -> Self {
        Self {
            der: self.der.clone(),
            pem: self.pem.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for HostCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCert").finish_non_exhaustive()
    }
}

impl HostCert {
    /// ECDSA P-521, self-signed, `O=HashiCorp, CN=localhost`, SAN `localhost`, CA:TRUE used as
    /// an end entity, both EKUs, valid from 30 s ago for 30 years, random 128-bit serial: the
    /// shape webpki refuses, which is why the plugin must pin instead of verifying a chain.
    pub fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)
            .expect("generate a P-521 key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters for localhost");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "HashiCorp");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyAgreement,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.serial_number = Some(random_serial());
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(30)).into();
        params.not_after = (now + Duration::from_secs(30 * 365 * 24 * 3600)).into();
        let cert = params
            .self_signed(&key)
            .expect("self-sign the host certificate");
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    provider()
        .secure_random
        .fill(&mut bytes)
        .expect("random bytes for a serial number");
    // Keep it positive: DER integers are signed.
    bytes[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// The TLS client for dialing the plugin: presents `client_cert` (none if `None`), trusts only
/// `pinned`, and asks for ALPN `h2` if `alpn`. The real server uses (Some(own cert), the
/// handshake's cert, true). The pinning verifier is the SDK's own: a verifier that accepted
/// any certificate would still fail the tests in which the plugin, with the same verifier,
/// must refuse an impostor.
pub fn client_tls(
    client_cert: Option<&HostCert>,
    pinned: &CertificateDer<'static>,
    alpn: bool,
) -> Arc<ClientConfig> {
    // The SDK makes its client only with a certificate to present; without one, it is made
    // with a throwaway that the resolver below never presents.
    let presented = client_cert.cloned().unwrap_or_else(HostCert::generate);
    let mut config = Arc::unwrap_or_clone(
        internals::pinned_client_config(
            presented.der.clone(),
            presented.key.clone_key().into(),
            pinned.clone(),
        )
        .expect("the SDK's TLS client with a usable certificate"),
    );
    if client_cert.is_none() {
        config.client_auth_cert_resolver = Arc::new(NoClientCert);
    }
    if !alpn {
        config.alpn_protocols.clear();
    }
    Arc::new(config)
}

/// Answers a server's request for a client certificate with none.
#[derive(Debug)]
struct NoClientCert;

impl ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The TLS server of a brokered listener: our certificate, a client certificate required and
/// pinned to the plugin's, ALPN `h2` (grpc-go's settings), from the SDK.
pub fn server_tls(host: &HostCert, plugin: &CertificateDer<'static>) -> Arc<ServerConfig> {
    internals::pinned_server_config(
        host.der.clone(),
        host.key.clone_key().into(),
        plugin.clone(),
    )
    .expect("the SDK's TLS server with a usable certificate")
}
