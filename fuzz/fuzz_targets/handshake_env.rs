//! The environment (and catalog arguments) a plugin is launched with: `KEY=VALUE` entries
//! separated by NUL bytes, read as the process environment would be, then negotiation, the
//! server's certificate and the handshake line. The same entries are also parsed as the
//! plugin's argument list.

#![no_main]

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use libfuzzer_sys::fuzz_target;
use vault_plugin_sdk::PluginInfo;
use vault_plugin_sdk::internals::{
    self as tls, Args, ListenAddr, PluginEnv, SUPPORTED_VERSIONS, handshake_line, negotiate,
};

const INFO: PluginInfo = PluginInfo::new("my-mock-plugin", env!("CARGO_PKG_VERSION"))
    .description("the mock")
    .example_path("my-secrets-plugin");

/// Stands in for the plugin's certificate: the line only carries it, base64-encoded.
const CERT: &[u8] = b"\x30\x03\x02\x01\x05";

fuzz_target!(|input: &[u8]| {
    let mut vars: HashMap<String, String> = HashMap::new();
    for entry in input.split(|b| *b == 0) {
        // A variable that is not UTF-8 reads as unset, as `std::env::var` has it.
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        if let Some((key, value)) = entry.split_once('=') {
            vars.insert(key.to_owned(), value.to_owned());
        }
    }

    match PluginEnv::from_lookup(|name| vars.get(name).cloned()) {
        Err(error) => assert!(!error.to_string().is_empty(), "every refusal says why"),
        Ok(env) => {
            assert!(!env.protocol_versions.is_empty());
            assert!(env.min_port > 0 && env.min_port <= env.max_port);
            if let Some(pem) = &env.client_cert_pem {
                assert!(!pem.is_empty());
                if let Ok(der) = tls::parse_peer_certificate(pem) {
                    assert_eq!(der.as_ref().first(), Some(&0x30), "a DER SEQUENCE");
                }
            }
            match negotiate(&env.protocol_versions, SUPPORTED_VERSIONS) {
                Err(error) => assert!(!error.to_string().is_empty()),
                Ok(version) => {
                    assert!(SUPPORTED_VERSIONS.contains(&version));
                    assert!(env.protocol_versions.contains(&version));
                    let socket = PathBuf::from("/tmp/plugin-0123456789ab/plugin.sock");
                    let line = handshake_line(
                        version,
                        &ListenAddr::Unix(socket),
                        Some(CERT),
                        env.multiplex_grpc,
                    );
                    assert!(!line.contains('\n'), "one line");
                    let fields: Vec<&str> = line.split('|').collect();
                    assert_eq!(fields.len(), if env.multiplex_grpc { 7 } else { 6 });
                    assert_eq!(fields[..3], ["1", &version.to_string(), "unix"]);
                    assert_eq!(
                        STANDARD_NO_PAD.decode(fields[5]).ok().as_deref(),
                        Some(CERT)
                    );
                }
            }
        }
    }

    let args = std::iter::once(OsString::from("my-mock-plugin")).chain(
        input
            .split(|b| *b == 0)
            .map(|a| OsString::from_vec(a.to_vec())),
    );
    if let Ok(args) = Args::parse_go_style(&INFO, args) {
        let options = args.serve_options(|name| vars.get(name).cloned());
        assert!(options.connect_timeout.as_secs_f64() >= 0.1);
    }
});
