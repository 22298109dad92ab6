//! The plugin process: launched with the server's environment in a temporary directory, its
//! stdout and stderr captured line by line, and its handshake line parsed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;

use super::tls::HostCert;
use super::{HANDSHAKE_TIMEOUT, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};

// Temporary directories

/// A fresh directory, removed with its contents when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        // Short names: unix socket paths inside must stay under 108 bytes.
        let path = std::env::temp_dir().join(format!(
            "vmp-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// The plugin process

/// How to launch the plugin: the environment OpenBao 2.7 gives a v5 backend plugin (§1.2),
/// with every variable open to change.
pub struct Launch {
    env: BTreeMap<String, String>,
    args: Vec<String>,
    tmpdir: TempDir,
    /// Another plugin binary than cargo's (the benchmark launches the Go mock).
    program: Option<PathBuf>,
}

impl Launch {
    pub fn new(cert: &HostCert) -> Self {
        let tmpdir = TempDir::new("tmp");
        let mut env: BTreeMap<String, String> = [
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5"),
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "25000"),
            ("BAO_PLUGIN_AUTOMTLS_ENABLED", "true"),
            ("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"),
            ("BAO_PLUGIN_METADATA_MODE", "false"),
            ("VAULT_PLUGIN_METADATA_MODE", "false"),
            ("BAO_VERSION", "2.7.2"),
            ("VAULT_VERSION", "2.7.2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.insert("PLUGIN_CLIENT_CERT".to_owned(), cert.pem.clone());
        env.insert("TMPDIR".to_owned(), tmpdir.path().display().to_string());
        if let Ok(path) = std::env::var("PATH") {
            env.insert("PATH".to_owned(), path);
        }
        Self {
            env,
            args: Vec::new(),
            tmpdir,
            program: None,
        }
    }

    /// Launches `program` instead of cargo's build of the plugin (the same protocol from
    /// another implementation, e.g. the Go mock from `make peers`).
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// Sets (or replaces) an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Removes an environment variable.
    pub fn remove(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Adds a command-line argument (catalog `args`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    pub fn spawn(self) -> Plugin {
        let program = self.program.unwrap_or_else(crate::common::plugin_bin);
        let mut child = Command::new(program)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the plugin binary");
        let stdout = capture("plugin-stdout", child.stdout.take().expect("piped stdout"));
        let stderr = capture("plugin-stderr", child.stderr.take().expect("piped stderr"));
        Plugin {
            child,
            stdout,
            stderr,
            tmpdir: self.tmpdir,
        }
    }
}

/// Everything one pipe carried so far. Lines keep their `\n` (the handshake must end with one).
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub lines: Vec<String>,
    /// The pipe reached end of file: the process (and anything it forked) closed it.
    pub closed: bool,
}

/// Reads `pipe` on a thread, so the process never blocks on a full pipe and tests can wait for
/// lines with a deadline.
fn capture(name: &str, pipe: impl Read + Send + 'static) -> watch::Receiver<Captured> {
    let (sender, receiver) = watch::channel(Captured::default());
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        sender.send_modify(|c| c.lines.push(text));
                    }
                }
            }
            sender.send_modify(|c| c.closed = true);
        })
        .expect("spawn a pipe reader thread");
    receiver
}

fn trimmed(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']).to_owned())
        .collect()
}

/// A running plugin process; killed and reaped when dropped.
pub struct Plugin {
    child: Child,
    stdout: watch::Receiver<Captured>,
    stderr: watch::Receiver<Captured>,
    tmpdir: TempDir,
}

impl Plugin {
    /// The `TMPDIR` it was given (where its socket directory goes).
    pub fn tmpdir(&self) -> &Path {
        self.tmpdir.path()
    }

    /// The first line on stdout, with its `\n` if it had one; `Err` if stdout closed first or
    /// nothing came in time.
    pub async fn first_stdout_line(&self, timeout: Duration) -> Result<String, String> {
        let mut stdout = self.stdout.clone();
        let waited = tokio::time::timeout(
            timeout,
            stdout.wait_for(|c| !c.lines.is_empty() || c.closed),
        )
        .await;
        match waited {
            Err(_) => Err(format!("no handshake line within {timeout:?}")),
            Ok(Err(_)) => Err("the stdout reader vanished".to_owned()),
            Ok(Ok(captured)) => captured
                .lines
                .first()
                .cloned()
                .ok_or_else(|| "stdout closed without a handshake line".to_owned()),
        }
    }

    /// Reads and parses the handshake line; panics with the plugin's stderr if it fails.
    pub async fn handshake(&self) -> Handshake {
        self.first_stdout_line(HANDSHAKE_TIMEOUT)
            .await
            .and_then(|line| Handshake::parse(&line))
            .unwrap_or_else(|e| panic!("handshake: {e}; stderr: {:#?}", self.stderr_lines()))
    }

    /// Stdout lines so far, without line ends.
    pub fn stdout_lines(&self) -> Vec<String> {
        trimmed(&self.stdout.borrow().lines)
    }

    /// Stderr lines so far, without line ends.
    pub fn stderr_lines(&self) -> Vec<String> {
        trimmed(&self.stderr.borrow().lines)
    }

    /// All stdout lines, once the pipe has closed (the process exited).
    pub async fn stdout_until_closed(&self, timeout: Duration) -> Vec<String> {
        Self::until_closed(&self.stdout, timeout, "stdout").await
    }

    /// The first stderr line that `matches`, waiting up to `timeout` for it; `None` if none
    /// came (the pipe closed or time ran out).
    pub async fn stderr_line(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let find = |captured: &Captured| captured.lines.iter().find(|l| matches(l)).cloned();
        let mut waiter = self.stderr.clone();
        let found = waiter.wait_for(|c| c.closed || find(c).is_some());
        match tokio::time::timeout(timeout, found).await {
            Ok(Ok(captured)) => find(&captured).map(|l| l.trim_end().to_owned()),
            _ => None,
        }
    }

    /// All stderr lines, once the pipe has closed (the process exited).
    pub async fn stderr_until_closed(&self, timeout: Duration) -> Vec<String> {
        Self::until_closed(&self.stderr, timeout, "stderr").await
    }

    async fn until_closed(
        pipe: &watch::Receiver<Captured>,
        timeout: Duration,
        name: &str,
    ) -> Vec<String> {
        let mut waiter = pipe.clone();
        let closed = tokio::time::timeout(timeout, waiter.wait_for(|c| c.closed))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|captured| trimmed(&captured.lines));
        closed.unwrap_or_else(|| {
            panic!(
                "{name} still open after {timeout:?}: {:#?}",
                trimmed(&pipe.borrow().lines)
            )
        })
    }

    /// Waits up to `timeout` for the process to exit, polling (a child has no async wait in
    /// std, and a waiter thread would own the child we may still have to kill).
    pub async fn try_wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the plugin process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Like [`Self::try_wait_exit`], but a plugin still running after `timeout` fails the test.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.try_wait_exit(timeout).await {
            Some(status) => status,
            None => panic!(
                "the plugin still runs after {timeout:?}; stderr: {:#?}",
                self.stderr_lines()
            ),
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parsed handshake line `1|5|unix|<socket>|grpc|<cert>`.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub address: PathBuf,
    /// The plugin's certificate (DER), decoded from the unpadded base64 field.
    pub cert: CertificateDer<'static>,
}

impl Handshake {
    /// Parses a line as the server would, but strictly: exactly what OpenBao 2.7 needs from a
    /// v5 unix-socket plugin, and nothing it would merely tolerate.
    pub fn parse(line: &str) -> Result<Self, String> {
        let body = line
            .strip_suffix('\n')
            .ok_or_else(|| format!("the handshake line does not end with a newline: {line:?}"))?;
        let fields: Vec<&str> = body.split('|').collect();
        let [core, app, network, address, protocol, cert] = fields[..] else {
            return Err(format!("expected 6 fields, got {}: {body:?}", fields.len()));
        };
        let expect = |what: &str, got: &str, want: &str| {
            if got == want {
                Ok(())
            } else {
                Err(format!("{what} is {got:?}, expected {want:?}: {body:?}"))
            }
        };
        expect("core protocol", core, "1")?;
        expect("app protocol", app, "5")?;
        expect("network", network, "unix")?;
        expect("protocol", protocol, "grpc")?;
        let address = PathBuf::from(address);
        if !address.is_absolute() {
            return Err(format!("the socket path is not absolute: {body:?}"));
        }
        let der = STANDARD_NO_PAD
            .decode(cert)
            .map_err(|e| format!("the certificate is not unpadded standard base64: {e}"))?;
        Ok(Self {
            address,
            cert: CertificateDer::from(der),
        })
    }

    /// The plugin's private socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.address
            .parent()
            .expect("the socket path has a parent")
            .to_owned()
    }
}
