//! The binary as a person meets it, and memory locking:
//!
//! 1. **By hand** — run without the magic cookie: at a terminal (a pseudo-terminal from
//!    `script`, util-linux/bsdutils) it says what it is, its real SHA-256 and the commands that
//!    register and enable it; without a terminal it keeps the one hclog JSON error line. Exit
//!    status 1 and nothing on stdout either way.
//! 2. **`--version` and `--help`**.
//! 3. **mlock** — when the server asks (`*_PLUGIN_MLOCK_ENABLED=true`) the process's memory is
//!    locked before the handshake (`VmLck` in `/proc/<pid>/status`); without `CAP_IPC_LOCK`
//!    and under a low `RLIMIT_MEMLOCK` (`prlimit` and `setpriv`, util-linux) it exits 1 with
//!    one error line naming the capability, the way out and the OS error.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use plugin_test_support::common;
use serde_json::Value;
use vault_plugin_sdk::internals::{
    BACKEND_COOKIE, HandshakeError, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE,
};

const PLUGIN: &str = env!("CARGO_BIN_EXE_my-mock-plugin");

/// A fresh directory under Cargo's scratch directory for tests (on the same filesystem as the
/// binary, so it can be hard-linked there), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Self {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("by-hand-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `text` in single quotes for `sh -c`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The SHA-256 of `path` as `sha256sum` computes it, independently of the plugin's own code.
fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(output.status.success(), "sha256sum: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let sha = text.split_whitespace().next().unwrap().to_owned();
    assert_eq!(sha.len(), 64, "{text}");
    sha
}

/// Runs `exe` with an environment holding nothing but `PATH`, inside a pseudo-terminal
/// (`script -qec`), its stdout sent to a file so the terminal shows stderr alone. Returns
/// the exit status, what the terminal showed (with `\n` line ends) and what stdout got.
fn run_at_a_terminal(exe: &Path, scratch: &Scratch) -> (Option<i32>, String, Vec<u8>) {
    let stdout_file = scratch.0.join("stdout");
    let command = format!(
        "exec {} >{}",
        sh_quote(&exe.display().to_string()),
        sh_quote(&stdout_file.display().to_string())
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .output()
        .expect("run script (util-linux/bsdutils)");
    let terminal = String::from_utf8(output.stdout)
        .unwrap()
        .replace("\r\n", "\n");
    let stdout = std::fs::read(&stdout_file).unwrap();
    (output.status.code(), terminal, stdout)
}

/// The lines a person needs, for the executable `name` whose SHA-256 is `sha`.
fn expected_lines(name: &str, path: &Path, sha: &str) -> Vec<String> {
    vec![
        format!(
            "{name}: a Vault/OpenBao secrets-engine plugin, the Rust drop-in for the Go mock \
             plugin. The server launches it; it is not meant to be run by hand."
        ),
        format!("SHA-256: {sha}"),
        format!(
            "Version: {} (reports v0.0.0+mock to the server: a catalog entry's -version must \
             name that)",
            env!("CARGO_PKG_VERSION")
        ),
        "Copy it into the server's plugin_directory, then register and enable it with OpenBao \
         or Vault:"
            .to_owned(),
        format!("  cp {} <plugin_directory>/", path.display()),
        format!("  bao plugin register -sha256={sha} secret {name}"),
        format!("  bao secrets enable -path=my-secrets-plugin {name}"),
        format!("  vault plugin register -sha256={sha} secret {name}"),
        format!("  vault secrets enable -path=my-secrets-plugin {name}"),
        format!("  vault write sys/plugins/catalog/{name} sha_256={sha} command={name}"),
        format!("  vault secrets enable -path=my-secrets-plugin -plugin-name={name} plugin"),
    ]
}

fn assert_introduces(terminal: &str, name: &str, path: &Path, sha: &str) {
    let lines: Vec<&str> = terminal.lines().collect();
    for expected in expected_lines(name, path, sha) {
        assert!(
            lines.contains(&expected.as_str()),
            "{expected:?} missing from:\n{terminal}"
        );
    }
    assert!(
        !terminal.contains("{\"@level\""),
        "a person gets plain text, not JSON:\n{terminal}"
    );
}

// =============================================================================================
// 1. By hand

#[test]
fn by_hand_at_a_terminal_tells_its_sha256_and_the_commands() {
    let scratch = Scratch::new("tty");
    let exe = std::fs::canonicalize(PLUGIN).unwrap();
    let (status, terminal, stdout) = run_at_a_terminal(&exe, &scratch);
    assert_eq!(status, Some(1), "{terminal}");
    assert_eq!(stdout, b"", "nothing on stdout");
    assert_introduces(&terminal, "my-mock-plugin", &exe, &sha256sum(&exe));
}

#[test]
fn by_hand_under_another_name_the_commands_use_that_name() {
    let scratch = Scratch::new("renamed");
    // A hard link: the same file under the name a person might give the copy.
    let renamed = scratch.0.join("mock-v2");
    std::fs::hard_link(PLUGIN, &renamed).unwrap();
    let (status, terminal, stdout) = run_at_a_terminal(&renamed, &scratch);
    assert_eq!(status, Some(1), "{terminal}");
    assert_eq!(stdout, b"");
    assert_introduces(&terminal, "mock-v2", &renamed, &sha256sum(&renamed));
    assert!(!terminal.contains("my-mock-plugin"), "{terminal}");
}

/// Exactly one stderr line, parsed as hclog JSON.
fn only_json_line(output: &Output) -> serde_json::Map<String, Value> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one stderr line: {stderr}");
    match serde_json::from_str(lines[0]) {
        Ok(Value::Object(line)) => line,
        _ => panic!("not a JSON object: {}", lines[0]),
    }
}

#[test]
fn by_hand_without_a_terminal_is_one_json_error_line() {
    let output = Command::new(PLUGIN)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(output.stdout, b"", "nothing on stdout");
    let line = only_json_line(&output);
    assert_eq!(line["@level"], "error");
    assert_eq!(
        line["@message"],
        HandshakeError::NotLaunchedByHost(&BACKEND_COOKIE).to_string()
    );
}

// =============================================================================================
// 2. --version and --help

#[test]
fn version_names_the_crate_and_what_the_server_is_told() {
    let crate_version = env!("CARGO_PKG_VERSION");
    for (override_version, reported) in [
        // The Go mock's version, so its catalog entries run this binary unchanged.
        (None, "v0.0.0+mock".to_owned()),
        (Some("v7.7.7"), "v7.7.7".to_owned()),
    ] {
        let mut command = Command::new(PLUGIN);
        command.arg("--version").env_clear();
        if let Some(version) = override_version {
            command.env("TESTING_MOCK_VAULT_PLUGIN_VERSION", version);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(output.stderr, b"");
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            format!("my-mock-plugin {crate_version} (reports {reported} to the server)\n")
        );
    }
}

#[test]
fn help_still_prints_the_usage() {
    let output = Command::new(PLUGIN).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("Usage: my-mock-plugin [OPTIONS]"), "{help}");
    assert!(help.contains("--version"), "{help}");
}

// =============================================================================================
// 3. mlock

/// The environment of a v5 launch (spec §1.2), with a fresh certificate for the server side.
fn launch_env(tmpdir: &Path) -> Vec<(String, String)> {
    let host_cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    [
        (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
        ("PLUGIN_PROTOCOL_VERSIONS", "5"),
        ("BAO_PLUGIN_AUTOMTLS_ENABLED", "true"),
        ("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .chain([
        ("PLUGIN_CLIENT_CERT".to_owned(), host_cert.cert.pem()),
        ("TMPDIR".to_owned(), tmpdir.display().to_string()),
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
    ])
    .collect()
}

/// A plugin launched as the server launches it, killed and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Launches the plugin with `extra` in its environment and returns how much of its memory is
/// locked once its handshake line is out.
fn locked_after_handshake(extra: &[(&str, &str)]) -> u64 {
    let scratch = Scratch::new("mlock");
    let mut plugin = Running(
        Command::new(PLUGIN)
            .env_clear()
            .envs(launch_env(&scratch.0))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut handshake = String::new();
    // Returns at the line, or at end of file if the plugin exits instead.
    BufReader::new(plugin.0.stdout.take().unwrap())
        .read_line(&mut handshake)
        .unwrap();
    assert!(
        handshake.starts_with("1|5|unix|"),
        "{extra:?}: no handshake line but {handshake:?}, stderr: {:?}",
        plugin.0.stderr.take().map(std::io::read_to_string)
    );
    common::status_kib(plugin.0.id(), "VmLck")
}

#[test]
fn mlock_when_the_server_asks_locks_memory_before_the_handshake() {
    assert!(
        common::has_cap_ipc_lock(),
        "this test needs CAP_IPC_LOCK (run it as root): without it mlockall fails beyond \
         RLIMIT_MEMLOCK, which the next test covers"
    );
    for variable in ["VAULT_PLUGIN_MLOCK_ENABLED", "BAO_PLUGIN_MLOCK_ENABLED"] {
        let locked = locked_after_handshake(&[(variable, "true")]);
        assert!(locked > 0, "{variable}=true: VmLck is {locked} kB");
    }
    // Only `true` asks for it, as in Go; nothing is locked otherwise.
    for not_asked in [
        &[][..],
        &[("VAULT_PLUGIN_MLOCK_ENABLED", "false")],
        &[("VAULT_PLUGIN_MLOCK_ENABLED", "1")],
    ] {
        assert_eq!(locked_after_handshake(not_asked), 0, "{not_asked:?}");
    }
}

#[test]
fn mlock_without_the_capability_exits_1_naming_it_and_the_way_out() {
    let exe = std::fs::canonicalize(PLUGIN).unwrap();
    // No limit at all: EPERM; a limit below what the process maps: ENOMEM.
    for (limit, errno) in [("0:0", 1), ("65536:65536", 12)] {
        let scratch = Scratch::new("no-mlock");
        let mut command = Command::new("prlimit");
        command.arg(format!("--memlock={limit}")).arg("--");
        if common::has_cap_ipc_lock() {
            // As root, drop the capability for the plugin (util-linux's setpriv).
            command.args([
                "setpriv",
                "--inh-caps=-ipc_lock",
                "--bounding-set=-ipc_lock",
                "--",
            ]);
        }
        let output = command
            .arg(&exe)
            // Were memory locked after all, the plugin would serve: let it give up soon.
            .args(["--connect-timeout", "1"])
            .env_clear()
            .envs(launch_env(&scratch.0))
            .env("VAULT_PLUGIN_MLOCK_ENABLED", "true")
            .stdin(Stdio::null())
            .output()
            .expect("run prlimit (util-linux)");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{limit}: {:?} {output:?}",
            output.status.signal()
        );
        assert_eq!(output.stdout, b"", "{limit}: nothing on stdout");
        let line = only_json_line(&output);
        assert_eq!(line["@level"], "error", "{limit}");
        let os_error = std::io::Error::from_raw_os_error(errno);
        assert_eq!(
            line["@message"],
            format!(
                "cannot lock the plugin's memory as the server asks \
                 (VAULT_PLUGIN_MLOCK_ENABLED=true): mlockall: {os_error}. Give the binary the \
                 CAP_IPC_LOCK capability (`setcap cap_ipc_lock=+ep {}`), or set \
                 `disable_mlock = true` in the server's configuration.",
                exe.display()
            ),
            "{limit}"
        );
    }
}
