//! The tutorial *Building Plugin Backends* word for word against a real HashiCorp Vault (the
//! MPL-2.0 1.14 release that `make peers` builds) with the `vault` CLI: the untyped catalog
//! write, `-plugin-name=... plugin`, the refused auth mount, the kv table, disable. Then typed
//! registration with versions and two mounts in one process. (The shared suites also run on
//! Vault with `TEST_SERVER=vault`: `make test-vault`.)

use plugin_test_support::common;
use std::time::Duration;

use common::{DevOptions, DevServer, Flavor};

const PLUGIN: &str = "my-mock-plugin";

fn vault() -> DevServer {
    DevServer::start_with(DevOptions {
        flavor: Flavor::Vault,
        ..DevOptions::default()
    })
}

#[test]
fn the_tutorial_runs_word_for_word_on_vault() {
    let server = vault();
    let version = server.cli_ok(&["version"]);
    assert!(version.starts_with("Vault v1.14."), "{version}");
    let sha = server.install_plugin(PLUGIN);

    let out = server.cli_ok(&[
        "write",
        "sys/plugins/catalog/my-mock-plugin",
        &format!("sha_256={sha}"),
        "command=my-mock-plugin",
    ]);
    assert_eq!(
        out.trim(),
        "Success! Data written to: sys/plugins/catalog/my-mock-plugin"
    );

    let out = server.cli_ok(&[
        "secrets",
        "enable",
        "-path=my-secrets-plugin",
        "-plugin-name=my-mock-plugin",
        "plugin",
    ]);
    assert_eq!(
        out.trim(),
        "Success! Enabled the my-mock-plugin secrets engine at: my-secrets-plugin/"
    );

    // The tutorial shows `cannot mount 'my-mock-plugin' of type 'secret' as an auth method`;
    // Vault 1.14 looks the name up among auth plugins and prints this instead.
    let out = server.cli(&["auth", "enable", "-plugin-name=my-mock-plugin", "plugin"]);
    assert!(!out.status.success());
    let refused = common::lossy(&out.stderr);
    assert!(
        refused.contains("Code: 400. Errors:\n\n* plugin not found in the catalog: my-mock-plugin"),
        "{refused}"
    );

    common::tutorial_kv_table(&server, "my-secrets-plugin");

    let out = server.cli_ok(&["secrets", "disable", "my-secrets-plugin"]);
    assert_eq!(
        out.trim(),
        "Success! Disabled the secrets engine (if it existed) at: my-secrets-plugin/"
    );
    common::wait_until(
        "the plugin to exit after disable",
        Duration::from_secs(5),
        || server.plugin_pids(PLUGIN).is_empty(),
    );
}

#[test]
fn typed_registration_versions_and_two_mounts_in_one_process_on_vault() {
    let server = vault();
    let sha = server.install_plugin(PLUGIN);
    // The Go mock's version: a catalog entry written for it runs ours unchanged.
    let version = "v0.0.0+mock";
    server.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        &format!("-version={version}"),
        "secret",
        PLUGIN,
    ]);
    // A version the binary does not report: Vault runs the plugin at registration and refuses.
    let wrong = server.cli(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "-version=v9.9.9",
        "secret",
        PLUGIN,
    ]);
    assert!(!wrong.status.success());
    let refused = common::lossy(&wrong.stderr);
    assert!(
        refused.contains(
            "* plugin version mismatch: my-mock-plugin reported version (v0.0.0+mock) did not match \
             requested version (v9.9.9)"
        ),
        "{refused}"
    );

    for mount in ["one", "two"] {
        server.cli_ok(&[
            "secrets",
            "enable",
            &format!("-path={mount}"),
            &format!("-plugin-version={version}"),
            PLUGIN,
        ]);
        server.cli_ok(&["write", &format!("{mount}/kv/k"), &format!("value={mount}")]);
    }
    for mount in ["one", "two"] {
        let (status, body) = server.http("GET", &format!("{mount}/kv/k"), None);
        assert_eq!((status, body["data"]["value"].as_str()), (200, Some(mount)));
    }
    let (_, mounts) = server.http("GET", "sys/mounts", None);
    assert_eq!(mounts["data"]["one/"]["running_plugin_version"], version);
    assert_eq!(mounts["data"]["one/"]["plugin_version"], version);
    // A mount pinned to the Go mock's version serves the tutorial's operations.
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=pinned",
        &format!("-plugin-version={version}"),
        PLUGIN,
    ]);
    common::tutorial_kv_table(&server, "pinned");
    assert_eq!(
        server.plugin_pids(PLUGIN).len(),
        1,
        "multiplexed: one process for both mounts"
    );
}
