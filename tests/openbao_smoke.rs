//! Smoke tests of the OpenBao test harness itself; none of them needs a working plugin.

use common::{DevServer, cmdline, parent_pid, pid_alive, wait_until};
use plugin_test_support::common;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn dev_server_starts_and_answers() {
    let srv = DevServer::start();

    let (status, health) = srv.http("GET", "sys/health", None);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["sealed"], json!(false));
    assert_eq!(health["version"], json!("2.7.2"));

    // The plugin directory comes from our config file, not from -dev-plugin-dir.
    let (status, cfg) = srv.http("GET", "sys/config/state/sanitized", None);
    assert_eq!(status, 200, "{cfg}");
    assert_eq!(
        cfg["data"]["plugin_directory"],
        json!(srv.plugin_dir().to_str())
    );
    let field = srv.cli_ok(&[
        "read",
        "-field=plugin_directory",
        "sys/config/state/sanitized",
    ]);
    assert_eq!(field.trim(), srv.plugin_dir().to_str().expect("utf-8 path"));

    // Without a token the API refuses; the HTTP exchange and header parsing work.
    let (status, headers, body) = srv.http_raw("GET", "/v1/sys/mounts", &[], b"");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("json"))
    );

    // A write with a JSON body and an empty (204) response.
    let (status, body) = srv.http(
        "POST",
        "sys/policies/acl/smoke",
        Some(&json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
    );
    assert_eq!((status, body), (204, serde_json::Value::Null));

    // -dev-no-store-token: nothing written to the sandboxed HOME.
    assert!(!srv.dir().join("home/.vault-token").exists());
    assert!(srv.log_text().contains("OpenBao server started!"));
}

#[test]
fn registration_with_wrong_sha256_fails_at_mount() {
    let srv = DevServer::start();
    let sha = srv.install_plugin("my-mock-plugin");
    assert_eq!(sha.len(), 64);

    // Typed registration only probes the version (best effort), so a wrong checksum is accepted
    // here and rejected when the plugin is about to be executed.
    let wrong = "0".repeat(64);
    srv.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={wrong}"),
        "-command=my-mock-plugin",
        "secret",
        "bad-sum",
    ]);
    let out = srv.cli(&["secrets", "enable", "-path=bad", "bad-sum"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checksums did not match"), "{stderr}");

    // Files outside the plugin directory are refused at registration.
    let (status, body) = srv.http(
        "PUT",
        "sys/plugins/catalog/secret/escape",
        Some(&json!({"sha256": sha, "command": "../plugins/my-mock-plugin"})),
    );
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("parent references"), "{body}");

    // A missing file is reported with its resolved path.
    let out = srv.cli(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "secret",
        "not-installed",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = srv.plugin_dir().join("not-installed");
    assert!(stderr.contains(&expected.display().to_string()), "{stderr}");
}

#[test]
fn plugin_processes_are_children_and_orphans_are_cleaned_up() {
    let mut srv = DevServer::start();
    // A fake plugin that never handshakes: the server waits for it, so it is observable.
    let script = srv.dir().join("sleeper.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").expect("write script");
    let sha = srv.install_file("sleeper", &script);
    let mut register = srv
        .cli_cmd(&[
            "plugin",
            "register",
            &format!("-sha256={sha}"),
            "secret",
            "sleeper",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bao plugin register");

    let mut plugin = 0;
    wait_until(
        "a sleeper child of the server",
        Duration::from_secs(20),
        || {
            plugin = srv
                .child_pids()
                .into_iter()
                .find(|&p| cmdline(p).contains("sleep 60"))
                .unwrap_or(0);
            plugin != 0
        },
    );
    assert_eq!(parent_pid(plugin), Some(srv.pid()));

    // A SIGKILLed server leaves its plugin running (reparented) ...
    srv.signal("KILL");
    assert!(
        srv.wait_exit(Duration::from_secs(10)).is_some(),
        "server survived SIGKILL"
    );
    assert!(pid_alive(plugin), "plugin died with the server");
    assert_ne!(parent_pid(plugin), Some(srv.pid()));

    // ... and the harness still cleans it up.
    drop(srv);
    assert!(
        !pid_alive(plugin),
        "plugin process {plugin} outlived the harness"
    );
    let _ = register.kill();
    let _ = register.wait();
}
