//! Plugin distribution (`tests/distribution.rs`): a private OCI registry on loopback, the
//! project's OCI images (`make image`) pushed to it, and an OpenBao server started on a
//! configuration of its own that declares plugins (`plugin "TYPE" "NAME" { ... }`).
//!
//! * [`Registry`]: Debian's `docker-registry` (distribution 2.8) on `127.0.0.1:<free port>`,
//!   filesystem storage in a fresh temp dir, no auth; stopped (SIGTERM, bounded wait, SIGKILL)
//!   and its dir removed when dropped. OpenBao pulls from loopback registries over plain HTTP.
//! * [`oci_tool`], [`image_layout`], [`inspect`]: `scripts/oci-image` as `make image` builds it,
//!   and the layouts it writes under `target/oci/<binary>/`.
//! * [`DeclaredServer`]: `bao server -dev` on a configuration the test writes whole (its own
//!   `plugin_directory`, filled before start when a stanza names a `command`), which may exit
//!   during start-up: [`DeclaredServer::outcome`] says whether it came up or how it ended.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    ROOT_TOKEN, bao_bin, children_of, file_text, fresh_temp_dir, keep_dirs, kill_pid, last_lines,
    lossy, project_root, scrub_env, send_signal, start_time, stdout_ok, wait_until,
};
use crate::http;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `docker-registry`: `$REGISTRY_BIN`, else on `PATH`, else Debian's `/usr/bin/docker-registry`.
pub fn registry_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("REGISTRY_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("docker-registry"))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "docker-registry not found (REGISTRY_BIN, PATH, /usr/bin): run `make deps`, which \
             installs Debian's docker-registry package"
        )
    })
}

/// The image tool `make image` builds (`scripts/oci-image` into `target/oci-tool/`).
pub fn oci_tool() -> PathBuf {
    let path = project_root().join("target/oci-tool/oci-image");
    assert!(
        path.is_file(),
        "{} is missing: run `make image`",
        path.display()
    );
    path
}

/// The OCI image layout `make image` wrote for `binary`.
pub fn image_layout(binary: &str) -> PathBuf {
    let path = project_root().join("target/oci").join(binary);
    assert!(
        path.join("index.json").is_file(),
        "no OCI image layout at {}: run `make image`",
        path.display()
    );
    path
}

/// Runs the image tool; stdout of a run that must succeed.
pub fn oci(args: &[&str]) -> String {
    let out = Command::new(oci_tool())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run oci-image");
    stdout_ok(&format!("oci-image {}", args.join(" ")), &out)
}

/// `oci-image inspect` of the image tagged `tag` in `layout`, as `key=value` pairs
/// (`manifest`, `binary-sha256`, `mode`, `os`, `arch`, `entrypoint`, `version`, `source`,
/// `files`).
pub fn inspect(layout: &Path, tag: &str) -> Vec<(String, String)> {
    let text = oci(&["inspect", "-layout", &layout.to_string_lossy(), "-tag", tag]);
    text.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One field of [`inspect`]'s answer.
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// A port that was free a moment ago on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Stops a child: SIGTERM, bounded wait, SIGKILL; returns how it ended.
fn stop_child(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// A private `docker-registry` on loopback.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    host: String,
}

impl Registry {
    /// Starts a registry and waits (bounded) until `GET /v2/` answers 200.
    pub fn start() -> Self {
        let bin = registry_bin();
        let dir = fresh_temp_dir("oci-registry");
        let data = dir.join("data");
        fs::create_dir(&data).expect("create registry data dir");
        let log = dir.join("registry.log");
        // A port taken between the probe and the registry's bind makes it exit: try again.
        for _ in 0..5 {
            let host = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                data.display()
            );
            fs::write(dir.join("config.yml"), config).expect("write registry config");
            let out = fs::File::create(&log).expect("create registry log");
            let err = out.try_clone().expect("clone registry log");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(dir.join("config.yml"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            if registry_ready(&mut child, &host, &log) {
                return Self { child, dir, host };
            }
            stop_child(&mut child);
        }
        panic!(
            "docker-registry did not come up on loopback in 5 tries; log:\n{}",
            lossy(&fs::read(&log).unwrap_or_default())
        );
    }

    /// `127.0.0.1:<port>`, what an image reference starts with.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn log_text(&self) -> String {
        file_text(&self.dir.join("registry.log"))
    }

    /// Pushes the image tagged `tag` in `layout` as `<host>/<repo>:<push_tag>`; returns the
    /// reference pulled by name (`<host>/<repo>:<push_tag>`) and the manifest digest.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, push_tag: &str) -> (String, String) {
        let reference = format!("{}/{repo}:{push_tag}", self.host);
        let out = oci(&[
            "push",
            "-layout",
            &layout.to_string_lossy(),
            "-tag",
            tag,
            "-to",
            &reference,
        ]);
        let digest = out
            .trim()
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_else(|| panic!("oci-image push printed no digest: {out}"));
        // What the registry serves is what was pushed.
        let manifest = http::request_once(
            &self.host,
            "HEAD",
            &format!("/v2/{repo}/manifests/{push_tag}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            b"",
            Duration::from_secs(10),
        )
        .expect("HEAD the pushed manifest");
        assert_eq!(manifest.status, 200, "{reference} not in the registry");
        let served = manifest
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("docker-content-digest"))
            .map(|(_, v)| v.clone());
        assert_eq!(served.as_deref(), Some(digest.as_str()), "registry digest");
        (reference, digest)
    }
}

/// True once the registry at `host` answers `GET /v2/` with 200; false if it exited first.
fn registry_ready(child: &mut Child, host: &str, log: &Path) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let answer = http::request_once(host, "GET", "/v2/", &[], b"", Duration::from_secs(5));
        if answer.is_ok_and(|a| a.status == 200) {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry at {host} not ready after {START_TIMEOUT:?}; log:\n{}",
            lossy(&fs::read(log).unwrap_or_default())
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "--- docker-registry log ({}):\n{}",
                self.host,
                self.log_text()
            );
        }
        if keep_dirs() {
            eprintln!("KEEP_TEST_DIRS: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// How a server's start-up ended.
#[derive(Debug)]
pub enum Outcome {
    /// `sys/health` answered 200.
    Up,
    /// The process exited first.
    Exited(ExitStatus),
}

/// `bao server -dev` on a configuration the test writes: `plugin_directory` is
/// [`DeclaredServer::plugin_dir`], created empty before [`DeclaredServer::new`] returns so
/// binaries can be put there before [`DeclaredServer::spawn`].
pub struct DeclaredServer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl DeclaredServer {
    pub fn new() -> Self {
        let dir = fresh_temp_dir("bao-declared");
        fs::create_dir(dir.join("plugins")).expect("create plugin dir");
        fs::create_dir(dir.join("home")).expect("create home dir");
        Self {
            child: None,
            dir,
            port: 0,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    /// Writes `config.hcl`: `plugin_directory` followed by `rest`.
    pub fn write_config(&self, rest: &str) {
        let config = format!(
            "plugin_directory = {:?}\n{rest}",
            self.plugin_dir().to_string_lossy()
        );
        fs::write(self.dir.join("config.hcl"), config).expect("write config");
    }

    /// Starts the server on `config.hcl` (log appended to `server.log`) and waits for the
    /// [`Outcome`].
    pub fn spawn(&mut self) -> Outcome {
        assert!(self.child.is_none(), "already running");
        self.port = free_port();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("open server log");
        let log_err = log.try_clone().expect("clone log");
        let mut cmd = Command::new(bao_bin());
        scrub_env(&mut cmd);
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg("-dev-no-store-token")
            .arg(format!("-config={}", self.dir.join("config.hcl").display()))
            .arg("-log-level=debug")
            .env("HOME", self.dir.join("home"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        self.child = Some(cmd.spawn().expect("spawn bao server"));
        self.outcome()
    }

    /// Waits (bounded) until the server is up or has exited.
    fn outcome(&mut self) -> Outcome {
        let deadline = Instant::now() + START_TIMEOUT;
        let host = format!("127.0.0.1:{}", self.port);
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Outcome::Exited(status);
            }
            let health =
                http::request_once(&host, "GET", "/v1/sys/health", &[], b"", START_TIMEOUT);
            if health.is_ok_and(|a| a.status == 200) {
                return Outcome::Up;
            }
            assert!(
                Instant::now() < deadline,
                "bao server neither up nor exited after {START_TIMEOUT:?}; log tail:\n{}",
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// [`DeclaredServer::spawn`] for a server that must come up.
    pub fn spawn_up(&mut self) {
        if let Outcome::Exited(status) = self.spawn() {
            panic!(
                "bao server exited ({status}); log tail:\n{}",
                self.log_tail(40)
            );
        }
    }

    pub fn log_text(&self) -> String {
        file_text(&self.dir.join("server.log"))
    }

    pub fn log_tail(&self, n: usize) -> String {
        last_lines(&self.log_text(), n)
    }

    /// Waits (bounded) until the log holds `needle`, `count` times at least.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) {
        wait_until(
            &format!("server log to hold {needle:?} {count} time(s)"),
            timeout,
            || self.log_text().matches(needle).count() >= count,
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGHUP: the server reads its configuration again.
    pub fn hup(&self) {
        send_signal("HUP", self.pid());
    }

    /// The `bao` CLI aimed at this server (root token, HOME in the sandbox, stdin closed).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bao_bin());
        scrub_env(&mut cmd);
        cmd.args(args)
            .env("BAO_ADDR", format!("http://127.0.0.1:{}", self.port))
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("HOME", self.dir.join("home"))
            .stdin(Stdio::null())
            .output()
            .expect("run bao CLI")
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        stdout_ok(&format!("`bao {}`", args.join(" ")), &self.cli(args))
    }

    /// `bao ... -format=json`: `words` then `-format=json` then `args`, parsed.
    pub fn cli_json(&self, words: &[&str], args: &[&str]) -> serde_json::Value {
        let mut all = words.to_vec();
        all.push("-format=json");
        all.extend_from_slice(args);
        let out = self.cli_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {out}"))
    }

    /// SIGTERM, bounded wait, SIGKILL; then SIGKILL to plugin processes that outlived it.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // The plugins it runs now, with their start times (a later process may reuse a pid).
        let plugins: Vec<(u32, Option<u64>)> = children_of(child.id())
            .into_iter()
            .map(|pid| (pid, start_time(pid)))
            .collect();
        let status = stop_child(&mut child);
        for (pid, started) in plugins {
            if started.is_some() && start_time(pid) == started {
                kill_pid(pid);
            }
        }
        status
    }
}

impl Default for DeclaredServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DeclaredServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- bao server log tail ({}):\n{}",
                self.dir.display(),
                self.log_tail(60)
            );
        }
        if keep_dirs() {
            eprintln!("KEEP_TEST_DIRS: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
