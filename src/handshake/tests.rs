#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;

fn env_from(pairs: &[(&str, &str)]) -> Result<PluginEnv, HandshakeError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    PluginEnv::from_lookup(|name| map.get(name).cloned())
}

const COOKIE: (&str, &str) = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);

#[test]
fn a_server_launch_is_parsed() {
    let env = env_from(&[
        COOKIE,
        ("PLUGIN_PROTOCOL_VERSIONS", "5"),
        ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----\n..."),
        ("PLUGIN_MIN_PORT", "10000"),
        ("PLUGIN_MAX_PORT", "25000"),
        ("BAO_VERSION", "2.7.2"),
        ("VAULT_VERSION", "ignored"),
    ])
    .unwrap();
    assert_eq!(env.protocol_versions, [5]);
    assert!(env.client_cert_pem.is_some());
    assert_eq!((env.min_port, env.max_port), (10000, 25000));
    assert_eq!(env.server_version.as_deref(), Some("2.7.2"));
    assert!(!env.multiplex_grpc);
    assert_eq!(env.unix_socket_dir, None);
    assert!(!env.automtls && !env.metadata_mode && env.unwrap_token.is_none());
}

#[test]
fn legacy_launch_variables_are_read_bao_first() {
    let env = env_from(&[
        COOKIE,
        ("PLUGIN_PROTOCOL_VERSIONS", "3,4"),
        ("BAO_PLUGIN_METADATA_MODE", "true"),
        ("VAULT_PLUGIN_METADATA_MODE", "false"),
        ("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"),
        ("VAULT_UNWRAP_TOKEN", "a.b.c"),
    ])
    .unwrap();
    assert!(env.metadata_mode && env.automtls);
    assert_eq!(env.unwrap_token.as_deref(), Some("a.b.c"));
    // A present but empty BAO_ name wins over the VAULT_ one, as in OpenBao's SDK.
    let env = env_from(&[
        COOKIE,
        ("PLUGIN_PROTOCOL_VERSIONS", "4"),
        ("BAO_PLUGIN_METADATA_MODE", ""),
        ("VAULT_PLUGIN_METADATA_MODE", "true"),
    ])
    .unwrap();
    assert!(!env.metadata_mode);
}

#[test]
fn vault_names_are_read_when_bao_names_are_absent() {
    let env = env_from(&[
        COOKIE,
        ("PLUGIN_PROTOCOL_VERSIONS", "5"),
        ("VAULT_VERSION", "1.15.0"),
    ])
    .unwrap();
    assert_eq!(env.server_version.as_deref(), Some("1.15.0"));
}

#[test]
fn the_cookie_decides_who_launched_us() {
    assert_eq!(
        env_from(&[("PLUGIN_PROTOCOL_VERSIONS", "5")]),
        Err(HandshakeError::NotLaunchedByHost(&BACKEND_COOKIE))
    );
    assert_eq!(
        env_from(&[
            (DATABASE_COOKIE_KEY, "926a0820-aea2-be28-51d6-83cdf00e8edb"),
            ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
        ]),
        Err(HandshakeError::LaunchedAsOtherKind(&BACKEND_COOKIE))
    );
    assert_eq!(
        env_from(&[
            (MAGIC_COOKIE_KEY, "nope"),
            ("PLUGIN_PROTOCOL_VERSIONS", "5")
        ]),
        Err(HandshakeError::WrongCookie(&BACKEND_COOKIE))
    );
}

#[test]
fn protocol_versions_must_be_a_list_of_numbers() {
    for bad in ["", " ", "abc", "5,", ",5", "5;4", "-1", "5,x"] {
        assert_eq!(
            env_from(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", bad)]),
            Err(HandshakeError::BadProtocolVersions(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert!(matches!(
        env_from(&[COOKIE]),
        Err(HandshakeError::BadProtocolVersions(_))
    ));
    let env = env_from(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", " 3, 4 ")]).unwrap();
    assert_eq!(env.protocol_versions, [3, 4]);
}

#[test]
fn port_range_must_be_sane() {
    for (min, max) in [
        ("x", "25000"),
        ("30000", "20000"),
        ("0", "10"),
        ("70000", "80000"),
    ] {
        let result = env_from(&[
            COOKIE,
            ("PLUGIN_PROTOCOL_VERSIONS", "5"),
            ("PLUGIN_MIN_PORT", min),
            ("PLUGIN_MAX_PORT", max),
        ]);
        assert!(
            matches!(result, Err(HandshakeError::BadPortRange(_))),
            "{min}..{max}"
        );
    }
}

#[test]
fn negotiation_picks_the_best_common_version() {
    assert_eq!(negotiate(&[5], SUPPORTED_VERSIONS), Ok(5));
    assert_eq!(negotiate(&[6, 5, 4], SUPPORTED_VERSIONS), Ok(5));
    // The legacy fallback offers "3,4" (in any order): 4 is served.
    assert_eq!(negotiate(&[3, 4], SUPPORTED_VERSIONS), Ok(4));
    assert_eq!(negotiate(&[4, 3], SUPPORTED_VERSIONS), Ok(4));
    assert_eq!(negotiate(&[3], SUPPORTED_VERSIONS), Ok(3));
    assert_eq!(
        negotiate(&[1, 2], SUPPORTED_VERSIONS),
        Err(HandshakeError::NoCommonVersion {
            offered: vec![1, 2],
            served: SUPPORTED_VERSIONS.to_vec()
        })
    );
    // Declining 5 leaves the legacy versions, and says so when 5 is what the server offers.
    let declined = negotiate(&[5], &[4, 3]).unwrap_err();
    assert!(
        declined.to_string().contains("declining plugin protocol 5"),
        "{declined}"
    );
}

#[test]
fn every_error_names_its_cause() {
    let cases: Vec<(HandshakeError, &str)> = vec![
        (
            HandshakeError::NotLaunchedByHost(&BACKEND_COOKIE),
            "plugin register",
        ),
        (
            HandshakeError::LaunchedAsOtherKind(&BACKEND_COOKIE),
            "not a database plugin",
        ),
        (
            HandshakeError::WrongCookie(&BACKEND_COOKIE),
            MAGIC_COOKIE_KEY,
        ),
        (
            HandshakeError::BadProtocolVersions("x".into()),
            "PLUGIN_PROTOCOL_VERSIONS",
        ),
        (HandshakeError::NoTlsMaterial, "api_addr"),
        (
            HandshakeError::NoCommonVersion {
                offered: vec![6],
                served: vec![5, 4, 3],
            },
            "[6]",
        ),
        (HandshakeError::MissingClientCert, "PLUGIN_CLIENT_CERT"),
        (
            HandshakeError::BadPortRange("1..0".into()),
            "PLUGIN_MIN_PORT",
        ),
    ];
    for (error, needle) in cases {
        let text = error.to_string();
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        assert!(!text.contains('\n'), "one line: {text:?}");
    }
}

#[test]
fn handshake_line_is_exactly_the_go_plugin_format() {
    let der = [0x30u8, 0x03, 0x01, 0x02, 0x03];
    let line = handshake_line(
        5,
        &ListenAddr::Unix("/tmp/p/plugin.sock".into()),
        Some(&der),
        false,
    );
    // Unpadded standard base64: "MAMBAgM=" without the '='.
    assert_eq!(line, "1|5|unix|/tmp/p/plugin.sock|grpc|MAMBAgM");
    let tcp = ListenAddr::Tcp("127.0.0.1:10000".parse().unwrap());
    assert_eq!(
        handshake_line(5, &tcp, None, false),
        "1|5|tcp|127.0.0.1:10000|grpc|"
    );
    assert_eq!(
        handshake_line(5, &tcp, None, true),
        "1|5|tcp|127.0.0.1:10000|grpc||true"
    );
}
