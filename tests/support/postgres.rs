//! A private PostgreSQL cluster for a test ([`Postgres`]): a copy of a data directory `initdb`
//! made once ([`template`]) in a fresh temporary directory, the server on a free loopback port,
//! stopped and removed when dropped. Tests look in PostgreSQL itself ([`Postgres::psql`],
//! [`Postgres::role_exists`], [`Postgres::can_login`], ...) rather than trusting what a plugin
//! says it did.
//!
//! * Binaries: [`bin_dir`], which `make deps` (`scripts/postgres-deps.sh`) finds the same way
//!   and installs from Debian's `postgresql` package when missing.
//! * Users: the superuser is `postgres`, with a random password per cluster stored as
//!   SCRAM-SHA-256. TCP (`host` lines, 127.0.0.1 only) requires `scram-sha-256`; the unix
//!   socket, in a mode-0700 directory inside the cluster's, trusts whoever reaches it: the
//!   harness's own `psql`.
//! * Root: `initdb` and `postgres` refuse to run as root, so when the tests do (as in CI) they
//!   run as the `postgres` system user that Debian's package creates (else `nobody`), through
//!   util-linux's `setpriv`, in directories chowned to that user ([`run_as`]). The temporary
//!   directory's parents must then be searchable by that user (`/tmp` is).
//! * Test speed over durability: `fsync`, `synchronous_commit` and `full_page_writes` off,
//!   `initdb --no-sync` with 1 MB WAL segments, a small `shared_buffers`, `max_connections` 20.
//! * Sessions in UTC with ISO dates, so timestamps read back as `2030-01-01 00:00:00+00`.
//! * The server's log is `postgres.log` in the cluster's directory; failures show its tail, and
//!   `KEEP_TEST_DIRS=1` keeps the directory (see [`crate::common::keep_dirs`]).
//!
//! Facts this relies on (observed with PostgreSQL 15 on Debian 12, 2 busy cores): creating the
//! ~1,000 files of a cluster dominates: `initdb` takes 0.5 to 1.5 s, a copy of the template 0.1
//! to 1 s, the server is ready ~20 ms after it starts; the postmaster does a fast shutdown on
//! SIGINT (what `pg_ctl stop -m fast` sends); `setpriv` execs, so the spawned pid is the
//! postmaster's.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{
    children_of, file_text, fresh_temp_dir, keep_dirs, kill_pid, last_lines, lossy, pid_alive,
    project_root, start_time,
};

/// The cluster's superuser.
pub const SUPERUSER: &str = "postgres";

/// The binaries the harness and `make deps` require in one directory.
const NEEDED: [&str; 5] = ["initdb", "postgres", "pg_ctl", "pg_isready", "psql"];
/// Upper bound for `initdb` and for the server to accept connections (normally < 1 s together).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Port races (another process binding the port picked for the server) retried at start.
const PORT_ATTEMPTS: u32 = 5;
/// `max_connections`: room for a plugin's pool, the harness's probes and a few tests' sessions.
const MAX_CONNECTIONS: u32 = 20;
/// Bounds every statement of the harness's sessions, so a lock held elsewhere fails the test
/// instead of hanging it.
const STATEMENT_TIMEOUT: &str = "60s";
/// Bounds every connection attempt (libpq's `PGCONNECT_TIMEOUT`, in seconds).
const CONNECT_TIMEOUT_SECS: &str = "10";

/// The directory holding `initdb`, `postgres`, `pg_ctl`, `pg_isready` and `psql`: `$PG_BIN_DIR`,
/// else `pg_config --bindir` (when it holds them all: libpq-dev's version can differ from the
/// server's), else the newest `/usr/lib/postgresql/*/bin`, else the directory `initdb` on PATH
/// resolves to. Panics naming `make deps` when none has them.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(find_bin_dir)
}

fn find_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            complete(&dir),
            "PG_BIN_DIR={} lacks one of {NEEDED:?}",
            dir.display()
        );
        return dir;
    }
    let candidates = [pg_config_bindir(), newest_debian_bindir(), initdb_on_path()];
    candidates
        .into_iter()
        .flatten()
        .find(|dir| complete(dir))
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL's {NEEDED:?} not found (looked at `pg_config --bindir`, \
                 /usr/lib/postgresql/*/bin and PATH): run `make deps` (or set PG_BIN_DIR)"
            )
        })
}

fn complete(dir: &Path) -> bool {
    NEEDED.iter().all(|bin| {
        fs::metadata(dir.join(bin))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let dir = lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Debian installs each major version under `/usr/lib/postgresql/<version>/bin`.
fn newest_debian_bindir() -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| Some((version(entry.file_name().to_str()?)?, entry.path())))
        .max()
        .map(|(_, path)| path.join("bin"))
}

fn initdb_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        .and_then(|initdb| initdb.canonicalize().ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
}

/// The unprivileged account the server runs as when the tests run as root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// `None` when the tests do not run as root (the server then runs as the tests' own user);
/// else the `postgres` system user (Debian's package creates it) or, without one, `nobody`.
pub fn run_as() -> Option<&'static RunAs> {
    static RUN_AS: OnceLock<Option<RunAs>> = OnceLock::new();
    RUN_AS
        .get_or_init(|| {
            if effective_uid() != Some(0) {
                return None;
            }
            let user = ["postgres", "nobody"]
                .into_iter()
                .find_map(lookup_user)
                .expect("running as root, and neither a `postgres` nor a `nobody` user exists");
            Some(user)
        })
        .as_ref()
}

/// The effective uid, from `/proc/self/status` (`Uid: real effective saved fs`).
fn effective_uid() -> Option<u32> {
    fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A user's uid and primary gid, through `getent passwd` (so NSS sources count too).
fn lookup_user(name: &str) -> Option<RunAs> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let line = lossy(&out.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    Some(RunAs {
        name: name.to_owned(),
        uid: fields.get(2)?.parse().ok()?,
        gid: fields.get(3)?.parse().ok()?,
    })
}

/// A SQL string literal: `'…'` with quotes doubled (`standard_conforming_strings` is on).
pub fn quote_literal(value: &str) -> String {
    assert!(!value.contains('\0'), "SQL text cannot hold NUL: {value:?}");
    format!("'{}'", value.replace('\'', "''"))
}

/// A SQL identifier: `"…"` with double quotes doubled.
pub fn quote_ident(name: &str) -> String {
    assert!(!name.contains('\0'), "SQL text cannot hold NUL: {name:?}");
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Bumped whenever `initdb`'s arguments or the files written after it change, so that an older
/// template is not reused.
const TEMPLATE_FORMAT: u32 = 1;

/// A data directory `initdb` made once, which every cluster copies (a copy takes ~0.1 s,
/// `initdb` 0.5 to 1.5 s on a busy machine): `target/postgres-template/<format>-<version>-uid<owner>`
/// under the project's root, made on first use and kept across runs (`cargo clean` removes it).
/// `initdb` runs in a temporary directory (searchable by the server's user, which `target/`
/// may not be) and the result is copied in and renamed into place, so concurrent test
/// processes agree on one complete template. Its superuser password is random and replaced
/// in each cluster.
pub fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(make_template)
}

fn make_template() -> PathBuf {
    let owner = run_as().map_or_else(|| effective_uid().unwrap_or(0), |user| user.uid);
    let root = project_root().join("target/postgres-template");
    let path = root.join(format!("{TEMPLATE_FORMAT}-{}-uid{owner}", server_version()));
    if path.join("PG_VERSION").is_file() {
        return path;
    }

    let work = fresh_temp_dir("postgres-initdb");
    let data_dir = work.join("data");
    let password_file = work.join("superuser-password");
    fs::write(&password_file, format!("{}\n", random_hex(16))).expect("write the password file");
    fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600))
        .expect("chmod the password file");
    chown_to_server_user(&[&work, &password_file]);
    let initdb = server_command(&bin_dir().join("initdb"), &work)
        .arg("--pgdata")
        .arg(&data_dir)
        .args(["--username", SUPERUSER])
        .arg(format!("--pwfile={}", password_file.display()))
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .args([
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--wal-segsize=1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run initdb");
    if !initdb.status.success() {
        let hint = run_as().map_or(String::new(), |user| {
            format!(
                "\n(initdb ran as {}: the temp dir's parents must be searchable by it)",
                user.name
            )
        });
        if !keep_dirs() {
            let _ = fs::remove_dir_all(&work);
        }
        panic!(
            "initdb in {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}{hint}",
            data_dir.display(),
            initdb.status,
            lossy(&initdb.stdout),
            lossy(&initdb.stderr),
        );
    }
    // initdb's rules, made explicit: the harness's socket is trusted, TCP needs a SCRAM
    // password, and nothing else gets in. Writing to the existing file keeps its owner.
    fs::write(
        data_dir.join("pg_hba.conf"),
        "# TYPE  DATABASE  USER  ADDRESS       METHOD\n\
         local   all       all                 trust\n\
         host    all       all   127.0.0.1/32  scram-sha-256\n",
    )
    .expect("write pg_hba.conf");

    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
    let staging = root.join(format!(".staging-{}-{}", std::process::id(), random_hex(4)));
    let copy = Command::new("cp")
        .arg("-a")
        .arg(&data_dir)
        .arg(&staging)
        .output()
        .expect("run cp");
    let _ = fs::remove_dir_all(&work);
    assert!(
        copy.status.success(),
        "copying the new template into {} failed: {}",
        staging.display(),
        lossy(&copy.stderr)
    );
    // Fails when another process put its template there first: then that one is used.
    if fs::rename(&staging, &path).is_err() {
        let _ = fs::remove_dir_all(&staging);
        assert!(
            path.join("PG_VERSION").is_file(),
            "no template at {} after renaming {} there failed",
            path.display(),
            staging.display()
        );
    }
    path
}

/// The server's version, `15.18` from `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn server_version() -> String {
    let out = Command::new(bin_dir().join("postgres"))
        .arg("--version")
        .output()
        .expect("run postgres --version");
    let text = lossy(&out.stdout);
    text.split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no version in `postgres --version`: {text:?}"))
        .to_owned()
}

/// Gives paths the harness created to the server's user when the tests run as root.
fn chown_to_server_user(paths: &[&Path]) {
    if let Some(user) = run_as() {
        for path in paths {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), user.name));
        }
    }
}

/// A private PostgreSQL cluster on loopback, stopped (fast shutdown) and its directory removed
/// when dropped. See the module's documentation for how it is set up.
pub struct Postgres {
    child: Child,
    dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    password: String,
}

impl Postgres {
    /// A copy of the [`template`] cluster in a fresh temporary directory, the server on a free
    /// loopback port, the superuser's password set; returns once the superuser can log in over
    /// TCP with it.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// [`Postgres::start`] trying `port` first (the tests take it to check the retry).
    fn start_on(port: u16) -> Self {
        let template = template();
        let dir = fresh_temp_dir("postgres");
        let data_dir = dir.join("data");
        let socket_dir = dir.join("socket");
        let log_path = dir.join("postgres.log");
        let password = random_hex(16);

        fs::create_dir(&socket_dir).expect("create the socket dir");
        fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o700))
            .expect("chmod the socket dir");
        fs::File::create(&log_path).expect("create the server log");
        chown_to_server_user(&[&dir, &socket_dir, &log_path]);
        // `cp -a` keeps the template's owner (the server's user) and its modes (0700).
        let copy = Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(&data_dir)
            .output()
            .expect("run cp");
        if !copy.status.success() {
            if !keep_dirs() {
                let _ = fs::remove_dir_all(&dir);
            }
            panic!(
                "copying the template cluster {} failed: {}",
                template.display(),
                lossy(&copy.stderr)
            );
        }

        let mut pg = Self {
            child: spawn_server(&data_dir, &socket_dir, &log_path, port, &dir),
            dir,
            data_dir,
            socket_dir,
            log_path,
            port,
            password,
        };
        let mut attempt = 1;
        let mut log_start = 0;
        loop {
            match pg.wait_ready() {
                Ok(()) => break,
                Err(exit)
                    if attempt < PORT_ATTEMPTS
                        && pg.log_text()[log_start..].contains("Address already in use") =>
                {
                    // Another process took the port between the probe and the server's bind.
                    pg.log_note(&format!(
                        "harness: port {} was taken ({exit}); retrying on another",
                        pg.port
                    ));
                    attempt += 1;
                    log_start = pg.log_text().len();
                    pg.port = free_port();
                    pg.child =
                        spawn_server(&pg.data_dir, &pg.socket_dir, &pg.log_path, pg.port, &pg.dir);
                }
                Err(exit) => panic!(
                    "postgres exited during start-up ({exit}); log tail:\n{}",
                    pg.log_tail(60)
                ),
            }
        }
        // The template's superuser password is replaced by this cluster's own, over the socket.
        pg.psql(&format!(
            "ALTER ROLE {SUPERUSER} PASSWORD {}",
            quote_literal(&pg.password)
        ));
        if let Err(e) = pg.try_login(SUPERUSER, &pg.password) {
            panic!(
                "the superuser cannot log in over TCP: {e}\nlog tail:\n{}",
                pg.log_tail(60)
            );
        }
        pg
    }

    /// Polls (bounded) until `pg_isready` says the server accepts connections on its socket
    /// (it binds its TCP port before: a failed bind is fatal). `Err` when the server exits
    /// first.
    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(exit);
            }
            // Asked on this cluster's own socket: were another server to win the race for the
            // port, TCP would find that one ready.
            let ready = client(bin_dir().join("pg_isready"))
                .args(["--timeout=2", "--quiet"])
                .arg(format!("--host={}", self.socket_dir.display()))
                .arg(format!("--port={}", self.port))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "postgres not accepting connections after {attempts} attempts \
                     ({START_TIMEOUT:?}); log tail:\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Appends a line of the harness's own to the server log (shown with its tail).
    fn log_note(&self, line: &str) {
        if let Ok(mut log) = fs::OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(log, "{line}");
        }
    }

    /// The TCP port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name, [`SUPERUSER`].
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password (random, per cluster).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `connection_url` of Vault's PostgreSQL database plugin, its `{{username}}` and
    /// `{{password}}` placeholders kept for the plugin to fill in:
    /// `postgres://{{username}}:{{password}}@127.0.0.1:PORT/postgres?sslmode=disable`.
    pub fn connection_url(&self) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/postgres?sslmode=disable",
            "{{username}}", "{{password}}", self.port
        )
    }

    /// A URL with the superuser's real credentials, for the harness's own clients.
    pub fn superuser_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/postgres?sslmode=disable",
            self.password, self.port
        )
    }

    /// The cluster's temporary directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of the unix socket the harness's `psql` uses.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the server has logged so far.
    pub fn log_text(&self) -> String {
        file_text(&self.log_path)
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        last_lines(&self.log_text(), n)
    }

    /// Runs `sql` (one statement or several, `;`-separated) as the superuser over the unix
    /// socket: `psql -X -A -t -q -v ON_ERROR_STOP=1`, the script on stdin (so no password a
    /// statement sets shows in the process list). Returns the trimmed output: rows one a line,
    /// columns `|`-separated, NULL as an empty string. `Err` holds psql's status and stderr.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = client(bin_dir().join("psql"));
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .env("PGHOST", &self.socket_dir)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", "postgres");
        let out = run_with_stdin(cmd, sql);
        if out.status.success() {
            Ok(lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql {}: {}",
                out.status,
                lossy(&out.stderr).trim()
            ))
        }
    }

    /// [`Postgres::try_psql`] for SQL that must succeed; panics with psql's error, the SQL and
    /// the server log's tail.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql).unwrap_or_else(|e| {
            panic!(
                "{e}\n--- sql\n{sql}\n--- postgres log tail\n{}",
                self.log_tail(20)
            )
        })
    }

    /// Whether a role (user or group) named `name` exists.
    pub fn role_exists(&self, name: &str) -> bool {
        let sql = format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = {}",
            quote_literal(name)
        );
        self.psql(&sql) == "1"
    }

    /// A role's `VALID UNTIL` as PostgreSQL prints it in UTC (`2030-01-01 00:00:00+00`,
    /// `infinity`); `None` when it has none. Panics when the role does not exist.
    pub fn role_valid_until(&self, name: &str) -> Option<String> {
        let sql = format!(
            "SELECT coalesce('=' || rolvaliduntil::text, 'none') FROM pg_roles \
             WHERE rolname = {}",
            quote_literal(name)
        );
        match self.psql(&sql).as_str() {
            "" => panic!("role {name:?} does not exist"),
            "none" => None,
            value => Some(value.trim_start_matches('=').to_owned()),
        }
    }

    /// Whether a role's password is stored as a SCRAM-SHA-256 verifier (`pg_authid`); false
    /// when it has no password. Panics when the role does not exist.
    pub fn password_is_scram(&self, name: &str) -> bool {
        let sql = format!(
            "SELECT coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) FROM pg_authid \
             WHERE rolname = {}",
            quote_literal(name)
        );
        match self.psql(&sql).as_str() {
            "t" => true,
            "f" => false,
            "" => panic!("role {name:?} does not exist"),
            other => panic!("unexpected answer about {name:?}'s password: {other:?}"),
        }
    }

    /// Whether `user` can log in over TCP with `password` (and run `SELECT 1`).
    pub fn can_login(&self, user: &str, password: &str) -> bool {
        self.try_login(user, password).is_ok()
    }

    /// [`Postgres::can_login`] with the reason when it cannot (psql's stderr: "password
    /// authentication failed", "role … is not permitted to log in", ...).
    pub fn try_login(&self, user: &str, password: &str) -> Result<(), String> {
        let mut cmd = client(bin_dir().join("psql"));
        cmd.args(["-X", "-A", "-t", "-q", "-w", "-c", "SELECT 1"])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", user)
            .env("PGPASSWORD", password)
            .env("PGDATABASE", "postgres")
            .env("PGSSLMODE", "disable")
            .stdin(Stdio::null());
        let out = cmd.output().expect("run psql");
        let answer = lossy(&out.stdout);
        if out.status.success() && answer.trim() == "1" {
            Ok(())
        } else {
            Err(format!(
                "psql {}: {}",
                out.status,
                lossy(&out.stderr).trim()
            ))
        }
    }

    /// Fast shutdown (SIGINT, what `pg_ctl stop -m fast` sends: sessions rolled back and
    /// disconnected), a bounded wait, then SIGKILL for the postmaster and its backends.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.pid();
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
        if self.wait_exit(STOP_TIMEOUT).is_some() {
            return;
        }
        let backends: Vec<(u32, Option<u64>)> = children_of(pid)
            .into_iter()
            .map(|child| (child, start_time(child)))
            .collect();
        self.log_note(&format!(
            "harness: no fast shutdown within {STOP_TIMEOUT:?}; SIGKILL"
        ));
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (backend, started) in backends {
            if pid_alive(backend) && start_time(backend) == started {
                kill_pid(backend);
            }
        }
    }

    /// Whether the postmaster runs (it has not exited, or been stopped).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts the server again after [`Postgres::stop`] (or a crash), on the same port and data
    /// directory, so roles and data are kept and clients reconnect to the same address;
    /// returns once it accepts connections. Panics if it still runs, or if it exits during
    /// start-up (another process took the port meanwhile, say) with the log's tail.
    pub fn start_again(&mut self) {
        assert!(
            !self.is_running(),
            "postgres (pid {}) still runs: stop it first",
            self.pid()
        );
        self.log_note(&format!("harness: starting again on port {}", self.port));
        self.child = spawn_server(
            &self.data_dir,
            &self.socket_dir,
            &self.log_path,
            self.port,
            &self.dir,
        );
        if let Err(exit) = self.wait_ready() {
            panic!(
                "postgres exited while starting again on port {} ({exit}); log tail:\n{}",
                self.port,
                self.log_tail(60)
            );
        }
    }

    /// Waits up to `timeout` for the postmaster to exit (reaping it); `None` if still running.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
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
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            // Test output is only shown for failures, so this costs nothing when green.
            eprintln!(
                "--- postgres log tail ({}):\n{}",
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

/// A loopback port free at the time of asking; [`Postgres::start`] retries on the rare race.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `postgres` on `data_dir`, its stdout and stderr appended to `log_path`.
fn spawn_server(
    data_dir: &Path,
    socket_dir: &Path,
    log_path: &Path,
    port: u16,
    cwd: &Path,
) -> Child {
    let log = fs::OpenOptions::new()
        .append(true)
        .open(log_path)
        .expect("open the server log");
    let log_err = log.try_clone().expect("clone the log handle");
    let settings = [
        "listen_addresses=127.0.0.1".to_owned(),
        format!("port={port}"),
        format!("unix_socket_directories={}", socket_dir.display()),
        format!("max_connections={MAX_CONNECTIONS}"),
        "shared_buffers=16MB".to_owned(),
        "fsync=off".to_owned(),
        "synchronous_commit=off".to_owned(),
        "full_page_writes=off".to_owned(),
        "password_encryption=scram-sha-256".to_owned(),
        "timezone=UTC".to_owned(),
        "datestyle=ISO, YMD".to_owned(),
        "logging_collector=off".to_owned(),
        "log_destination=stderr".to_owned(),
        "log_line_prefix=%m [%p] %q%u@%d ".to_owned(),
    ];
    let mut cmd = server_command(&bin_dir().join("postgres"), cwd);
    cmd.arg("-D").arg(data_dir);
    for setting in settings {
        cmd.arg("-c").arg(setting);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .expect("spawn postgres")
}

/// A server-side binary (`initdb`, `postgres`), as [`run_as`]'s user when the tests run as
/// root: `setpriv` sets the ids and execs, so the child's pid is the binary's own.
fn server_command(binary: &Path, cwd: &Path) -> Command {
    let mut cmd = match run_as() {
        Some(user) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg("--init-groups")
                .arg("--")
                .arg(binary);
            cmd
        }
        None => Command::new(binary),
    };
    scrub_pg_env(&mut cmd);
    cmd.current_dir(cwd);
    cmd
}

/// A client binary (`psql`, `pg_isready`) with a clean libpq environment.
fn client(binary: PathBuf) -> Command {
    let mut cmd = Command::new(binary);
    scrub_pg_env(&mut cmd);
    cmd.env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS)
        .env(
            "PGOPTIONS",
            format!("-c statement_timeout={STATEMENT_TIMEOUT}"),
        )
        // No ~/.pgpass or service file of whoever runs the tests.
        .env("PGPASSFILE", "/dev/null");
    cmd
}

/// The inherited environment minus libpq's `PG*` variables (`PGHOST`, `PGPASSWORD`,
/// `PGSSLMODE`, ...), with messages in English (the harness reads the server's log).
fn scrub_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("LC_ALL", "C");
}

/// Runs `cmd` with `input` on its stdin, written from a thread of its own so that a large
/// output cannot block the write.
fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn psql");
    let mut stdin = child.stdin.take().expect("psql's stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        // psql stops reading at the first error (ON_ERROR_STOP): a broken pipe is fine.
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for psql");
    let _ = writer.join();
    out
}

/// `bytes` random bytes from the kernel as lowercase hex (URL- and SQL-safe).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let mut urandom = fs::File::open("/dev/urandom").expect("open /dev/urandom");
    std::io::Read::read_exact(&mut urandom, &mut buf).expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpStream};

    #[test]
    fn a_role_with_a_password_is_seen_in_postgres() {
        let started = Instant::now();
        let pg = Postgres::start();
        eprintln!(
            "postgres: cluster up in {:?} (as {})",
            started.elapsed(),
            run_as().map_or("the tests' user", |user| user.name.as_str())
        );
        assert!(pg.role_exists(SUPERUSER));
        assert!(pg.can_login(pg.superuser(), pg.password()));

        let role = "v-token-o'brien";
        assert!(!pg.role_exists(role));
        pg.psql(&format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD {} VALID UNTIL '2030-01-02 03:04:05+00';",
            quote_ident(role),
            quote_literal("s3cret 'quoted'")
        ));
        assert!(pg.role_exists(role));
        assert!(pg.password_is_scram(role));
        assert_eq!(
            pg.role_valid_until(role).as_deref(),
            Some("2030-01-02 03:04:05+00")
        );
        assert!(pg.can_login(role, "s3cret 'quoted'"));
        assert!(!pg.can_login(role, "wrong"));
        let refused = pg.try_login(role, "wrong").unwrap_err();
        assert!(
            refused.contains("password authentication failed"),
            "{refused}"
        );

        pg.psql(&format!(
            "ALTER ROLE {} VALID UNTIL 'infinity'",
            quote_ident(role)
        ));
        assert_eq!(pg.role_valid_until(role).as_deref(), Some("infinity"));

        pg.psql(&format!("DROP ROLE {}", quote_ident(role)));
        assert!(!pg.role_exists(role));
        assert!(!pg.can_login(role, "s3cret 'quoted'"));
    }

    #[test]
    fn roles_without_password_or_expiry_read_as_such() {
        let pg = Postgres::start();
        pg.psql("CREATE ROLE plain LOGIN; CREATE ROLE group_role NOLOGIN");
        assert_eq!(pg.role_valid_until("plain"), None);
        assert!(!pg.password_is_scram("plain"));
        assert!(!pg.can_login("plain", ""));
        assert!(!pg.can_login("group_role", "anything"));
        assert_eq!(pg.psql("SELECT 1; SELECT 'two'"), "1\ntwo");
        let err = pg.try_psql("SELECT * FROM no_such_table").unwrap_err();
        assert!(err.contains("no_such_table"), "{err}");
    }

    #[test]
    fn urls_name_the_port_and_keep_the_plugins_placeholders() {
        let pg = Postgres::start();
        assert_eq!(
            pg.connection_url(),
            format!(
                "postgres://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                pg.port()
            )
        );
        assert!(
            pg.connection_url()
                .starts_with("postgres://{{username}}:{{password}}@")
        );
        assert_eq!(
            pg.superuser_url(),
            format!(
                "postgres://postgres:{}@127.0.0.1:{}/postgres?sslmode=disable",
                pg.password(),
                pg.port()
            )
        );
        // The server listens on 127.0.0.1 only, and TCP wants the password.
        assert_eq!(pg.psql("SHOW listen_addresses"), "127.0.0.1");
        assert!(!pg.can_login(SUPERUSER, "not-the-password"));
    }

    #[test]
    fn two_clusters_at_once_are_separate() {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(Postgres::start);
            let b = s.spawn(Postgres::start);
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_ne!(a.port(), b.port());
        assert_ne!(a.dir(), b.dir());
        assert_ne!(a.password(), b.password());
        // Copies of one template, each with a password of its own.
        assert!(!b.can_login(SUPERUSER, a.password()));
        assert!(b.can_login(SUPERUSER, b.password()));
        a.psql("CREATE ROLE only_in_a");
        assert!(a.role_exists("only_in_a"));
        assert!(!b.role_exists("only_in_a"));
    }

    #[test]
    fn drop_stops_the_server_and_removes_its_directory() {
        let pg = Postgres::start();
        let addr = SocketAddr::from(([127, 0, 0, 1], pg.port()));
        let dir = pg.dir().to_path_buf();
        let pid = pg.pid();
        // A session left open does not hold the shutdown up (fast shutdown disconnects it).
        let mut session = client(bin_dir().join("psql"))
            .args(["-X", "-q", "-c", "SELECT pg_sleep(600)"])
            .env("PGHOST", pg.socket_dir())
            .env("PGPORT", pg.port().to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGDATABASE", "postgres")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        crate::common::wait_until("the session to start", START_TIMEOUT, || {
            pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()") == "1"
        });
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());

        let stopping = Instant::now();
        drop(pg);
        let took = stopping.elapsed();
        assert!(
            took < STOP_TIMEOUT,
            "stop took {took:?}: not a fast shutdown"
        );
        assert!(!pid_alive(pid), "the postmaster {pid} still runs");
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
            "port {} still accepts connections",
            addr.port()
        );
        assert_eq!(dir.exists(), keep_dirs(), "{}", dir.display());
        let status = session.wait().unwrap();
        assert!(
            !status.success(),
            "the open session ended cleanly: {status}"
        );
    }

    #[test]
    fn stopped_and_started_again_on_the_same_port_and_data() {
        let mut pg = Postgres::start();
        let addr = SocketAddr::from(([127, 0, 0, 1], pg.port()));
        let (port, dir, first) = (pg.port(), pg.dir().to_path_buf(), pg.pid());
        pg.psql("CREATE ROLE kept LOGIN PASSWORD 'kept-pw'");

        pg.stop();
        assert!(!pg.is_running());
        assert!(!pid_alive(first), "the postmaster {first} still runs");
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
            "port {port} still accepts connections after stop"
        );
        assert!(pg.try_psql("SELECT 1").is_err());
        pg.stop(); // A second stop is a no-op.

        pg.start_again();
        assert!(pg.is_running());
        assert_ne!(pg.pid(), first);
        assert_eq!((pg.port(), pg.dir()), (port, dir.as_path()));
        assert!(pg.role_exists("kept"), "the data directory was kept");
        assert!(pg.can_login("kept", "kept-pw"));
        assert!(pg.can_login(SUPERUSER, pg.password()));
        assert!(
            pg.log_text()
                .contains(&format!("harness: starting again on port {port}"))
        );
    }

    #[test]
    #[should_panic(expected = "still runs: stop it first")]
    fn starting_again_a_running_cluster_is_refused() {
        let mut pg = Postgres::start();
        pg.start_again();
    }

    #[test]
    fn a_port_taken_before_the_server_binds_it_is_replaced() {
        let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = squatter.local_addr().unwrap().port();
        let pg = Postgres::start_on(taken);
        assert_ne!(pg.port(), taken);
        assert!(pg.can_login(SUPERUSER, pg.password()));
        let log = pg.log_text();
        assert!(
            log.contains(&format!("harness: port {taken} was taken")),
            "{log}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
