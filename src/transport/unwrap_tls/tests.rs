#![allow(clippy::unwrap_used)]

use tokio::net::TcpListener;

use super::*;

/// A compact JWT with the given header and claims (the signature is not checked here, as in
/// the Go SDK).
fn jwt(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn token_for(addr: &str) -> String {
    jwt(
        &serde_json::json!({"alg": "ES512", "typ": "wrapping"}),
        &serde_json::json!({"addr": addr, "accessor": "x"}),
    )
}

#[test]
fn the_addr_claim_is_read_from_the_token() {
    assert_eq!(
        token_api_addr(&token_for("http://127.0.0.1:8200")).unwrap(),
        "http://127.0.0.1:8200"
    );
}

#[test]
fn malformed_tokens_are_refused_precisely() {
    let es512 = serde_json::json!({"alg": "ES512"});
    let cases = [
        ("not-a-jwt".to_owned(), "three dot-separated parts"),
        ("a.b.c.d".to_owned(), "three dot-separated parts"),
        ("!!.e30.sig".to_owned(), "header is not base64url"),
        (
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("nope")),
            "header is not JSON",
        ),
        (
            jwt(
                &serde_json::json!({"alg": "HS256"}),
                &serde_json::json!({"addr": "x"}),
            ),
            "ES512",
        ),
        (
            format!("{}.!!.sig", URL_SAFE_NO_PAD.encode(es512.to_string())),
            "claims are not base64url",
        ),
        (
            jwt(&es512, &serde_json::json!({})),
            "could not validate addr claim",
        ),
        (
            jwt(&es512, &serde_json::json!({"addr": 5})),
            "could not parse addr claim",
        ),
    ];
    for (token, needle) in cases {
        let error = token_api_addr(&token).unwrap_err().to_string();
        assert!(error.contains(needle), "{token}: {error}");
    }
    assert!(matches!(
        token_api_addr(&jwt(&es512, &serde_json::json!({"addr": ""}))),
        Err(UnwrapError::NoApiAddr)
    ));
    assert!(UnwrapError::NoApiAddr.to_string().contains("set api_addr"));
}

#[test]
fn api_addresses_parse_with_default_ports() {
    let parse = |a: &str| ApiAddr::parse(a).unwrap();
    assert_eq!(
        parse("http://127.0.0.1:8200"),
        ApiAddr {
            tls: false,
            host: "127.0.0.1".into(),
            port: 8200
        }
    );
    assert_eq!(
        parse("https://vault.example"),
        ApiAddr {
            tls: true,
            host: "vault.example".into(),
            port: 443
        }
    );
    assert_eq!(
        parse("http://[::1]:8200/"),
        ApiAddr {
            tls: false,
            host: "::1".into(),
            port: 8200
        }
    );
    assert_eq!(parse("http://localhost").port, 80);
    for bad in [
        "127.0.0.1:8200",
        "ftp://x",
        "http://",
        "http://h:port",
        "https://:1",
    ] {
        assert!(ApiAddr::parse(bad).is_err(), "{bad}");
    }
}

/// Answers one HTTP request on loopback with `response` and returns the request it got.
async fn fake_api(response: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let n = socket.read(&mut request).await.unwrap();
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    (addr, served)
}

#[tokio::test]
async fn a_refusal_carries_the_servers_errors_and_the_request_is_an_unwrap() {
    let (addr, served) = fake_api(
        "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\n\r\n\
         {\"errors\":[\"wrapping token is not valid or does not exist\"]}",
    )
    .await;
    let token = token_for(&addr);
    let error = unwrap_identity(&token, &ApiClientFlags::default(), "")
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            UnwrapError::Refused { status: 400, errors }
                if errors == "wrapping token is not valid or does not exist"
        ),
        "{error}"
    );
    let request = served.await.unwrap();
    assert!(
        request.starts_with("PUT /v1/sys/wrapping/unwrap HTTP/1.0\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("X-Vault-Token: {token}\r\n")),
        "{request}"
    );
}

#[tokio::test]
async fn an_answer_without_the_certificate_is_refused() {
    let (addr, _served) =
        fake_api("HTTP/1.0 200 OK\r\n\r\n{\"data\":{\"ServerKey\":\"AAAA\"}}").await;
    let error = unwrap_identity(&token_for(&addr), &ApiClientFlags::default(), "")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no ServerCert"), "{error}");

    let (addr, _served) = fake_api("HTTP/1.0 200 OK\r\n\r\n").await;
    let error = unwrap_identity(&token_for(&addr), &ApiClientFlags::default(), "")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("secret is nil"), "{error}");
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    // Bind and drop to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://127.0.0.1:{port}");
    let error = unwrap_identity(&token_for(&addr), &ApiClientFlags::default(), "")
        .await
        .unwrap_err();
    assert!(matches!(error, UnwrapError::Connect { .. }), "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn a_tls_server_with_an_untrusted_certificate_asks_for_its_ca() {
    // A TLS server with a self-signed certificate that no CA store knows.
    let identity = Identity::generate().unwrap();
    // Our pinned server config, with a client that is not pinned: the handshake still starts,
    // which is all this test needs (it fails for want of a client certificate afterwards).
    let config = tls::server_config(&identity, identity.cert.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        while let Ok((socket, _)) = listener.accept().await {
            let _ = acceptor.accept(socket).await;
        }
    });
    let token = token_for(&format!("https://localhost:{port}"));
    let error = unwrap_identity(&token, &ApiClientFlags::default(), "")
        .await
        .unwrap_err();
    assert!(matches!(error, UnwrapError::Tls { .. }), "{error}");
    assert!(error.to_string().contains("-ca-cert"), "{error}");

    // With the certificate as the CA, the TLS handshake succeeds (the fake server then closes
    // without answering, which is a different error).
    let ca = std::env::temp_dir().join(format!("unwrap-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, identity.cert_pem()).unwrap();
    let flags = ApiClientFlags {
        ca_cert: Some(ca.clone()),
        ..ApiClientFlags::default()
    };
    let error = unwrap_identity(&token, &flags, "").await.unwrap_err();
    std::fs::remove_file(&ca).unwrap();
    assert!(!matches!(error, UnwrapError::Tls { .. }), "{error}");
}

#[test]
fn unusable_tls_files_are_named() {
    let flags = ApiClientFlags {
        ca_cert: Some("/nonexistent/ca.pem".into()),
        ..ApiClientFlags::default()
    };
    let error = api_tls_config(&flags).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");

    let flags = ApiClientFlags {
        tls_skip_verify: true,
        client_cert: Some("/c.pem".into()),
        ..ApiClientFlags::default()
    };
    let error = api_tls_config(&flags).unwrap_err().to_string();
    assert!(error.contains("given together"), "{error}");
}

#[test]
fn unwrapped_fields_must_be_base64_der() {
    let body = serde_json::json!({"data": {"ServerCert": "***", "ServerKey": "AAAA"}});
    let error = identity_from_unwrapped(&body).unwrap_err().to_string();
    assert!(error.contains("ServerCert is not base64"), "{error}");
    let body = serde_json::json!({"data": {"ServerCert": "AAAA", "ServerKey": "AAAA"}});
    let error = identity_from_unwrapped(&body).unwrap_err().to_string();
    assert!(error.contains("private key is not usable"), "{error}");
}
