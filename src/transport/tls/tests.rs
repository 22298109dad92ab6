#![allow(clippy::unwrap_used)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

/// A certificate like go-plugin's AutoMTLS one: P-521, self-signed, CA:TRUE, both EKUs.
fn go_style_identity(organisation: &str) -> Identity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, SERVER_NAME);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, organisation);
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
    let cert = params.self_signed(&key).unwrap();
    Identity {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// Runs one handshake over an in-memory pipe and echoes a byte to prove the session works.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (Result<Option<Vec<u8>>, String>, Result<(), String>) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server_side = async move {
        let mut stream = TlsAcceptor::from(server)
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(&byte).await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        Ok(alpn)
    };
    let client_side = async move {
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let mut stream = TlsConnector::from(client)
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"x").await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    tokio::join!(server_side, client_side)
}

#[tokio::test]
async fn the_pinned_go_style_p521_host_is_accepted_both_ways() {
    let host = go_style_identity("HashiCorp");
    let plugin = Identity::generate().unwrap();

    // The host dials the plugin's listener.
    let plugin_server = server_config(&plugin, host.cert.clone()).unwrap();
    let host_client = client_config(&host, plugin.cert.clone()).unwrap();
    let (server, client) = handshake(plugin_server, host_client).await;
    assert_eq!(server.unwrap(), Some(ALPN_H2.to_vec()));
    client.unwrap();

    // The plugin dials the host's broker listener.
    let host_server = server_config(&host, plugin.cert.clone()).unwrap();
    let plugin_client = client_config(&plugin, host.cert.clone()).unwrap();
    let (server, client) = handshake(host_server, plugin_client).await;
    assert!(server.is_ok());
    client.unwrap();
}

#[tokio::test]
async fn a_client_certificate_other_than_the_pinned_one_is_refused() {
    let host = go_style_identity("HashiCorp");
    // Same subject, same key type: only the bytes differ.
    let impostor = go_style_identity("HashiCorp");
    let plugin = Identity::generate().unwrap();
    let plugin_server = server_config(&plugin, host.cert.clone()).unwrap();
    let impostor_client = client_config(&impostor, plugin.cert.clone()).unwrap();
    let (server, _client) = handshake(plugin_server, impostor_client).await;
    let error = server.unwrap_err();
    assert!(error.contains("ApplicationVerificationFailure"), "{error}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let host = go_style_identity("HashiCorp");
    let plugin = Identity::generate().unwrap();
    let plugin_server = server_config(&plugin, host.cert.clone()).unwrap();
    let anonymous = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier::new(
            Some(plugin.cert.clone()),
            &provider(),
        )))
        .with_no_client_auth();
    let (server, _client) = handshake(plugin_server, Arc::new(anonymous)).await;
    let error = server.unwrap_err();
    assert!(error.contains("peer sent no certificates"), "{error}");
}

#[tokio::test]
async fn the_plugin_refuses_a_broker_listener_with_another_certificate() {
    let host = go_style_identity("HashiCorp");
    let impostor = go_style_identity("HashiCorp");
    let plugin = Identity::generate().unwrap();
    let impostor_server = server_config(&impostor, plugin.cert.clone()).unwrap();
    let plugin_client = client_config(&plugin, host.cert.clone()).unwrap();
    let (_server, client) = handshake(impostor_server, plugin_client).await;
    let error = client.unwrap_err();
    assert!(error.contains("ApplicationVerificationFailure"), "{error}");
}

#[test]
fn our_certificate_is_for_localhost_and_not_a_ca() {
    let plugin = Identity::generate().unwrap();
    let der = plugin.cert.as_ref();
    // "localhost" appears as the SAN and the CN; the basicConstraints extension
    // (OID 2.5.29.19 = 55 1d 13) is absent, so the certificate is not a CA.
    assert!(der.windows(9).any(|w| w == b"localhost"));
    assert!(!der.windows(3).any(|w| w == [0x55, 0x1d, 0x13]));
    assert_eq!(
        parse_peer_certificate(&plugin.cert_pem()).unwrap(),
        plugin.cert
    );
    assert!(
        !format!("{plugin:?}").contains("key"),
        "the key must never be printed"
    );
}

#[test]
fn peer_certificate_must_be_one_complete_pem_certificate() {
    let pem = go_style_identity("HashiCorp").cert_pem();
    assert!(parse_peer_certificate(&pem).is_ok());

    let lines: Vec<&str> = pem.lines().collect();
    let body = &lines[1..lines.len() - 1];
    let truncated = format!(
        "{}\n{}\n{}\n",
        lines[0],
        body[..body.len() / 2].join("\n"),
        lines[lines.len() - 1]
    );
    let cases = [
        ("", "no certificate"),
        ("garbage", "no certificate"),
        (
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "PLUGIN_CLIENT_CERT",
        ),
        (truncated.as_str(), "not a complete DER certificate"),
        (&format!("{pem}{pem}"), "more than one certificate"),
    ];
    for (input, needle) in cases {
        let error = parse_peer_certificate(input).unwrap_err().to_string();
        assert!(error.contains(needle), "{input:?}: {error}");
        assert!(error.contains("PLUGIN_CLIENT_CERT"), "{error}");
    }
}

#[test]
fn der_sequence_check_handles_short_and_long_lengths() {
    assert!(is_complete_der_sequence(&[0x30, 0x01, 0xff]));
    assert!(!is_complete_der_sequence(&[0x30, 0x02, 0xff]));
    assert!(is_complete_der_sequence(&[0x30, 0x81, 0x01, 0xff]));
    assert!(!is_complete_der_sequence(&[0x30, 0x82, 0x01]));
    assert!(!is_complete_der_sequence(&[0x31, 0x00]));
    assert!(!is_complete_der_sequence(&[]));
}
