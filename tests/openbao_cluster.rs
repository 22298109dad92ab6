//! The plugin in a three-node OpenBao cluster with integrated (Raft) storage on loopback:
//! registered and mounted once, served by every node (each runs its own plugin process),
//! writes through standbys forwarded, `internal` and `InvalidateKey` per node, a reload that
//! reaches every node, and a failover after SIGKILL of the active node with no acknowledged
//! write lost. Under a writer and a reader per node: the active node frozen (SIGSTOP) for 10 s
//! and thawed, and a rolling upgrade of the plugin to v0.2.0; neither loses an acknowledged
//! write. `make test-cluster` runs this file alone, with `--nocapture` for the figures.
//!
//! The tests share the machine's two cores with nine servers at most, so they run one at a
//! time (a file-wide lock) and every wait is a bounded poll.
#![allow(clippy::unwrap_used)]

use plugin_test_support::{cluster, common};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Cluster, NODES, http_exchange, http_request, poll};
// One cluster at a time (`serial`): three servers already load the two cores.
use common::{cmdline, parent_pid, pid_alive, serial};
use serde_json::{Value, json};

const PLUGIN: &str = "my-mock-plugin";
/// What the plugin reports without an override: the Go mock's version.
const GO_MOCK_VERSION: &str = "v0.0.0+mock";
const MOUNT: &str = "mock";

/// Replication to a standby takes ~75–105 ms; this bound only guards against a hang.
const CATCH_UP: Duration = Duration::from_secs(20);

fn all_nodes() -> Vec<usize> {
    (1..=NODES).collect()
}

/// A cluster with the plugin installed on every node, registered once and mounted once at
/// `mock/` (both through the active node), and a plugin process running on every node.
/// Returns the cluster and the active node.
fn cluster_with_mount() -> (Cluster, usize) {
    let mut c = Cluster::start();
    let active = c.wait_active(Duration::from_secs(10));
    let sha = c.install_plugin(PLUGIN);

    let out = c.cli_ok(
        active,
        &[
            "plugin",
            "register",
            &format!("-sha256={sha}"),
            "secret",
            PLUGIN,
        ],
    );
    assert!(
        out.contains("Success! Registered plugin: my-mock-plugin"),
        "{out}"
    );
    let out = c.cli_ok(
        active,
        &["secrets", "enable", &format!("-path={MOUNT}"), PLUGIN],
    );
    assert!(out.contains("Success! Enabled the my-mock-plugin secrets engine at: mock/"));

    // The catalog entry and the mount replicate: every node reads the same ones (standby reads
    // are served from each node's own copy of the storage).
    let mut uuids = BTreeSet::new();
    for i in all_nodes() {
        let (entry, mount) = poll(
            &format!("node{i} to see the catalog entry and the mount"),
            CATCH_UP,
            || {
                let (s1, entry) = c.request(
                    i,
                    "GET",
                    &format!(
                        "sys/plugins/catalog/secret/{PLUGIN}?version={}",
                        GO_MOCK_VERSION.replace('+', "%2B")
                    ),
                    None,
                )?;
                let (s2, mounts) = c.request(i, "GET", "sys/mounts", None)?;
                let mount = &mounts["data"][format!("{MOUNT}/")];
                if s1 == 200 && s2 == 200 && mount.is_object() {
                    Ok((entry, mount.clone()))
                } else {
                    Err(format!("catalog {s1} {entry}; mounts {s2}"))
                }
            },
        );
        assert_eq!(entry["data"]["sha256"], json!(sha), "node{i}: {entry}");
        assert_eq!(mount["type"], json!(PLUGIN), "node{i}: {mount}");
        assert_eq!(
            mount["running_plugin_version"],
            json!(GO_MOCK_VERSION),
            "node{i}: {mount}"
        );
        uuids.insert(mount["uuid"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(uuids.len(), 1, "one mount, one UUID everywhere: {uuids:?}");

    // Every node sets the mount up itself, with its own plugin process from its own directory.
    let pids = plugin_per_node(&c);
    eprintln!("plugin processes per node: {pids:?}");
    (c, active)
}

/// Waits (bounded) until every running node has exactly one plugin process, checks that each
/// is its node's child and runs from that node's plugin directory; returns node → pid.
fn plugin_per_node(c: &Cluster) -> BTreeMap<usize, u32> {
    let mut pids = BTreeMap::new();
    for i in all_nodes() {
        let Some(server) = c.node(i).pid() else {
            continue;
        };
        let pid = poll(
            &format!("one plugin process on node{i}"),
            Duration::from_secs(30),
            || match c.plugin_pids(i).as_slice() {
                [pid] => Ok(*pid),
                other => Err(format!("{other:?}")),
            },
        );
        assert_eq!(parent_pid(pid), Some(server));
        let expected = c.node(i).plugin_dir().join(PLUGIN);
        assert!(
            cmdline(pid).starts_with(&expected.display().to_string()),
            "node{i}: {}",
            cmdline(pid)
        );
        pids.insert(i, pid);
    }
    let distinct: BTreeSet<u32> = pids.values().copied().collect();
    assert_eq!(distinct.len(), pids.len(), "one process per node: {pids:?}");
    pids
}

fn kv_path(key: &str) -> String {
    format!("{MOUNT}/kv/{key}")
}

/// Keys listed under `mock/kv/` on one node (empty on 404).
fn list_keys(c: &Cluster, node: usize) -> Result<BTreeSet<String>, String> {
    let (status, body) = c.request(node, "LIST", &format!("{MOUNT}/kv"), None)?;
    match status {
        404 => Ok(BTreeSet::new()),
        200 => Ok(body["data"]["keys"]
            .as_array()
            .ok_or_else(|| format!("no keys in {body}"))?
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()),
        _ => Err(format!("LIST on node{node}: {status} {body}")),
    }
}

/// `mock/kv/KEY` read on one node: `Some(value)` or `None` on 404.
fn read_kv(c: &Cluster, node: usize, key: &str) -> Result<Option<String>, String> {
    let (status, body) = c.request(node, "GET", &kv_path(key), None)?;
    match status {
        404 => Ok(None),
        200 => {
            if body["data"]["version"] != json!(0) {
                return Err(format!("unexpected version in {body}"));
            }
            body["data"]["value"]
                .as_str()
                .map(|v| Some(v.to_owned()))
                .ok_or_else(|| format!("no value in {body}"))
        }
        _ => Err(format!("GET {key} on node{node}: {status} {body}")),
    }
}

fn read_internal(c: &Cluster, node: usize) -> Result<String, String> {
    let (status, body) = c.request(node, "GET", &format!("{MOUNT}/internal"), None)?;
    match (status, body["data"]["value"].as_str()) {
        (200, Some(value)) => Ok(value.to_owned()),
        _ => Err(format!("internal on node{node}: {status} {body}")),
    }
}

/// Waits (bounded) until `node` lists every key of `expected`, then reads each one there and
/// asserts its value. Returns how long the node took to list them all.
fn assert_node_has(c: &Cluster, node: usize, expected: &BTreeMap<String, String>) -> Duration {
    let started = Instant::now();
    poll(
        &format!("node{node} to list all {} keys", expected.len()),
        CATCH_UP,
        || {
            let keys = list_keys(c, node)?;
            let missing: Vec<&String> = expected.keys().filter(|k| !keys.contains(*k)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} missing, e.g. {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                ))
            }
        },
    );
    let listed = started.elapsed();
    for (key, value) in expected {
        let got = read_kv(c, node, key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.as_deref(), Some(value.as_str()), "node{node}: kv/{key}");
    }
    listed
}

/// One cluster, three phases: writes through every node and reads everywhere; `internal` and
/// `InvalidateKey` per node; a reload that reaches every node.
#[test]
fn every_node_serves_the_mount_forwards_standby_writes_and_reloads() {
    let _serial = serial();
    let (c, active) = cluster_with_mount();
    let standbys: Vec<usize> = all_nodes().into_iter().filter(|&i| i != active).collect();

    let mut expected = writes_through_every_node_read_everywhere(&c, active, &standbys);
    internal_is_per_node_and_standbys_get_invalidations(&c, active, &standbys, &expected);
    a_reload_through_the_active_node_reaches_every_node(&c, active, &standbys, &mut expected);
}

/// Writes, an update and a delete through the active node and the standbys; every node lists
/// and reads the same data once replication has caught up. Returns the data.
fn writes_through_every_node_read_everywhere(
    c: &Cluster,
    active: usize,
    standbys: &[usize],
) -> BTreeMap<String, String> {
    // A write through each node: the active node's plugin stores it; a standby's plugin tries,
    // gets the read-only storage error, passes it through, and the server forwards the request.
    let mut expected = BTreeMap::new();
    for i in all_nodes() {
        let key = format!("via-node{i}");
        let value = format!("written-through-node{i}");
        let (status, body) = c.http(i, "PUT", &kv_path(&key), Some(&json!({"value": value})));
        assert_eq!(status, 200, "write through node{i}: {body}");
        assert_eq!(body["data"]["value"], json!(value), "{body}");
        expected.insert(key, value);
    }
    for &s in standbys {
        let line =
            format!("path=kv/via-node{s} status=finished err=\"cannot write to readonly storage\"");
        assert!(
            c.log_text(s).contains(&line),
            "node{s}'s plugin did not pass the read-only error through:\n{}",
            c.log_tail(s, 40)
        );
    }
    assert!(
        !c.log_text(active)
            .contains("cannot write to readonly storage")
    );

    // Reads and lists agree on every node once replication has caught up.
    let mut lag = Vec::new();
    for i in all_nodes() {
        lag.push((i, assert_node_has(c, i, &expected)));
    }
    eprintln!("all writes listed (time after the last write): {lag:?}");

    // An update and a delete through standbys reach every node too.
    let (status, body) = c.http(
        standbys[1],
        "PUT",
        &kv_path(&format!("via-node{active}")),
        Some(&json!({"value": "updated"})),
    );
    assert_eq!(status, 200, "{body}");
    expected.insert(format!("via-node{active}"), "updated".into());
    let (status, body) = c.http(
        standbys[0],
        "DELETE",
        &kv_path(&format!("via-node{}", standbys[0])),
        None,
    );
    assert_eq!(status, 204, "{body}");
    let deleted = expected
        .remove(&format!("via-node{}", standbys[0]))
        .map(|_| format!("via-node{}", standbys[0]));
    for i in all_nodes() {
        poll(
            &format!("node{i} to see the update and the delete"),
            CATCH_UP,
            || {
                let keys = list_keys(c, i)?;
                let updated = read_kv(c, i, &format!("via-node{active}"))?;
                let gone = read_kv(c, i, deleted.as_deref().unwrap())?;
                if keys == expected.keys().cloned().collect()
                    && updated.as_deref() == Some("updated")
                    && gone.is_none()
                {
                    Ok(())
                } else {
                    Err(format!(
                        "keys {keys:?}, updated {updated:?}, deleted {gone:?}"
                    ))
                }
            },
        );
        assert_node_has(c, i, &expected);
    }
    expected
}

/// `internal` per node, and InvalidateKey calls on the standbys only.
fn internal_is_per_node_and_standbys_get_invalidations(
    c: &Cluster,
    active: usize,
    standbys: &[usize],
    expected: &BTreeMap<String, String>,
) {
    // `internal` lives in each node's own plugin process: "bar" everywhere at first; a write
    // through a standby touches no storage, so its own plugin answers it and nothing is
    // forwarded or replicated.
    for i in all_nodes() {
        assert_eq!(read_internal(c, i).unwrap(), "bar", "node{i}");
    }
    for i in all_nodes() {
        let (status, body) = c.http(
            i,
            "PUT",
            &format!("{MOUNT}/internal"),
            Some(&json!({"value": format!("node{i}-own")})),
        );
        assert_eq!(status, 204, "{body}");
    }
    for i in all_nodes() {
        assert_eq!(read_internal(c, i).unwrap(), format!("node{i}-own"));
    }

    // InvalidateKey: each standby applies the replicated change and calls InvalidateKey on its
    // own plugin with the storage key; the active node, which made the change, does not.
    for &s in standbys {
        for key in expected.keys() {
            let line = format!("invalidate key: transport=gRPC key=kv/{key} status=finished");
            poll(&format!("node{s} to log {line:?}"), CATCH_UP, || {
                if c.log_text(s).contains(&line) {
                    Ok(())
                } else {
                    Err("not yet".into())
                }
            });
        }
    }
    assert!(
        !c.log_text(active)
            .contains("invalidate key: transport=gRPC")
    );

    // The mock clears `internal` when the storage key `internal` is invalidated. Writing that
    // raw storage entry on the active node (sys/raw is enabled in the test config) clears the
    // value on both standbys and leaves the active node's alone.
    let (_, mounts) = c.http(active, "GET", "sys/mounts", None);
    let uuid = mounts["data"][format!("{MOUNT}/")]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = c.http(
        active,
        "PUT",
        &format!("sys/raw/logical/{uuid}/internal"),
        Some(&json!({"value": "raw bytes"})),
    );
    assert_eq!(status, 204, "{body}");
    for &s in standbys {
        poll(
            &format!("node{s}'s internal to be cleared by InvalidateKey"),
            CATCH_UP,
            || match read_internal(c, s)? {
                v if v.is_empty() => Ok(()),
                v => Err(format!("still {v:?}")),
            },
        );
        assert!(
            c.log_text(s)
                .contains("invalidate key: transport=gRPC key=internal status=finished")
        );
    }
    assert_eq!(
        read_internal(c, active).unwrap(),
        format!("node{active}-own")
    );
}

/// `bao plugin reload -plugin=my-mock-plugin -scope=global` through the active node gives
/// every node a new plugin process, and every node serves the same data afterwards.
fn a_reload_through_the_active_node_reaches_every_node(
    c: &Cluster,
    active: usize,
    standbys: &[usize],
    expected: &mut BTreeMap<String, String>,
) {
    // A reload through the active node reaches every node: the active node restarts its plugin
    // and rewrites the mount entry; the standbys see the mount change and reload it too.
    // OpenBao accepts `-scope=global` (the CLI then prints the request id) but has no reload
    // status endpoint.
    let before = plugin_per_node(c);
    let started = Instant::now();
    let out = c.cli_ok(
        active,
        &[
            "plugin",
            "reload",
            &format!("-plugin={PLUGIN}"),
            "-scope=global",
        ],
    );
    assert!(
        out.contains("Success! Reloading plugin: my-mock-plugin, reload_id: "),
        "{out}"
    );
    let reload_id = out.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    let (status, body) = c.http(
        active,
        "GET",
        &format!("sys/plugins/reload/backend/status?reload_id={reload_id}"),
        None,
    );
    if status == 200 {
        eprintln!("reload status endpoint: {body}");
    } else {
        eprintln!("reload status endpoint: {status} (not offered by this OpenBao)");
    }
    let after = poll("a new plugin process on every node", CATCH_UP, || {
        let now: BTreeMap<usize, Vec<u32>> = all_nodes()
            .into_iter()
            .map(|i| (i, c.plugin_pids(i)))
            .collect();
        let renewed = now
            .iter()
            .all(|(i, pids)| pids.len() == 1 && pids[0] != before[i]);
        if renewed {
            Ok(now)
        } else {
            Err(format!("before {before:?}, now {now:?}"))
        }
    });
    eprintln!(
        "reload with -scope=global reached every node in {:.1?}: {before:?} -> {after:?}",
        started.elapsed()
    );
    for (i, pid) in &before {
        poll(
            &format!("node{i}'s old plugin {pid} to exit"),
            CATCH_UP,
            || {
                if pid_alive(*pid) {
                    Err("alive".into())
                } else {
                    Ok(())
                }
            },
        );
    }
    plugin_per_node(c);
    for i in all_nodes() {
        // Fresh backends, same data.
        poll(
            &format!("node{i} to serve after the reload"),
            CATCH_UP,
            || match read_internal(c, i)?.as_str() {
                "bar" => Ok(()),
                v => Err(format!("internal {v:?}")),
            },
        );
        assert_node_has(c, i, expected);
    }
    let (status, body) = c.http(
        standbys[0],
        "PUT",
        &kv_path("after-reload"),
        Some(&json!({"value": "ok"})),
    );
    assert_eq!(status, 200, "{body}");
    expected.insert("after-reload".into(), "ok".into());
    for i in all_nodes() {
        assert_node_has(c, i, expected);
    }
}

/// One write attempt of the failover writer.
#[derive(Clone, Debug)]
struct Attempt {
    key: String,
    value: String,
    node: usize,
    sent: Instant,
    done: Instant,
    /// `Ok` for an acknowledged write, else the status or connection error.
    outcome: Result<(), String>,
}

/// Writes `mock/kv/w-N` round-robin through `targets` (pausing `pace` between attempts) until
/// told to stop; every attempt is recorded in `log`. `names` maps `127.0.0.1:PORT` to node
/// names, to say where a redirect points.
fn spawn_writer(
    targets: Vec<(usize, String)>,
    names: BTreeMap<String, String>,
    token: String,
    pace: Duration,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Attempt>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let (node, addr) = &targets[n % targets.len()];
            let key = format!("w-{n:05}");
            let value = format!("value-{n}-via-node{node}");
            let sent = Instant::now();
            let result = http_exchange(
                addr,
                Some(&token),
                "PUT",
                &kv_path(&key),
                Some(&json!({"value": value})),
                Duration::from_secs(10),
            );
            let outcome = match result {
                Ok((200, _, body)) if body["data"]["value"] == json!(value) => Ok(()),
                Ok((status, Some(location), _)) => {
                    let target = location.trim_start_matches("http://");
                    let target = target.split('/').next().unwrap_or_default();
                    let name = names.get(target).map_or(target, String::as_str);
                    Err(format!("{status} redirect to {name}"))
                }
                Ok((status, None, body)) => Err(format!("{status} {}", short(&body))),
                Err(e) => Err(e),
            };
            let attempt = Attempt {
                key,
                value,
                node: *node,
                sent,
                done: Instant::now(),
                outcome,
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(attempt);
            n += 1;
            std::thread::sleep(pace);
        }
    })
}

/// Reads `mock/kv/KEY` round-robin through `targets` until told to stop; returns the outcomes
/// (`true` for a 200 with `value`) with their times.
fn spawn_reader(
    targets: Vec<String>,
    token: String,
    key: String,
    value: String,
    pace: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(Instant, bool)>> {
    std::thread::spawn(move || {
        let mut outcomes = Vec::new();
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let result = http_request(
                &targets[n % targets.len()],
                Some(&token),
                "GET",
                &kv_path(&key),
                None,
                Duration::from_secs(10),
            );
            let ok = matches!(&result, Ok((200, body)) if body["data"]["value"] == json!(value));
            outcomes.push((Instant::now(), ok));
            n += 1;
            std::thread::sleep(pace);
        }
        outcomes
    })
}

fn short(body: &Value) -> String {
    let text = body["errors"]
        .get(0)
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_owned);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(120)
        .collect()
}

fn acked_since(log: &Mutex<Vec<Attempt>>, since: Instant) -> usize {
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|a| a.outcome.is_ok() && a.sent >= since)
        .count()
}

#[test]
fn failover_after_sigkill_of_the_active_node_loses_no_acknowledged_write() {
    let _serial = serial();
    let (mut c, killed) = cluster_with_mount();
    let survivors: Vec<usize> = all_nodes().into_iter().filter(|&i| i != killed).collect();

    // Writers go round-robin through the standbys (forwarded to the active node).
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let targets: Vec<(usize, String)> = survivors
        .iter()
        .map(|&i| (i, c.node(i).hostport()))
        .collect();
    let names = all_nodes()
        .into_iter()
        .map(|i| (c.node(i).hostport(), c.node(i).node_id.clone()))
        .collect();
    let test_start = Instant::now();
    let writer = spawn_writer(
        targets.clone(),
        names,
        c.token().to_owned(),
        Duration::from_millis(15),
        stop.clone(),
        log.clone(),
    );
    poll(
        "50 acknowledged writes before the kill",
        Duration::from_secs(30),
        || match acked_since(&log, test_start) {
            n if n >= 50 => Ok(()),
            n => Err(format!("{n} acknowledged")),
        },
    );
    // A reader too, on one of those writes, round-robin through the same standbys: standby
    // reads are served locally, so they need no active node.
    let first = log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|a| a.outcome.is_ok())
        .cloned()
        .expect("an acknowledged write");
    let reader = spawn_reader(
        targets.into_iter().map(|(_, addr)| addr).collect(),
        c.token().to_owned(),
        first.key.clone(),
        first.value.clone(),
        Duration::from_millis(15),
        stop.clone(),
    );

    // SIGKILL the active node.
    let killed_plugins = c.kill(killed);
    let t_kill = Instant::now();
    assert!(
        !killed_plugins.is_empty(),
        "node{killed} had no plugin process"
    );

    // Its plugin process is left behind (reparented) and must exit by itself. Polled every
    // 5 ms (bounded) for a useful measure.
    let exit_deadline = t_kill + Duration::from_secs(15);
    while killed_plugins.iter().any(|&p| pid_alive(p)) {
        assert!(
            Instant::now() < exit_deadline,
            "node{killed}'s plugin processes {killed_plugins:?} still alive 15 s after the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let plugin_exit = t_kill.elapsed();

    // A new active node takes over and the writes through the survivors succeed again.
    let new_active = poll(
        "a new active node among the survivors",
        Duration::from_secs(60),
        || {
            survivors
                .iter()
                .copied()
                .find(|&i| c.health(i) == Some(200))
                .ok_or_else(|| "none yet".to_owned())
        },
    );
    let to_active = t_kill.elapsed();
    poll(
        "100 acknowledged writes sent after the kill",
        Duration::from_secs(60),
        || match acked_since(&log, t_kill) {
            n if n >= 100 => Ok(()),
            n => Err(format!("{n} acknowledged")),
        },
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    let reads = reader.join().expect("reader thread");
    let reads_in_gap: Vec<bool> = reads
        .iter()
        .filter(|(t, _)| *t >= t_kill)
        .map(|&(_, ok)| ok)
        .collect();
    let attempts = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));

    let first_ack = attempts
        .iter()
        .filter(|a| a.sent >= t_kill && a.outcome.is_ok())
        .map(|a| a.done)
        .min()
        .expect("an acknowledged write after the kill");
    let failover = first_ack - t_kill;
    let acked: BTreeMap<String, String> = attempts
        .iter()
        .filter(|a| a.outcome.is_ok())
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    let failed: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome.is_err()).collect();
    let mut failure_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in &failed {
        let text = a.outcome.clone().unwrap_err();
        let kind = text
            .split_whitespace()
            .take(8)
            .collect::<Vec<_>>()
            .join(" ");
        *failure_kinds.entry(kind).or_default() += 1;
    }
    let gap_end = failed.iter().map(|a| a.done).max();

    eprintln!(
        "---- failover figures (node{killed} SIGKILLed, writes round-robin through nodes {survivors:?}) ----"
    );
    eprintln!("kill -> node{new_active} active (health 200):      {to_active:.2?}");
    eprintln!("kill -> first acknowledged write:       {failover:.2?}");
    if let Some(end) = gap_end {
        eprintln!(
            "kill -> last failed write:              {:.2?}",
            end.saturating_duration_since(t_kill)
        );
    }
    let acked_after = attempts
        .iter()
        .filter(|a| a.outcome.is_ok() && a.sent >= t_kill)
        .count();
    eprintln!(
        "writes acknowledged / failed:           {} / {} ({} acknowledged before the kill, {acked_after} after)",
        acked.len(),
        failed.len(),
        acked.len() - acked_after
    );
    eprintln!("failures by kind:                       {failure_kinds:?}");
    eprintln!(
        "reads through the survivors after the kill:  {} ok / {} failed",
        reads_in_gap.iter().filter(|&&ok| ok).count(),
        reads_in_gap.iter().filter(|&&ok| !ok).count()
    );
    eprintln!("killed node's plugin exited by itself:  {plugin_exit:.2?} after the kill");

    assert!(
        failover < Duration::from_secs(45),
        "failover took {failover:?}"
    );
    assert!(
        plugin_exit < Duration::from_secs(10),
        "plugin exit took {plugin_exit:?}"
    );

    // Every acknowledged write reads back on both survivors.
    for &i in &survivors {
        let listed = assert_node_has(&c, i, &acked);
        eprintln!(
            "node{i}: all {} acknowledged writes read back (listed {listed:.1?} after the writers stopped)",
            acked.len()
        );
    }

    // The killed node restarts sealed, is unsealed, rejoins as a voter and serves the same data.
    c.restart(killed);
    let t_restart = Instant::now();
    c.wait_health(killed, &[503], Duration::from_secs(30));
    c.unseal(killed, Duration::from_secs(30));
    c.wait_health(killed, &[429], Duration::from_secs(30));
    let to_standby = t_restart.elapsed();
    let active_after = c.wait_voters(Duration::from_secs(60));
    let to_voter = t_restart.elapsed();
    assert_ne!(active_after, killed, "the rejoined node is a standby");
    let pids = plugin_per_node(&c);
    assert!(
        !killed_plugins.contains(&pids[&killed]),
        "a new plugin process on node{killed}"
    );
    let listed = assert_node_has(&c, killed, &acked);

    // And it takes writes (forwarded), which every node then serves.
    let mut expected = acked.clone();
    let (status, body) = c.http(
        killed,
        "PUT",
        &kv_path("after-rejoin"),
        Some(&json!({"value": "back"})),
    );
    assert_eq!(status, 200, "{body}");
    expected.insert("after-rejoin".into(), "back".into());
    for i in all_nodes() {
        assert_node_has(&c, i, &expected);
    }

    eprintln!("restart -> unsealed standby:            {to_standby:.2?}");
    eprintln!("restart -> healthy voter:               {to_voter:.2?}");
    eprintln!("rejoined node listed all acknowledged writes {listed:.1?} after becoming a voter");
}

// ---- a load of writers and readers on every node, for the freeze and the upgrade ----

/// Guard on one request of the load. Longer than the 10 s freeze, so a request that reached
/// the frozen node is answered once it thaws (a shorter one would turn every such request
/// into a client-side timeout and hide what the node answers).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two requests of one client of the load.
const LOAD_PACE: Duration = Duration::from_millis(20);

/// One read of the load.
#[derive(Clone, Debug)]
struct ReadAttempt {
    node: usize,
    sent: Instant,
    outcome: Result<(), String>,
}

/// One writer and one reader per node: the writer writes fresh keys `PREFIX-nI-SEQ` through
/// node I, the reader reads `seed_key` through node I. Every attempt is recorded.
struct Load {
    stop: Arc<AtomicBool>,
    writes: Arc<Mutex<Vec<Attempt>>>,
    reads: Arc<Mutex<Vec<ReadAttempt>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What a redirect or error answer said, short enough to count by kind.
fn answer_kind(
    result: Result<(u16, Option<String>, Value), String>,
    names: &BTreeMap<String, String>,
) -> String {
    match result {
        Ok((status, Some(location), _)) => {
            let target = location.trim_start_matches("http://");
            let target = target.split('/').next().unwrap_or_default();
            let name = names.get(target).map_or(target, String::as_str);
            format!("{status} redirect to {name}")
        }
        Ok((status, None, body)) => format!("{status} {}", short(&body)),
        Err(e) => {
            // Connection errors name the port; keep only the kind.
            let kind = e.rsplit(": ").next().unwrap_or(&e);
            format!("no answer: {kind}")
        }
    }
}

impl Load {
    fn start(c: &Cluster, prefix: &str, seed_key: &str, seed_value: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let reads = Arc::new(Mutex::new(Vec::new()));
        let names: BTreeMap<String, String> = all_nodes()
            .into_iter()
            .map(|i| (c.node(i).hostport(), c.node(i).node_id.clone()))
            .collect();
        let mut threads = Vec::new();
        for node in all_nodes() {
            let (addr, token) = (c.node(node).hostport(), c.token().to_owned());
            let (halt, log, known) = (stop.clone(), writes.clone(), names.clone());
            let prefix = prefix.to_owned();
            threads.push(std::thread::spawn(move || {
                let mut n = 0usize;
                while !halt.load(Ordering::Relaxed) {
                    let key = format!("{prefix}-n{node}-{n:05}");
                    let value = format!("{key}-value");
                    let sent = Instant::now();
                    let result = http_exchange(
                        &addr,
                        Some(&token),
                        "PUT",
                        &kv_path(&key),
                        Some(&json!({ "value": value })),
                        LOAD_TIMEOUT,
                    );
                    let outcome = match result {
                        Ok((200, _, ref body)) if body["data"]["value"] == json!(value) => Ok(()),
                        other => Err(answer_kind(other, &known)),
                    };
                    let attempt = Attempt {
                        key,
                        value,
                        node,
                        sent,
                        done: Instant::now(),
                        outcome,
                    };
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(attempt);
                    n += 1;
                    std::thread::sleep(LOAD_PACE);
                }
            }));
            let (addr, token) = (c.node(node).hostport(), c.token().to_owned());
            let (halt, log, known) = (stop.clone(), reads.clone(), names.clone());
            let (key, value) = (seed_key.to_owned(), seed_value.to_owned());
            threads.push(std::thread::spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let result = http_exchange(
                        &addr,
                        Some(&token),
                        "GET",
                        &kv_path(&key),
                        None,
                        LOAD_TIMEOUT,
                    );
                    let outcome = match result {
                        Ok((200, _, ref body)) if body["data"]["value"] == json!(value) => Ok(()),
                        other => Err(answer_kind(other, &known)),
                    };
                    let attempt = ReadAttempt {
                        node,
                        sent,
                        outcome,
                    };
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(attempt);
                    std::thread::sleep(LOAD_PACE);
                }
            }));
        }
        Self {
            stop,
            writes,
            reads,
            threads,
        }
    }

    /// Acknowledged writes sent through `node` (any node when `None`) at or after `since`.
    fn acked(&self, node: Option<usize>, since: Instant) -> usize {
        self.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|a| a.outcome.is_ok() && a.sent >= since && node.is_none_or(|n| a.node == n))
            .count()
    }

    /// Waits (bounded) until the writer of every node has `count` writes acknowledged that it
    /// sent at or after `since`.
    fn wait_acked_everywhere(&self, count: usize, since: Instant, what: &str) {
        poll(what, Duration::from_secs(90), || {
            let per_node: Vec<usize> = all_nodes()
                .into_iter()
                .map(|i| self.acked(Some(i), since))
                .collect();
            if per_node.iter().all(|&n| n >= count) {
                Ok(())
            } else {
                Err(format!("acknowledged per node: {per_node:?}"))
            }
        });
    }

    /// Stops every client (each finishes its request in flight) and returns what they did.
    fn stop(self) -> (Vec<Attempt>, Vec<ReadAttempt>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("load thread");
        }
        let writes = std::mem::take(&mut *self.writes.lock().unwrap_or_else(|e| e.into_inner()));
        let reads = std::mem::take(&mut *self.reads.lock().unwrap_or_else(|e| e.into_inner()));
        (writes, reads)
    }
}

/// Counts outcomes by kind: `"ok"` and each kind of failure.
fn by_kind<'a>(outcomes: impl Iterator<Item = &'a Result<(), String>>) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for outcome in outcomes {
        let kind = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.clone(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// Writes one key through `node` and waits until every node serves it; the readers of the
/// load read it.
fn seed(c: &Cluster, node: usize, key: &str, value: &str) {
    let (status, body) = c.http(node, "PUT", &kv_path(key), Some(&json!({ "value": value })));
    assert_eq!(status, 200, "seed write: {body}");
    let expected = BTreeMap::from([(key.to_owned(), value.to_owned())]);
    for i in all_nodes() {
        assert_node_has(c, i, &expected);
    }
}

/// The keys of `expected` that `node` does not serve with their value, once it has had
/// [`CATCH_UP`] to list them all (a standby's copy trails the active node). Unlike
/// [`assert_node_has`] it returns them, so that a test can report the count before failing.
fn lost_on(c: &Cluster, node: usize, expected: &BTreeMap<String, String>) -> Vec<String> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let listed = list_keys(c, node).unwrap_or_default();
        if expected.keys().all(|k| listed.contains(k)) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    expected
        .iter()
        .filter(|(key, value)| {
            read_kv(c, node, key).ok().flatten().as_deref() != Some(value.as_str())
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// Every acknowledged write of `writes`, as key → value.
fn acknowledged(writes: &[Attempt]) -> BTreeMap<String, String> {
    writes
        .iter()
        .filter(|a| a.outcome.is_ok())
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect()
}

/// How long the active node stays frozen.
const FREEZE: Duration = Duration::from_secs(10);

/// SIGSTOP of the active node for 10 s under a write and read load on every node, then
/// SIGCONT: another node takes over, the thawed node steps down and rejoins as a standby and
/// voter, and every acknowledged write (including those the frozen node acknowledged after
/// it thawed) is on all three nodes.
#[test]
fn a_frozen_active_node_steps_down_after_thawing_and_no_acknowledged_write_is_lost() {
    let _serial = serial();
    let (mut c, frozen) = cluster_with_mount();
    let others: Vec<usize> = all_nodes().into_iter().filter(|&i| i != frozen).collect();
    seed(&c, frozen, "freeze-seed", "seeded");
    let plugin_before = plugin_per_node(&c)[&frozen];

    let load = Load::start(&c, "fz", "freeze-seed", "seeded");
    let load_start = Instant::now();
    load.wait_acked_everywhere(
        20,
        load_start,
        "20 acknowledged writes per node before the freeze",
    );

    c.signal(frozen, "STOP");
    let t_stop = Instant::now();
    poll("node to be stopped", Duration::from_secs(5), || {
        match c.state(frozen) {
            Some('T') => Ok(()),
            other => Err(format!("state {other:?}")),
        }
    });

    // Another node takes over (health 200) while the old active node is still frozen.
    let new_active = poll(
        "a new active node while the old one is frozen",
        FREEZE,
        || {
            others
                .iter()
                .copied()
                .find(|&i| c.health(i) == Some(200))
                .ok_or_else(|| "none yet".to_owned())
        },
    );
    let takeover = t_stop.elapsed();
    // Writes through the new active node succeed before the thaw. (The other standby may
    // answer 307, a redirect to the new active node, instead of forwarding for a few seconds,
    // as after a SIGKILL: that is the server's doing, so it is counted, not asserted.)
    poll(
        "5 acknowledged writes through the new active node during the freeze",
        FREEZE.saturating_sub(t_stop.elapsed()),
        || match load.acked(Some(new_active), t_stop + takeover) {
            n if n >= 5 => Ok(()),
            n => Err(format!("{n} acknowledged since the takeover")),
        },
    );
    // The fault lasts FREEZE whatever happens meanwhile: the frozen node is checked to stay
    // stopped, the rest is watched by the load.
    while t_stop.elapsed() < FREEZE {
        assert_eq!(c.state(frozen), Some('T'), "node{frozen} woke up by itself");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.signal(frozen, "CONT");
    let t_cont = Instant::now();

    // The thawed node finds a newer term, steps down and becomes a standby (429), and all
    // three are healthy voters again with one leader, which is not the thawed node.
    c.wait_health(frozen, &[429], Duration::from_secs(60));
    let to_standby = t_cont.elapsed();
    let active_after = c.wait_voters(Duration::from_secs(60));
    let to_voters = t_cont.elapsed();
    assert_ne!(active_after, frozen, "the thawed node must not be active");
    assert_eq!(
        active_after, new_active,
        "the node that took over stays active"
    );
    // sys/ha-status, from the thawed node and from the active one: one active node, the
    // thawed node among the standbys.
    for i in [frozen, active_after] {
        let (status, body) = c.http(i, "GET", "sys/ha-status", None);
        assert_eq!(status, 200, "node{i}: {body}");
        let nodes = body["nodes"].as_array().unwrap_or_else(|| panic!("{body}"));
        let active_addrs: Vec<&str> = nodes
            .iter()
            .filter(|n| n["active_node"] == json!(true))
            .filter_map(|n| n["api_address"].as_str())
            .collect();
        assert_eq!(
            active_addrs,
            [c.node(active_after).addr()],
            "node{i}'s ha-status: {body}"
        );
        assert!(
            nodes
                .iter()
                .any(|n| n["api_address"] == json!(c.node(frozen).addr())
                    && n["active_node"] == json!(false)),
            "node{i}'s ha-status lacks node{frozen} as a standby: {body}"
        );
    }
    // Raft peers seen by the thawed node itself: three voters, the new leader among them.
    let servers = poll("the thawed node's raft configuration", CATCH_UP, || {
        c.raft_servers(frozen)
    });
    let voters: BTreeSet<&str> = servers
        .iter()
        .filter(|s| s.2)
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(voters, ["node1", "node2", "node3"].into(), "{servers:?}");
    let leaders: Vec<&str> = servers
        .iter()
        .filter(|s| s.1)
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(
        leaders,
        [c.node(active_after).node_id.as_str()],
        "{servers:?}"
    );

    // The thawed node's writer gets through again (forwarded now), and so does everyone.
    load.wait_acked_everywhere(
        20,
        t_cont + to_voters,
        "20 acknowledged writes per node after the rejoin",
    );
    let (writes, reads) = load.stop();

    // The thawed node's plugin: one process, serving reads (the readers' last reads through
    // that node were answered). Either the same process kept serving or the node replaced it
    // when it stepped down; the old one must then be gone.
    let plugin_after = plugin_per_node(&c)[&frozen];
    let plugin_fate = if plugin_after == plugin_before {
        format!("the same process {plugin_before} kept serving")
    } else {
        poll("the replaced plugin process to exit", CATCH_UP, || {
            if pid_alive(plugin_before) {
                Err(format!("{plugin_before} alive"))
            } else {
                Ok(())
            }
        });
        format!("replaced: {plugin_before} exited, {plugin_after} serves")
    };
    assert_eq!(
        read_kv(&c, frozen, "freeze-seed").unwrap().as_deref(),
        Some("seeded")
    );
    let last_reads: Vec<&ReadAttempt> = reads
        .iter()
        .filter(|r| r.node == frozen && r.sent >= t_cont + to_voters)
        .collect();
    assert!(
        !last_reads.is_empty() && last_reads.iter().all(|r| r.outcome.is_ok()),
        "reads through the thawed node after the rejoin: {:?}",
        by_kind(last_reads.iter().map(|r| &r.outcome))
    );

    // Every acknowledged write is on all three nodes, those of the frozen node included.
    let acked = acknowledged(&writes);
    let by_frozen: BTreeMap<String, String> = writes
        .iter()
        .filter(|a| a.node == frozen && a.outcome.is_ok())
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    let lost: BTreeMap<usize, Vec<String>> = all_nodes()
        .into_iter()
        .map(|i| (i, lost_on(&c, i, &acked)))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();

    let during = |sent: Instant| sent >= t_stop && sent < t_cont;
    let writes_during: Vec<&Attempt> = writes.iter().filter(|a| during(a.sent)).collect();
    let reads_during: Vec<&ReadAttempt> = reads.iter().filter(|r| during(r.sent)).collect();
    let failed_writes = writes_during.iter().filter(|a| a.outcome.is_err()).count();
    let failed_reads = reads_during.iter().filter(|r| r.outcome.is_err()).count();
    let frozen_answers: Vec<String> = writes
        .iter()
        .filter(|a| a.node == frozen && a.sent < t_cont && a.done >= t_cont)
        .map(|a| match &a.outcome {
            Ok(()) => format!("{} acknowledged after {:.1?}", a.key, a.done - a.sent),
            Err(e) => format!("{} failed after {:.1?}: {e}", a.key, a.done - a.sent),
        })
        .collect();
    eprintln!(
        "---- frozen leader figures (node{frozen} SIGSTOPped {FREEZE:?}, one writer and one reader per node) ----"
    );
    eprintln!("stop -> node{new_active} active (takeover):          {takeover:.2?}");
    eprintln!("thaw -> node{frozen} a standby (health 429):         {to_standby:.2?}");
    eprintln!("thaw -> three healthy voters, node{active_after} leader:   {to_voters:.2?}");
    eprintln!(
        "writes sent during the freeze: {} ({failed_writes} failed), by node and kind: {:?}",
        writes_during.len(),
        all_nodes()
            .into_iter()
            .map(|i| (
                i,
                by_kind(
                    writes_during
                        .iter()
                        .filter(|a| a.node == i)
                        .map(|a| &a.outcome)
                )
            ))
            .collect::<BTreeMap<_, _>>()
    );
    eprintln!(
        "reads sent during the freeze: {} ({failed_reads} failed), by node and kind: {:?}",
        reads_during.len(),
        all_nodes()
            .into_iter()
            .map(|i| (
                i,
                by_kind(
                    reads_during
                        .iter()
                        .filter(|r| r.node == i)
                        .map(|r| &r.outcome)
                )
            ))
            .collect::<BTreeMap<_, _>>()
    );
    eprintln!("requests to node{frozen} in flight at the thaw: {frozen_answers:?}");
    eprintln!(
        "all writes: {} sent, {} acknowledged ({} through node{frozen}), {} failed; by kind {:?}",
        writes.len(),
        acked.len(),
        by_frozen.len(),
        writes.iter().filter(|a| a.outcome.is_err()).count(),
        by_kind(writes.iter().map(|a| &a.outcome))
    );
    // When the failures happened, per node: seconds from the stop (the thaw is at FREEZE).
    for i in all_nodes() {
        let failed: Vec<f64> = writes
            .iter()
            .filter(|a| a.node == i && a.outcome.is_err())
            .map(|a| a.sent.saturating_duration_since(t_stop).as_secs_f64())
            .collect();
        if let (Some(first), Some(last)) = (failed.first(), failed.last()) {
            eprintln!(
                "failed writes via node{i}: {}, sent {first:.2}–{last:.2} s after the stop",
                failed.len()
            );
        }
    }
    eprintln!("thawed node's plugin: {plugin_fate}");
    eprintln!(
        "acknowledged writes lost: {} (each of the {} read through every node)",
        lost.values().map(Vec::len).sum::<usize>(),
        acked.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes missing or wrong, by node: {lost:?}"
    );
    assert!(takeover < FREEZE, "takeover took {takeover:?}");
}

/// The plugin's version reported by a node's plugin process, from its environment (the
/// catalog entry's `env` reaches the process), and the node's `running_plugin_version`.
fn running_version(c: &Cluster, node: usize) -> Result<String, String> {
    let (status, mounts) = c.request(node, "GET", "sys/mounts", None)?;
    let mount = &mounts["data"][format!("{MOUNT}/")];
    match (status, mount["running_plugin_version"].as_str()) {
        (200, Some(version)) => Ok(version.to_owned()),
        _ => Err(format!("sys/mounts on node{node}: {status} {mount}")),
    }
}

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

const UPGRADE_VERSION: &str = "v0.2.0";

/// The same binary registered as v0.2.0 (it reports the version in
/// `TESTING_MOCK_VAULT_PLUGIN_VERSION`, set by the catalog entry's `env`), the mount tuned to
/// it and the plugin reloaded, all under a write and read load on every node: every node ends
/// on v0.2.0 with a new plugin process, and no acknowledged write is lost.
#[test]
fn a_rolling_plugin_upgrade_reaches_every_node_under_load_and_loses_nothing() {
    let _serial = serial();
    let (c, active) = cluster_with_mount();
    seed(&c, active, "upgrade-seed", "seeded");
    let before = plugin_per_node(&c);
    let sha = c.install_plugin(PLUGIN);

    let load = Load::start(&c, "up", "upgrade-seed", "seeded");
    let load_start = Instant::now();
    load.wait_acked_everywhere(
        20,
        load_start,
        "20 acknowledged writes per node before the upgrade",
    );

    let t_upgrade = Instant::now();
    let env_var = format!("TESTING_MOCK_VAULT_PLUGIN_VERSION={UPGRADE_VERSION}");
    let (status, body) = c.http(
        active,
        "PUT",
        &format!("sys/plugins/catalog/secret/{PLUGIN}"),
        Some(&json!({
            "sha256": sha,
            "command": PLUGIN,
            "version": UPGRADE_VERSION,
            "env": [env_var],
        })),
    );
    assert_eq!(status, 204, "register {UPGRADE_VERSION}: {body}");
    let (status, body) = c.http(
        active,
        "POST",
        &format!("sys/mounts/{MOUNT}/tune"),
        Some(&json!({ "plugin_version": UPGRADE_VERSION })),
    );
    assert!(matches!(status, 200 | 204), "tune: {status} {body}");
    // Whether the tune alone switches the running version (it does not in OpenBao 2.7.2: the
    // mount keeps running the old process until the reload).
    eprintln!(
        "tune answered {status} {body}; node{active} then runs {:?}",
        running_version(&c, active)
    );
    let (status, body) = c.http(
        active,
        "PUT",
        "sys/plugins/reload/backend",
        Some(&json!({ "plugin": PLUGIN, "scope": "global" })),
    );
    assert!(matches!(status, 200 | 204), "reload: {status} {body}");
    eprintln!("reload answered {status} {body}");

    // Every node: running_plugin_version v0.2.0, and one plugin process, new, started with
    // the catalog entry's environment.
    let after = poll(
        "every node on v0.2.0 with a new plugin process",
        Duration::from_secs(60),
        || {
            let mut now = BTreeMap::new();
            for i in all_nodes() {
                let version = running_version(&c, i)?;
                let pids = c.plugin_pids(i);
                match pids.as_slice() {
                    [pid]
                        if version == UPGRADE_VERSION
                            && *pid != before[&i]
                            && environ(*pid).contains(&env_var) =>
                    {
                        now.insert(i, *pid);
                    }
                    _ => return Err(format!("node{i}: version {version}, plugins {pids:?}")),
                }
            }
            Ok(now)
        },
    );
    let upgraded = t_upgrade.elapsed();
    for (i, pid) in &before {
        poll(
            &format!("node{i}'s old plugin {pid} to exit"),
            CATCH_UP,
            || {
                if pid_alive(*pid) {
                    Err("alive".into())
                } else {
                    Ok(())
                }
            },
        );
    }
    load.wait_acked_everywhere(
        20,
        t_upgrade + upgraded,
        "20 acknowledged writes per node after the upgrade",
    );
    let (writes, reads) = load.stop();

    let acked = acknowledged(&writes);
    let lost: BTreeMap<usize, Vec<String>> = all_nodes()
        .into_iter()
        .map(|i| (i, lost_on(&c, i, &acked)))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    for i in all_nodes() {
        assert_eq!(running_version(&c, i).unwrap(), UPGRADE_VERSION, "node{i}");
    }
    let failed_writes: Vec<&Attempt> = writes.iter().filter(|a| a.outcome.is_err()).collect();
    let failed_reads: Vec<&ReadAttempt> = reads.iter().filter(|r| r.outcome.is_err()).collect();
    eprintln!(
        "---- rolling upgrade figures ({GO_MOCK_VERSION} -> {UPGRADE_VERSION}, one writer and one reader per node) ----"
    );
    eprintln!(
        "register + tune + reload -> every node on {UPGRADE_VERSION} with a new process: {upgraded:.2?}"
    );
    eprintln!("plugin processes: {before:?} -> {after:?}");
    let window = |sent: Instant| sent >= t_upgrade && sent <= t_upgrade + upgraded;
    eprintln!(
        "sent while the upgrade was under way: {} writes, {} reads",
        writes.iter().filter(|a| window(a.sent)).count(),
        reads.iter().filter(|r| window(r.sent)).count()
    );
    eprintln!(
        "writes: {} sent, {} acknowledged, {} failed {:?}",
        writes.len(),
        acked.len(),
        failed_writes.len(),
        by_kind(failed_writes.iter().map(|a| &a.outcome))
    );
    eprintln!(
        "reads: {} sent, {} failed {:?}",
        reads.len(),
        failed_reads.len(),
        by_kind(failed_reads.iter().map(|r| &r.outcome))
    );
    for a in &failed_writes {
        eprintln!(
            "failed write via node{} at +{:.2?}: {:?}",
            a.node,
            a.sent.saturating_duration_since(t_upgrade),
            a.outcome
        );
    }
    eprintln!(
        "acknowledged writes lost: {} (each of the {} read through every node)",
        lost.values().map(Vec::len).sum::<usize>(),
        acked.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes missing or wrong, by node: {lost:?}"
    );
    assert!(
        failed_writes.is_empty(),
        "{} writes failed",
        failed_writes.len()
    );
    assert!(
        failed_reads.is_empty(),
        "{} reads failed",
        failed_reads.len()
    );
}
