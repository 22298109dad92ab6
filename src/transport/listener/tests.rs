#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::handshake::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};

/// A server's launch environment: protocol 5, sockets in `dir`.
fn env_with_socket_dir(dir: &Path) -> PluginEnv {
    let mut env = launch_env();
    env.unix_socket_dir = Some(dir.to_owned());
    env
}

fn launch_env() -> PluginEnv {
    PluginEnv::from_lookup(|name| match name {
        MAGIC_COOKIE_KEY => Some(MAGIC_COOKIE_VALUE.to_owned()),
        "PLUGIN_PROTOCOL_VERSIONS" => Some("5".to_owned()),
        _ => None,
    })
    .unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("listener-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn unix_socket_lives_in_a_private_directory_removed_on_drop() {
    let parent = scratch_dir("private");
    let listener = PluginListener::bind(Transport::Unix, &env_with_socket_dir(&parent)).unwrap();
    let ListenAddr::Unix(socket) = &listener.addr else {
        panic!("expected a unix socket");
    };
    let dir = socket.parent().unwrap().to_owned();
    assert!(dir.starts_with(&parent));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(socket.exists());
    drop(listener);
    assert!(!dir.exists(), "the socket directory outlived the listener");
    std::fs::remove_dir_all(&parent).unwrap();
}

#[tokio::test]
async fn an_unusable_socket_directory_is_a_clear_error() {
    let missing = std::env::temp_dir().join("listener-test-does-not-exist/deeper");
    let error = PluginListener::bind(Transport::Unix, &env_with_socket_dir(&missing)).unwrap_err();
    assert!(
        error.to_string().contains("PLUGIN_UNIX_SOCKET_DIR"),
        "{error}"
    );

    let long = scratch_dir("long").join("x".repeat(120));
    std::fs::create_dir_all(&long).unwrap();
    let error = PluginListener::bind(Transport::Unix, &env_with_socket_dir(&long)).unwrap_err();
    assert!(error.to_string().contains("107 bytes"), "{error}");
}

#[tokio::test]
async fn tcp_listens_on_loopback_within_the_range() {
    let mut env = launch_env();
    // Occupy the first port so the listener has to move on.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let first = taken.local_addr().unwrap().port();
    env.min_port = first;
    env.max_port = first.saturating_add(20);
    let listener = PluginListener::bind(Transport::Tcp, &env).unwrap();
    let ListenAddr::Tcp(addr) = listener.addr else {
        panic!("expected TCP");
    };
    assert!(addr.ip().is_loopback());
    assert!(addr.port() > first && addr.port() <= env.max_port);

    env.max_port = first;
    let error = PluginListener::bind(Transport::Tcp, &env).unwrap_err();
    assert!(error.to_string().contains("no free TCP port"), "{error}");
}
