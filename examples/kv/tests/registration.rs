//! How our binary gets mounted as an external kv plugin, on the server `TEST_SERVER` names
//! (OpenBao by default, Vault 1.14.1 with `TEST_SERVER=vault`): the two refusals that rule out
//! the obvious ways, the registration under the name `kv` that the builtin shadows, and the way
//! the harness (`common/mod.rs`) uses, checked in `sys/mounts` and in `secrets list -detailed`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PLUGIN, V1, V2};
use plugin_test_support::common::DevServer;
use plugin_test_support::table::Table;
use serde_json::{Value, json};

/// A mount's entry in `sys/mounts`.
fn mount(server: &DevServer, path: &str) -> Value {
    let (status, answer) = server.http("GET", "sys/mounts", None);
    assert_eq!(status, 200, "sys/mounts: {answer}");
    answer["data"][format!("{path}/")].clone()
}

/// The fields of a mount entry that say what runs it.
fn running(entry: &Value) -> Value {
    json!({
        "type": entry["type"],
        "options": entry["options"],
        "plugin_version": entry["plugin_version"],
        "running_plugin_version": entry["running_plugin_version"],
        "running_sha256": entry["running_sha256"],
    })
}

#[test]
fn our_binary_runs_at_the_harness_mounts_and_the_refused_ways_are_refused() {
    let server = DevServer::start();
    let ours = common::ours_bin();
    let mut table = Table::new("kv registration");

    // A registered version of `kv` cannot be selected: `kv` is the core's own.
    let sha = server.install_file("kv-versioned", &ours);
    server.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "-command=kv-versioned",
        "-version=v0.15.0",
        "secret",
        "kv",
    ]);
    let (status, answer) = server.http(
        "POST",
        "sys/mounts/kv-versioned",
        Some(
            &json!({"type": "kv", "config": {"plugin_version": "v0.15.0"},
                     "options": {"version": "2"}}),
        ),
    );
    table.check(
        "a registered version of kv is refused at enable",
        &(status, answer),
        &(
            400,
            json!({"errors": ["cannot select non-builtin version of secrets plugin kv"]}),
        ),
    );

    // Registered unversioned as `kv`, the catalog takes it but the mount runs the builtin.
    server.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "-command=kv-versioned",
        "secret",
        "kv",
    ]);
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=shadowed",
        "-options=version=2",
        "kv",
    ]);
    let entry = mount(&server, "shadowed");
    let builtin = entry["running_plugin_version"]
        .as_str()
        .is_some_and(|version| version.contains("+builtin"));
    table.case(
        "an unversioned kv registration is shadowed by the builtin",
        if builtin && entry["running_sha256"] == "" {
            Ok(())
        } else {
            Err(format!("sys/mounts says {}", running(&entry)))
        },
    );
    table.check(
        "no process runs the binary registered as kv",
        &server.plugin_pids("kv-versioned"),
        &Vec::new(),
    );

    // Under another name, options.version is refused at enable, whatever its value.
    let sha = common::install(&server, &ours);
    for version in ["2", "1"] {
        let (status, answer) = server.http(
            "POST",
            &format!("sys/mounts/refused-{version}"),
            Some(&json!({"type": PLUGIN, "options": {"version": version}})),
        );
        table.check(
            format!("options.version={version} is refused for a plugin not named kv"),
            &(status, answer),
            &(
                400,
                json!({"errors": [format!("secrets engine \"{PLUGIN}\" does not allow setting a version")]}),
            ),
        );
    }

    // The harness's way: enabled bare (version 1), or enabled bare and tuned to version 2.
    common::enable_v2(&server, V2);
    common::enable_v1(&server, V1);
    let expected = |options: Value| {
        json!({
            "type": PLUGIN,
            "options": options,
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": sha,
        })
    };
    table.check(
        "sys/mounts: kv2 runs our binary with options.version 2",
        &running(&mount(&server, V2)),
        &expected(json!({"version": "2"})),
    );
    table.check(
        "sys/mounts: kv1 runs our binary with no options",
        &running(&mount(&server, V1)),
        &expected(Value::Null),
    );
    let listed = server.cli_json(&["secrets", "list"], &["-detailed"]);
    table.check(
        "secrets list -detailed: kv2 and kv1 run our binary",
        &[running(&listed["kv2/"]), running(&listed["kv1/"])],
        &[expected(json!({"version": "2"})), expected(Value::Null)],
    );
    table.check(
        "a process of our binary serves the mounts",
        &server.plugin_pids(PLUGIN).is_empty(),
        &false,
    );

    // The CLI's preflight reads the options, so `kv` commands treat kv2 as version 2.
    let (status, answer) = server.http("GET", "sys/internal/ui/mounts/kv2", None);
    table.check(
        "sys/internal/ui/mounts/kv2: version 2 for the kv CLI",
        &(status, answer["data"]["options"].clone()),
        &(200, json!({"version": "2"})),
    );

    // A second tune to version 2 changes nothing and warns nothing; a downgrade is refused.
    let tune = |version: &str| {
        server.http(
            "POST",
            "sys/mounts/kv2/tune",
            Some(&json!({"options": {"version": version}})),
        )
    };
    let (status, answer) = tune("2");
    table.check(
        "tuning kv2 to version 2 again: no upgrade",
        &(status, answer["warnings"].clone()),
        &(204, Value::Null),
    );
    table.check(
        "tuning kv2 to version 1: refused",
        &tune("1"),
        &(
            400,
            json!({"errors": ["cannot downgrade mount from version 2"]}),
        ),
    );
    table.finish();
}
