//! A real `bao server -dev` for a plugin's end-to-end tests: started on a free loopback port
//! with a fresh plugin directory, the plugin installed, registered and enabled, and HTTP and CLI
//! access with the root token. Dropping it stops the server and removes its directory.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{Context, SHA256};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

use super::http;

/// The dev server's root token.
const ROOT_TOKEN: &str = "root";
/// How long the server may take to answer `sys/health` with 200 (it takes about 0.2 s).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long SIGTERM gets before SIGKILL (the server gives its plugins 2 s to exit).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds every HTTP exchange, so a wedged server fails the test instead of hanging it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);
/// Start-ups tried when the chosen port was taken in between.
const START_ATTEMPTS: usize = 3;

/// What went wrong starting the server or mounting a plugin. Its `Debug` is its text, so a
/// test that returns `Result<(), Box<dyn Error>>` or calls `expect` shows it readably.
pub struct ServerError(String);

impl ServerError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

/// The kind of plugin, as the catalog names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// A secrets engine, enabled with `bao secrets enable` (`sys/mounts`).
    Secret,
    /// An auth method, enabled with `bao auth enable` (`sys/auth`); its paths are under
    /// `auth/<path>/`.
    Auth,
}

impl PluginKind {
    /// The catalog's word: `secret` or `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Auth => "auth",
        }
    }
}

/// Chooses the binary and the environment of an [`OpenBao`] dev server.
#[derive(Clone, Debug, Default)]
pub struct OpenBaoBuilder {
    bin: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl OpenBaoBuilder {
    /// The `bao` binary to run, instead of `BAO_BIN` or `bao` on `PATH`.
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = Some(bin.into());
        self
    }

    /// An environment variable for the server, which passes its environment on to every plugin
    /// it runs (say a plugin's own setting, or `BAO_PLUGIN_MULTIPLEXING_OPT_OUT`). The server
    /// otherwise gets the test's environment without its `BAO_*` and `VAULT_*` variables.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts the dev server and waits until it is unsealed and active.
    pub fn start(self) -> Result<OpenBao, ServerError> {
        let bin = find_bao(
            self.bin.as_deref(),
            std::env::var_os("BAO_BIN"),
            std::env::var_os("PATH"),
        )?;
        let mut attempt = 1;
        loop {
            match OpenBao::spawn(&bin, &self.env) {
                Ok(server) => return Ok(server),
                Err((error, port_taken)) if port_taken && attempt < START_ATTEMPTS => {
                    tracing::debug!(%error, "the dev server's port was taken; trying another");
                    attempt += 1;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
}

/// A `bao server -dev` of its own: in memory, unsealed, root token `root`, listening on a free
/// loopback port, with a fresh temporary directory (its `plugin_directory`, its log, the CLI's
/// home). Dropping it stops the server (SIGTERM, then SIGKILL after 10 s) and removes the
/// directory; when the test is panicking, the server log's tail goes to stderr first.
///
/// The binary is `BAO_BIN` when set, else `bao` on `PATH` ([`OpenBaoBuilder::bin`] overrides
/// both). See the [module documentation](super) for an example.
pub struct OpenBao {
    child: Child,
    bin: PathBuf,
    dir: PathBuf,
    plugin_dir: PathBuf,
    home: PathBuf,
    log_path: PathBuf,
    addr: SocketAddr,
}

impl OpenBao {
    /// Starts a dev server with the default [`OpenBaoBuilder`].
    pub fn start() -> Result<Self, ServerError> {
        Self::builder().start()
    }

    /// A builder, to choose the binary or add to the server's environment.
    pub fn builder() -> OpenBaoBuilder {
        OpenBaoBuilder::default()
    }

    /// Starts the server in a fresh directory; the error says whether the port was taken.
    fn spawn(bin: &Path, env: &[(OsString, OsString)]) -> Result<Self, (ServerError, bool)> {
        let fail = |error: ServerError| (error, false);
        let dir = fresh_dir().map_err(fail)?;
        let plugin_dir = dir.join("plugins");
        let home = dir.join("home");
        let log_path = dir.join("server.log");
        let prepared = (|| -> io::Result<fs::File> {
            fs::create_dir(&plugin_dir)?;
            fs::create_dir(&home)?;
            // A quoted HCL string: JSON's escaping is HCL's.
            let plugin_dir_text = Value::from(plugin_dir.to_string_lossy()).to_string();
            fs::write(
                dir.join("config.hcl"),
                format!("plugin_directory = {plugin_dir_text}\n"),
            )?;
            fs::File::create(&log_path)
        })();
        let log = match prepared {
            Ok(log) => log,
            Err(error) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(fail(ServerError::new(format!(
                    "cannot prepare the dev server's directory {}: {error}",
                    dir.display()
                ))));
            }
        };
        let port = free_port().map_err(fail)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));

        let mut command = Command::new(bin);
        scrub_env(&mut command);
        command
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-listen-address={addr}"))
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg("-dev-no-store-token")
            .arg(format!("-config={}", dir.join("config.hcl").display()))
            // Plugins' log lines of every level reach the log.
            .arg("-log-level=trace")
            .env("HOME", &home)
            // Plugins inherit the server's working directory and stdin.
            .current_dir(&dir)
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let output = log
            .try_clone()
            .map(|copy| (Stdio::from(log), Stdio::from(copy)));
        let child = match output
            .and_then(|(stdout, stderr)| command.stdout(stdout).stderr(stderr).spawn())
        {
            Ok(child) => child,
            Err(error) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(fail(ServerError::new(format!(
                    "cannot run {}: {error}",
                    bin.display()
                ))));
            }
        };
        // From here on, dropping the server cleans up.
        let mut server = Self {
            child,
            bin: bin.to_owned(),
            dir,
            plugin_dir,
            home,
            log_path,
            addr,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls `sys/health` until it answers 200 (active and unsealed); an early exit of the
    /// server is an error with its log's tail.
    fn wait_ready(&mut self) -> Result<(), (ServerError, bool)> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                let port_taken = log.contains("address already in use");
                return Err((
                    ServerError::new(format!(
                        "{} server -dev exited during start-up ({status}); its log ends:\n{}",
                        self.bin.display(),
                        tail(&log, 40)
                    )),
                    port_taken,
                ));
            }
            let health = http::send(
                self.addr,
                "GET",
                "/v1/sys/health",
                &[],
                b"",
                Duration::from_secs(5),
            );
            if health.is_ok_and(|answer| answer.status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err((
                    ServerError::new(format!(
                        "{} server -dev was not ready after {START_TIMEOUT:?}; its log ends:\n{}",
                        self.bin.display(),
                        tail(&self.log(), 40)
                    )),
                    false,
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The server's address, `http://127.0.0.1:<port>` (what `BAO_ADDR` takes).
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The root token.
    pub fn token(&self) -> &str {
        ROOT_TOKEN
    }

    /// The `bao` binary the server runs, which [`cli`](Self::cli) runs too.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The server's temporary directory, removed on drop: a place for a test's files (a
    /// policy to write with `@file`, say).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's `plugin_directory`.
    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    /// Everything the server logged so far, its plugins' lines included.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Installs `binary`, registers it in the catalog as `name` and enables it at `path`: the
    /// three steps below.
    pub fn mount_plugin(
        &self,
        binary: impl AsRef<Path>,
        kind: PluginKind,
        name: &str,
        path: &str,
    ) -> Result<(), ServerError> {
        let sha256 = self.install_plugin(binary, name)?;
        self.register_plugin(kind, name, &sha256)?;
        self.enable_plugin(kind, name, path)
    }

    /// Copies `binary` into the plugin directory as `name` (mode 755) and returns its SHA-256
    /// in hex. The copy is renamed into place, so a binary a running plugin executes can be
    /// replaced.
    pub fn install_plugin(
        &self,
        binary: impl AsRef<Path>,
        name: &str,
    ) -> Result<String, ServerError> {
        let binary = binary.as_ref();
        if name.is_empty() || name.contains('/') {
            return Err(ServerError::new(format!(
                "a plugin's name must be a plain file name, not {name:?}"
            )));
        }
        let destination = self.plugin_dir.join(name);
        let staged = self.plugin_dir.join(format!(".{name}.installing"));
        let installed = (|| -> io::Result<String> {
            fs::copy(binary, &staged)?;
            fs::set_permissions(&staged, fs::Permissions::from_mode(0o755))?;
            fs::rename(&staged, &destination)?;
            sha256_hex(&destination)
        })();
        installed.map_err(|error| {
            ServerError::new(format!(
                "cannot install {} as the plugin {name:?}: {error}",
                binary.display()
            ))
        })
    }

    /// Registers the installed plugin `name` in the catalog (`bao plugin register`).
    pub fn register_plugin(
        &self,
        kind: PluginKind,
        name: &str,
        sha256: &str,
    ) -> Result<(), ServerError> {
        let path = format!("sys/plugins/catalog/{}/{name}", kind.as_str());
        let body = json!({"sha256": sha256, "command": name});
        self.expect_success("registering", &path, self.write(&path, body))
    }

    /// Enables the registered plugin `name` at `path` (`bao secrets enable` or
    /// `bao auth enable`).
    pub fn enable_plugin(
        &self,
        kind: PluginKind,
        name: &str,
        path: &str,
    ) -> Result<(), ServerError> {
        let table = match kind {
            PluginKind::Secret => "sys/mounts",
            PluginKind::Auth => "sys/auth",
        };
        let path = format!("{table}/{}", path.trim_matches('/'));
        self.expect_success("enabling", &path, self.write(&path, json!({"type": name})))
    }

    fn expect_success(
        &self,
        doing: &str,
        path: &str,
        (status, body): (u16, Value),
    ) -> Result<(), ServerError> {
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(ServerError::new(format!(
            "{doing} at {path} answered {status}: {body}\n--- the server's log ends:\n{}",
            tail(&self.log(), 30)
        )))
    }

    /// `GET /v1/<path>` with the root token: the status and the body as JSON (`null` when
    /// empty, a string when not JSON).
    pub fn read(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None)
    }

    /// `PUT /v1/<path>` with `body`.
    pub fn write(&self, path: &str, body: Value) -> (u16, Value) {
        self.request("PUT", path, Some(body))
    }

    /// `LIST /v1/<path>`.
    pub fn list(&self, path: &str) -> (u16, Value) {
        self.request("LIST", path, None)
    }

    /// `DELETE /v1/<path>`.
    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.request("DELETE", path, None)
    }

    /// A request of any method to `/v1/<path>` with the root token.
    ///
    /// # Panics
    /// If the exchange fails (no answer within two minutes, or not HTTP); the message ends
    /// with the server's log.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request_as(Some(ROOT_TOKEN), method, path, body)
    }

    /// [`request`](Self::request) with another token, or none at all (a login).
    pub fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(token) = token {
            headers.push(("X-Vault-Token", token));
        }
        let payload = match &body {
            Some(body) => {
                headers.push(("Content-Type", "application/json"));
                body.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let target = format!("/v1/{}", path.trim_start_matches('/'));
        let answer = http::send(self.addr, method, &target, &headers, &payload, HTTP_TIMEOUT)
            .unwrap_or_else(|error| {
                panic!(
                    "{method} {target} to {} failed: {error}\n--- the server's log ends:\n{}",
                    self.addr(),
                    tail(&self.log(), 40)
                )
            });
        let text = String::from_utf8_lossy(&answer.body);
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
        };
        (answer.status, value)
    }

    /// The `bao` CLI aimed at this server: `BAO_ADDR`, `BAO_TOKEN` (the root token) and a
    /// `HOME` of its own set, the test's other `BAO_*` and `VAULT_*` removed, stdin closed.
    /// Change what it needs (`.env("BAO_TOKEN", other)`) and run it.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        scrub_env(&mut command);
        command
            .args(args)
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("HOME", &self.home)
            .stdin(Stdio::null());
        command
    }

    /// Runs the CLI and returns its output, whatever its exit status.
    ///
    /// # Panics
    /// If the binary cannot be run.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.bin.display()))
    }

    /// Runs the CLI and returns what it printed.
    ///
    /// # Panics
    /// If it fails; the message has its output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        successful(args, self.cli(args))
    }

    /// Runs the CLI with JSON output (`BAO_FORMAT=json`) and parses what it printed.
    ///
    /// # Panics
    /// If it fails or does not print JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let output = self
            .cli_command(args)
            .env("BAO_FORMAT", "json")
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.bin.display()));
        let text = successful(args, output);
        serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!("`bao {}` printed no JSON ({error}): {text}", args.join(" "))
        })
    }

    /// SIGTERM, a bounded wait, then SIGKILL.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = kill_process(Pid::from_child(&self.child), Signal::TERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            // Shown only for a failing test.
            eprintln!(
                "--- the OpenBao dev server's log ({}) ends:\n{}",
                self.log_path.display(),
                tail(&self.log(), 60)
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.addr())
            .field("bin", &self.bin)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The `bao` to run: the explicit one, else `BAO_BIN`, else `bao` on `PATH`.
fn find_bao(
    explicit: Option<&Path>,
    bao_bin: Option<OsString>,
    path: Option<OsString>,
) -> Result<PathBuf, ServerError> {
    if let Some(bin) = explicit {
        return if bin.is_file() {
            Ok(bin.to_owned())
        } else {
            Err(ServerError::new(format!(
                "the OpenBao binary {} does not exist",
                bin.display()
            )))
        };
    }
    if let Some(bin) = bao_bin.filter(|bin| !bin.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(ServerError::new(format!(
                "BAO_BIN is {} but there is no such file: set BAO_BIN to the `bao` binary \
                 of OpenBao",
                bin.display()
            )))
        };
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("bao"))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            ServerError::new(
                "OpenBao's `bao` binary was not found: set BAO_BIN to its path, or put the \
                 directory holding it on PATH",
            )
        })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Removes `BAO_*` and `VAULT_*`, which would steer the CLI (it falls back to `VAULT_*`) or the
/// server (and through it every plugin).
fn scrub_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("BAO_") || name.starts_with("VAULT_") {
            command.env_remove(&key);
        }
    }
}

/// A new directory under the system's temporary directory, canonical: the server refuses a
/// plugin directory reached through a symlink.
fn fresh_dir() -> Result<PathBuf, ServerError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    let base = base
        .canonicalize()
        .map_err(|error| ServerError::new(format!("cannot resolve {}: {error}", base.display())))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let dir = base.join(format!(
        "openbao-dev-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    // Not create_dir_all: a clash fails rather than sharing a directory.
    fs::create_dir(&dir)
        .map_err(|error| ServerError::new(format!("cannot create {}: {error}", dir.display())))?;
    Ok(dir)
}

/// A free loopback port, preferably with the next one free too (the dev cluster listener).
fn free_port() -> Result<u16, ServerError> {
    let mut last = None;
    for _ in 0..20 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|error| ServerError::new(format!("no free loopback port: {error}")))?;
        let port = listener.port();
        last = Some(port);
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Ok(port);
        }
    }
    last.ok_or_else(|| ServerError::new("no free loopback port"))
}

fn sha256_hex(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut context = Context::new(&SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        context.update(&buffer[..read]);
    }
    Ok(context
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// What a successful CLI run printed; panics with its output otherwise.
fn successful(args: &[&str], output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`bao {}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir() -> PathBuf {
        fresh_dir().expect("a temporary directory")
    }

    #[test]
    fn without_bao_bin_and_without_bao_on_path_the_error_names_both() {
        let empty = scratch_dir();
        let error = find_bao(None, None, Some(empty.clone().into_os_string()))
            .expect_err("no bao anywhere")
            .to_string();
        assert!(
            error.contains("BAO_BIN") && error.contains("PATH"),
            "{error}"
        );
        let error = find_bao(None, Some(OsString::new()), None)
            .expect_err("an empty BAO_BIN is unset")
            .to_string();
        assert!(
            error.contains("BAO_BIN") && error.contains("PATH"),
            "{error}"
        );
        let _ = fs::remove_dir_all(empty);
    }

    #[test]
    fn a_bao_bin_naming_no_file_is_an_error_naming_it() {
        let error = find_bao(None, Some("/nonexistent/bin/bao".into()), None)
            .expect_err("no such file")
            .to_string();
        assert!(error.contains("BAO_BIN is /nonexistent/bin/bao"), "{error}");
        // The builder's binary comes first, and must exist too.
        let error = OpenBao::builder()
            .bin("/nonexistent/bin/bao")
            .start()
            .expect_err("no such file")
            .to_string();
        assert!(error.contains("/nonexistent/bin/bao"), "{error}");
    }

    #[test]
    fn bao_is_found_in_bao_bin_then_on_path_if_executable() {
        let dir = scratch_dir();
        let bao = dir.join("bao");
        fs::write(&bao, "#!/bin/sh\n").expect("write");
        let path = std::env::join_paths([Path::new("/nonexistent"), &dir]).expect("a PATH");
        // Not executable: not a candidate on PATH.
        assert!(find_bao(None, None, Some(path.clone())).is_err());
        fs::set_permissions(&bao, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(
            find_bao(None, None, Some(path.clone())).ok(),
            Some(bao.clone())
        );
        let other = dir.join("other-bao");
        fs::write(&other, "").expect("write");
        assert_eq!(
            find_bao(None, Some(other.clone().into_os_string()), Some(path)).ok(),
            Some(other)
        );
        let _ = fs::remove_dir_all(dir);
    }

    /// A test may share the server between threads (`std::thread::scope`).
    #[test]
    fn the_server_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<OpenBao>();
        shareable::<ServerError>();
    }

    #[test]
    fn the_digest_is_sha256_in_hex() {
        let dir = scratch_dir();
        let file = dir.join("abc");
        fs::write(&file, "abc").expect("write");
        assert_eq!(
            sha256_hex(&file).expect("digest"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let _ = fs::remove_dir_all(dir);
    }
}
