//! Plugin distribution on OpenBao 2.7.2: the project's OCI images (`make image`) in a private
//! registry on loopback, and servers whose configuration declares the plugins
//! (`plugin "TYPE" "NAME" { ... }`) instead of registering them by hand.
//!
//! 1. The layouts `make image` writes: one linux/amd64 image per plugin binary, the binary at
//!    the root (mode 0755), `ENTRYPOINT` naming it, version and source labels.
//! 2. Declared by `image` with `plugin_auto_download` and `plugin_auto_register`: the server
//!    downloads the images at start-up, registers them with the declared version, and the
//!    mounts work (the mock's tutorial table, leased-passwords' credentials, static-auth's
//!    login; the PostgreSQL plugin registered as a database plugin).
//! 3. Declared by `command`: the binary already in `plugin_directory`, no image.
//! 4. Failures, under both `plugin_download_behavior` values: a wrong `sha256sum`, a missing
//!    tag, an unreachable registry, an image without the binary, each with the server's exact
//!    message (docs/distribution.md's troubleshooting table).
//! 5. A new version declared and the server sent SIGHUP: downloaded and registered without a
//!    restart; the mount moved to it (`secrets tune -plugin-version`, `plugin reload`) keeps
//!    its data.
//!
//! The mock reports `v0.0.0+mock` (the Go mock's version) unless
//! `TESTING_MOCK_VAULT_PLUGIN_VERSION` says otherwise, and the server refuses a declared
//! version the plugin does not report: its stanzas pass the version in `env`.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use plugin_test_support::common::{self, fresh_temp_dir, keep_dirs};
use plugin_test_support::registry::{
    DeclaredServer, Outcome, Registry, field, image_layout, inspect, oci,
};

const MOCK: &str = "my-mock-plugin";
const VERSION_ENV: &str = "TESTING_MOCK_VAULT_PLUGIN_VERSION";
const WAIT: Duration = Duration::from_secs(60);

/// The plugin binaries `make image` builds an image for, with their packages' manifests.
const PLUGINS: [(&str, &str); 4] = [
    (MOCK, "Cargo.toml"),
    ("leased-passwords", "examples/leased-passwords/Cargo.toml"),
    ("static-auth", "examples/static-auth/Cargo.toml"),
    (
        "postgresql-database-plugin",
        "examples/postgresql/Cargo.toml",
    ),
];

/// `v` + the `version` of a package's manifest: the tag of its image.
fn tag_of(manifest: &str) -> String {
    let text = fs::read_to_string(common::project_root().join(manifest)).unwrap();
    let version = text
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no version in {manifest}"));
    format!("v{version}")
}

/// The image of `binary`, pushed to `registry` as `plugins/<binary>:<tag>`: its reference, its
/// manifest digest and the SHA-256 of the binary in it.
struct Pushed {
    reference: String,
    digest: String,
    sha256: String,
}

fn push(registry: &Registry, binary: &str) -> Pushed {
    let manifest = PLUGINS.iter().find(|(b, _)| *b == binary).unwrap().1;
    let tag = tag_of(manifest);
    let layout = image_layout(binary);
    let fields = inspect(&layout, &tag);
    let (reference, digest) = registry.push(&layout, &tag, &format!("plugins/{binary}"), &tag);
    assert_eq!(digest, field(&fields, "manifest"));
    Pushed {
        reference,
        digest,
        sha256: field(&fields, "binary-sha256").to_owned(),
    }
}

/// The tutorial's kv table at `mount`, through the declared server's CLI.
fn kv_table(server: &DeclaredServer, mount: &str) {
    common::tutorial_kv_table_through(|args| server.cli_ok(args), mount);
}

/// The catalog entry of a declared plugin.
fn catalog(server: &DeclaredServer, kind: &str, name: &str, version: &str) -> serde_json::Value {
    server.cli_json(
        &["read"],
        &[
            &format!("sys/plugins/catalog/{kind}/{name}"),
            &format!("version={version}"),
        ],
    )["data"]
        .clone()
}

/// Whether the catalog has no entry for `name` at `version` (`bao read` exits 2 and says so).
fn not_in_catalog(server: &DeclaredServer, kind: &str, name: &str, version: &str) -> bool {
    let out = server.cli(&[
        "read",
        &format!("sys/plugins/catalog/{kind}/{name}"),
        &format!("version={version}"),
    ]);
    out.status.code() == Some(2) && common::lossy(&out.stderr).contains("No value found")
}

/// The running version of the mount at `path` (`secrets list -detailed`).
fn running_version(server: &DeclaredServer, path: &str) -> String {
    let mounts = server.cli_json(&["secrets", "list"], &["-detailed"]);
    mounts[format!("{path}/")]["running_plugin_version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn make_image_writes_one_linux_amd64_image_per_plugin_binary() {
    for (binary, manifest) in PLUGINS {
        let tag = tag_of(manifest);
        let fields = inspect(&image_layout(binary), &tag);
        assert_eq!(field(&fields, "os"), "linux", "{binary}");
        assert_eq!(field(&fields, "arch"), "amd64", "{binary}");
        assert_eq!(field(&fields, "entrypoint"), format!("/{binary}"));
        // The binary alone, at the root, executable.
        assert_eq!(field(&fields, "files"), binary);
        assert_eq!(field(&fields, "mode"), "755", "{binary}");
        assert_eq!(field(&fields, "binary-sha256").len(), 64, "{binary}");
        assert_eq!(format!("v{}", field(&fields, "version")), tag);
        assert!(
            !field(&fields, "source").is_empty(),
            "{binary}: no source label"
        );
        assert!(field(&fields, "manifest").starts_with("sha256:"));
    }
}

#[test]
fn plugins_declared_by_image_are_downloaded_registered_and_served() {
    let registry = Registry::start();
    let mock = push(&registry, MOCK);
    let leased = push(&registry, "leased-passwords");
    let auth = push(&registry, "static-auth");
    let database = push(&registry, "postgresql-database-plugin");
    let mut server = DeclaredServer::new();
    server.write_config(&format!(
        "plugin_auto_download = true\nplugin_auto_register = true\n\
         plugin \"secret\" \"{MOCK}\" {{\n  image = \"{}\"\n  sha256sum = \"{}\"\n  \
         env = [\"{VERSION_ENV}=v0.1.0\"]\n}}\n\
         plugin \"secret\" \"leased-passwords\" {{\n  image = \"{}\"\n  sha256sum = \"{}\"\n}}\n\
         plugin \"auth\" \"static-auth\" {{\n  image = \"{}\"\n  sha256sum = \"{}\"\n}}\n\
         plugin \"database\" \"postgresql-database-plugin\" {{\n  image = \"{}\"\n  sha256sum = \"{}\"\n}}\n",
        mock.reference,
        mock.sha256,
        leased.reference,
        leased.sha256,
        auth.reference,
        auth.sha256,
        database.reference,
        database.sha256,
    ));
    server.spawn_up();
    let log = server.log_text();
    for (kind, name, pushed) in [
        ("secret", MOCK, &mock),
        ("secret", "leased-passwords", &leased),
        ("auth", "static-auth", &auth),
        ("database", "postgresql-database-plugin", &database),
    ] {
        // Downloaded into the cache under the manifest digest, linked as TYPE-NAME-VERSION.
        let link = server.plugin_dir().join(format!("{kind}-{name}-v0.1.0"));
        assert!(
            log.contains(&format!(
                "downloaded plugin: plugin={kind}-{name} cached_path={}/.oci-cache/{} symlink_path={}",
                server.plugin_dir().display(),
                pushed.digest,
                link.display()
            )),
            "{name}: no download line"
        );
        assert_eq!(common::sha256_file(&link), pushed.sha256);
        assert!(log.contains(&format!(
            "registering new declarative plugin: name={name} type={kind} version=v0.1.0 sha256={}",
            pushed.sha256
        )));
        let entry = catalog(&server, kind, name, "v0.1.0");
        assert_eq!(entry["oci"], true, "{name}: {entry}");
        assert_eq!(entry["declarative"], true, "{name}: {entry}");
        assert_eq!(entry["version"], "v0.1.0", "{name}: {entry}");
        assert_eq!(entry["sha256"], pushed.sha256.as_str(), "{name}: {entry}");
        assert_eq!(entry["command"], format!("{kind}-{name}-v0.1.0"), "{name}");
    }

    // The tutorial on a mount of the mock, which runs the declared version.
    server.cli_ok(&["secrets", "enable", "-path=my-secrets-plugin", MOCK]);
    assert_eq!(running_version(&server, "my-secrets-plugin"), "v0.1.0");
    kv_table(&server, "my-secrets-plugin");

    // leased-passwords: a role and a credential under a lease (the password is not printed).
    server.cli_ok(&["secrets", "enable", "-path=pw", "leased-passwords"]);
    server.cli_ok(&["write", "pw/roles/web", "ttl=1h", "length=32"]);
    let creds = server.cli_json(&["read"], &["pw/creds/web"]);
    assert_eq!(creds["data"]["password"].as_str().map(str::len), Some(32));
    assert!(
        creds["lease_id"]
            .as_str()
            .unwrap()
            .starts_with("pw/creds/web/")
    );
    assert_eq!(creds["lease_duration"], 3600);

    // static-auth, declared as `auth`: a user logs in.
    server.cli_ok(&["auth", "enable", "-path=users", "static-auth"]);
    server.cli_ok(&[
        "write",
        "auth/users/users/alice",
        "password=s3cret",
        "policies=dev",
    ]);
    let login = server.cli_json(
        &["write"],
        &["auth/users/login", "username=alice", "password=s3cret"],
    );
    assert_eq!(
        login["auth"]["policies"],
        serde_json::json!(["default", "dev"])
    );
    assert_eq!(login["auth"]["metadata"]["username"], "alice");
}

#[test]
fn a_declared_command_plugin_runs_from_the_plugin_directory() {
    let mut server = DeclaredServer::new();
    let sha256 = common::install_executable(
        &server.plugin_dir(),
        MOCK,
        Path::new(env!("CARGO_BIN_EXE_my-mock-plugin")),
    );
    server.write_config(&format!(
        "plugin \"secret\" \"{MOCK}\" {{\n  command = \"{MOCK}\"\n  version = \"v0.1.0\"\n  \
         sha256sum = \"{sha256}\"\n  env = [\"{VERSION_ENV}=v0.1.0\"]\n}}\n"
    ));
    server.spawn_up();
    assert!(server.log_text().contains(&format!(
        "registering new declarative plugin: name={MOCK} type=secret version=v0.1.0 sha256={sha256}"
    )));
    let entry = catalog(&server, "secret", MOCK, "v0.1.0");
    assert_eq!(entry["oci"], false, "{entry}");
    assert_eq!(entry["declarative"], true, "{entry}");
    assert_eq!(entry["command"], MOCK, "{entry}");
    server.cli_ok(&["secrets", "enable", "-path=my-secrets-plugin", MOCK]);
    assert_eq!(running_version(&server, "my-secrets-plugin"), "v0.1.0");
    kv_table(&server, "my-secrets-plugin");
}

#[test]
fn download_failures_stop_the_server_with_its_exact_message_under_both_behaviours() {
    let registry = Registry::start();
    let mock = push(&registry, MOCK);
    let host = registry.host();
    // An image whose ENTRYPOINT names the plugin but whose only file is another one.
    let scratch = fresh_temp_dir("oci-nobin");
    let nobin = scratch.join("layout");
    oci(&[
        "build",
        "-binary",
        &common::project_root().join("Cargo.toml").to_string_lossy(),
        "-file-name",
        "README",
        "-name",
        MOCK,
        "-version",
        "0.1.0",
        "-out",
        &nobin.to_string_lossy(),
    ]);
    let (nobin_ref, _) = registry.push(&nobin, "v0.1.0", "plugins/nobin", "v0.1.0");
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong = "0".repeat(64);
    let cases: [(&str, String, &str, String); 4] = [
        (
            "a wrong sha256sum",
            mock.reference.clone(),
            &wrong,
            format!(
                "plugin hash mismatch: expected {wrong}, got {}",
                mock.sha256
            ),
        ),
        (
            "a missing tag",
            format!("{host}/plugins/{MOCK}:v9.9.9"),
            &mock.sha256,
            format!(
                "failed to fetch OCI descriptor: GET http://{host}/v2/plugins/{MOCK}/manifests/v9.9.9: \
                 MANIFEST_UNKNOWN: manifest unknown; map[Tag:v9.9.9]"
            ),
        ),
        (
            "an unreachable registry",
            format!("127.0.0.1:{closed}/plugins/{MOCK}:v0.1.0"),
            &mock.sha256,
            format!(
                "failed to fetch OCI descriptor: Get \"https://127.0.0.1:{closed}/v2/\": dial tcp \
                 127.0.0.1:{closed}: connect: connection refused; Get \"http://127.0.0.1:{closed}/v2/\": \
                 dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ),
        ),
        (
            "an image without the binary",
            nobin_ref,
            &mock.sha256,
            format!(
                "failed to extract plugin from OCI image: binary \"{MOCK}\" not found in root of OCI image"
            ),
        ),
    ];
    for (what, image, sha256, message) in &cases {
        let version = image.rsplit_once(':').unwrap().1;
        for behaviour in ["fail", "continue"] {
            let mut server = DeclaredServer::new();
            server.write_config(&format!(
                "plugin_auto_download = true\nplugin_download_behavior = \"{behaviour}\"\n\
                 plugin \"secret\" \"{MOCK}\" {{\n  image = \"{image}\"\n  sha256sum = \"{sha256}\"\n  \
                 env = [\"{VERSION_ENV}={version}\"]\n}}\n"
            ));
            let outcome = server.spawn();
            assert!(
                matches!(outcome, Outcome::Exited(status) if status.code() == Some(1)),
                "{what}, {behaviour}: {outcome:?}"
            );
            let log = server.log_text();
            if behaviour == "fail" {
                // The download aborts the start-up.
                let line = format!(
                    "Error downloading plugins: failed to download plugin \"secret-{MOCK}\": {message}"
                );
                assert!(log.contains(&line), "{what}, fail: no {line:?} in\n{log}");
            } else {
                // A warning, then the registration of the missing binary fails the unseal
                // (`plugin_auto_register` is on by default in 2.7.2), which ends a dev server.
                let quoted = message.replace('"', "\\\"");
                let warning = format!(
                    "[WARN]  plugins: failed to download plugin: plugin=secret-{MOCK} error=\"{quoted}\""
                );
                assert!(
                    log.contains(&warning),
                    "{what}, continue: no {warning:?} in\n{log}"
                );
                let refusal = format!(
                    "Error initializing Dev mode: failed to set up declarative plugins: [plugin 0 \
                     (name: {MOCK} / type: secret)]: failed to register new plugin: error while \
                     validating the command path: lstat {}/secret-{MOCK}-{version}: no such file or directory",
                    server.plugin_dir().display()
                );
                assert!(
                    log.contains(&refusal),
                    "{what}, continue: no {refusal:?} in\n{log}"
                );
            }
        }
    }
    // `continue` without auto-registration: the server starts without the plugin.
    let mut server = DeclaredServer::new();
    server.write_config(&format!(
        "plugin_auto_download = true\nplugin_download_behavior = \"continue\"\n\
         plugin_auto_register = false\n\
         plugin \"secret\" \"{MOCK}\" {{\n  image = \"{}\"\n  sha256sum = \"{}\"\n}}\n",
        cases[2].1, mock.sha256
    ));
    server.spawn_up();
    assert!(
        not_in_catalog(&server, "secret", MOCK, "v0.1.0"),
        "the skipped plugin is in the catalog"
    );
    drop(server);
    if !keep_dirs() {
        let _ = fs::remove_dir_all(&scratch);
    }
}

#[test]
fn a_new_version_declared_is_served_after_sighup_and_a_reload() {
    let registry = Registry::start();
    let v1 = push(&registry, MOCK);
    let stanza = |image: &str, sha256: &str, version: &str| {
        format!(
            "plugin \"secret\" \"{MOCK}\" {{\n  image = \"{image}\"\n  sha256sum = \"{sha256}\"\n  \
             env = [\"{VERSION_ENV}={version}\"]\n}}\n"
        )
    };
    let mut server = DeclaredServer::new();
    let head = "plugin_auto_download = true\n";
    server.write_config(&format!(
        "{head}{}",
        stanza(&v1.reference, &v1.sha256, "v0.1.0")
    ));
    server.spawn_up();
    server.cli_ok(&["secrets", "enable", "-path=my-secrets-plugin", MOCK]);
    server.cli_ok(&["write", "my-secrets-plugin/kv/foo", "value=bar"]);
    assert_eq!(running_version(&server, "my-secrets-plugin"), "v0.1.0");

    // v0.2.0: the same binary under a new tag and version label (a new manifest).
    let scratch = fresh_temp_dir("oci-v2");
    let layout = scratch.join("layout");
    let binary = server.plugin_dir().join(format!("secret-{MOCK}-v0.1.0"));
    oci(&[
        "build",
        "-binary",
        &binary.to_string_lossy(),
        "-name",
        MOCK,
        "-version",
        "0.2.0",
        "-out",
        &layout.to_string_lossy(),
    ]);
    let (v2_ref, v2_digest) =
        registry.push(&layout, "v0.2.0", &format!("plugins/{MOCK}"), "v0.2.0");
    assert_ne!(v2_digest, v1.digest);
    server.write_config(&format!(
        "{head}{}{}",
        stanza(&v1.reference, &v1.sha256, "v0.1.0"),
        stanza(&v2_ref, &v1.sha256, "v0.2.0")
    ));
    server.hup();
    server.wait_for_log(
        &format!("registering new declarative plugin: name={MOCK} type=secret version=v0.2.0"),
        1,
        WAIT,
    );
    let entry = catalog(&server, "secret", MOCK, "v0.2.0");
    assert_eq!(entry["version"], "v0.2.0", "{entry}");
    // The mount stays on v0.1.0 until told; then a reload starts the new version.
    assert_eq!(running_version(&server, "my-secrets-plugin"), "v0.1.0");
    server.cli_ok(&[
        "secrets",
        "tune",
        "-plugin-version=v0.2.0",
        "my-secrets-plugin",
    ]);
    server.cli_ok(&["plugin", "reload", &format!("-plugin={MOCK}")]);
    assert_eq!(running_version(&server, "my-secrets-plugin"), "v0.2.0");
    let read = server.cli_json(&["read"], &["my-secrets-plugin/kv/foo"]);
    assert_eq!(read["data"]["value"], "bar", "{read}");

    // v0.1.0 no longer declared: its entry goes at the next SIGHUP; the mount keeps serving.
    server.write_config(&format!("{head}{}", stanza(&v2_ref, &v1.sha256, "v0.2.0")));
    server.hup();
    common::wait_until("the v0.1.0 entry to go", WAIT, || {
        not_in_catalog(&server, "secret", MOCK, "v0.1.0")
    });
    let read = server.cli_json(&["read"], &["my-secrets-plugin/kv/foo"]);
    assert_eq!(read["data"]["value"], "bar", "{read}");
    drop(server);
    if !keep_dirs() {
        let _ = fs::remove_dir_all(&scratch);
    }
}
