//! The differential harness: one corpus of HTTP requests sent to several mounts of one server,
//! each mount served by another implementation of the mock, and every answer compared whole
//! with the oracle's after normalising only what must differ (request ids, mount names and
//! ids, plugin names).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::{DevServer, lossy, peer_bin, plugin_bin};

/// One implementation of the mock, registered under its own name and mounted at its own path.
pub struct Target {
    /// The catalog name; also the file name in the plugin directory.
    pub plugin: &'static str,
    /// Where it is mounted (no trailing slash).
    pub mount: &'static str,
    pub binary: PathBuf,
    /// The mount's UUID, its storage prefix under `sys/raw/logical/`.
    pub uuid: String,
}

impl Target {
    pub fn ours() -> Self {
        Self::new("ours", "m-ours", plugin_bin())
    }

    /// The Go mock of OpenBao's SDK: the oracle.
    pub fn openbao_mock() -> Self {
        Self::new("gobao", "m-gobao", peer_bin("openbao-mock"))
    }

    /// The Go mock of Vault's newer SDK.
    pub fn vault_mock() -> Self {
        Self::new("govault", "m-govault", peer_bin("vault-mock"))
    }

    fn new(plugin: &'static str, mount: &'static str, binary: PathBuf) -> Self {
        Self {
            plugin,
            mount,
            binary,
            uuid: String::new(),
        }
    }

    /// Installs, registers (typed, each reporting its own default version) and mounts the target,
    /// then learns its mount's UUID.
    pub fn install(&mut self, server: &DevServer) {
        let sha = server.install_file(self.plugin, &self.binary);
        let (status, body) = server.http(
            "PUT",
            &format!("sys/plugins/catalog/secret/{}", self.plugin),
            Some(&json!({
                "sha256": sha,
                "command": self.plugin,
            })),
        );
        assert_eq!(status, 204, "register {}: {body}", self.plugin);
        server.cli_ok(&[
            "secrets",
            "enable",
            &format!("-path={}", self.mount),
            self.plugin,
        ]);
        let (_, mounts) = server.http("GET", "sys/mounts", None);
        self.uuid = mounts["data"][format!("{}/", self.mount)]["uuid"]
            .as_str()
            .unwrap_or_else(|| panic!("no uuid for {}: {mounts}", self.mount))
            .to_owned();
    }

    /// `template` with `{m}` as the mount and `{uuid}` as the mount's UUID.
    fn expand(&self, template: &str) -> String {
        template
            .replace("{m}", self.mount)
            .replace("{uuid}", &self.uuid)
    }

    /// Replaces what legitimately differs between targets in a text.
    pub fn normalise_text(&self, text: &str) -> String {
        text.replace(&self.uuid, "UUID")
            .replace(self.mount, "MOUNT")
            .replace(self.plugin, "PLUGIN")
    }
}

/// Who sends a request.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    Root,
    Anonymous,
    /// A token made by a [`Step::Token`] step, by its name.
    Token(&'static str),
}

/// What to take from an answer before comparing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extract {
    Whole,
    /// The server-wide OpenAPI document: only the target mount's paths.
    OpenApiPaths,
}

/// One request of the corpus. `path` is below `/v1/`, with `{m}` and `{uuid}` placeholders.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub content_type: &'static str,
    pub auth: Auth,
    pub extract: Extract,
}

impl Case {
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        let path = path.into();
        Self {
            id: format!("{method} {}", path.trim_start_matches("{m}/")),
            method,
            path,
            body: None,
            content_type: "application/json",
            auth: Auth::Root,
            extract: Extract::Whole,
        }
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    pub fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn extract(mut self, extract: Extract) -> Self {
        self.extract = extract;
        self
    }

    /// A clearer name for the table than the method and path.
    pub fn named(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }
}

/// One step of the corpus: a compared request, or preparation that is not compared.
pub enum Step {
    Send(Case),
    /// Writes `kv/<prefix><n>` for n below the count, with 16 writers.
    WriteMany(&'static str, usize),
    /// A token with one policy (HCL with `{m}`), remembered under a name.
    Token(&'static str, &'static str),
}

/// What a target answered, normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// One line for the table, long values cut.
    pub fn brief(&self) -> String {
        let body = self.body.to_string();
        let body = if body.len() > 600 {
            let cut: String = body.chars().take(600).collect();
            format!("{cut}… ({} bytes)", body.len())
        } else {
            body
        };
        format!("{} {} {body}", self.status, self.content_type)
    }
}

/// Sends every step to every target in turn (step by step, so their states stay in step) and
/// returns, for each case, the answers in the order of `targets`.
pub fn run(server: &DevServer, targets: &[Target], steps: &[Step]) -> Vec<(Case, Vec<Answer>)> {
    let mut tokens: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut results = Vec::new();
    for step in steps {
        match step {
            Step::Send(case) => {
                let answers = targets
                    .iter()
                    .map(|target| send(server, target, case, &tokens))
                    .collect();
                results.push((case.clone(), answers));
            }
            Step::WriteMany(prefix, count) => {
                for target in targets {
                    write_many(server, target, prefix, *count);
                }
            }
            Step::Token(name, policy) => {
                for target in targets {
                    let policy_name = format!("{name}-{}", target.plugin);
                    let (status, body) = server.http(
                        "PUT",
                        &format!("sys/policies/acl/{policy_name}"),
                        Some(&json!({ "policy": target.expand(policy) })),
                    );
                    assert_eq!(status, 204, "policy {policy_name}: {body}");
                    let token = server.cli_ok(&[
                        "token",
                        "create",
                        &format!("-policy={policy_name}"),
                        "-field=token",
                    ]);
                    tokens.insert((name, target.plugin), token.trim().to_owned());
                }
            }
        }
    }
    results
}

fn send(
    server: &DevServer,
    target: &Target,
    case: &Case,
    tokens: &BTreeMap<(&str, &str), String>,
) -> Answer {
    let token = match case.auth {
        Auth::Root => Some(server.token().to_owned()),
        Auth::Anonymous => None,
        Auth::Token(name) => Some(tokens[&(name, target.plugin)].clone()),
    };
    let mut headers = Vec::new();
    if let Some(token) = &token {
        headers.push(("X-Vault-Token", token.as_str()));
    }
    if case.body.is_some() {
        headers.push(("Content-Type", case.content_type));
    }
    let path = target.expand(&case.path);
    let body = case.body.as_deref().unwrap_or_default();
    let (status, response_headers, raw) = server.http_raw(case.method, &path, &headers, body);
    let content_type = response_headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let text = target.normalise_text(&lossy(&raw));
    let mut body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if let Some(object) = body.as_object_mut() {
        if object.contains_key("request_id") {
            object.insert("request_id".into(), json!("REQUEST_ID"));
        }
    }
    if case.extract == Extract::OpenApiPaths {
        body = openapi_paths(&body);
    }
    Answer {
        status,
        content_type,
        body,
    }
}

/// The mount's part of the server's OpenAPI document (paths already normalised to `/MOUNT/`).
fn openapi_paths(document: &Value) -> Value {
    let paths: serde_json::Map<String, Value> = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(path, _)| path.starts_with("/MOUNT/"))
        .map(|(path, item)| (path.clone(), item.clone()))
        .collect();
    Value::Object(paths)
}

fn write_many(server: &DevServer, target: &Target, prefix: &str, count: usize) {
    let keys: Vec<String> = (0..count).map(|n| format!("{prefix}{n:05}")).collect();
    std::thread::scope(|scope| {
        for chunk in keys.chunks(count.div_ceil(16)) {
            scope.spawn(move || {
                for key in chunk {
                    let (status, body) = server.http(
                        "PUT",
                        &format!("{}/kv/{key}", target.mount),
                        Some(&json!({ "value": key })),
                    );
                    assert_eq!(status, 200, "{} {key}: {body}", target.plugin);
                }
            });
        }
    });
}

/// Writes every case whose answers differ as pretty JSON, one file per case and target, for
/// a closer look with `diff` (`DIFFERENTIAL_DUMP=dir`).
pub fn dump(results: &[(Case, Vec<Answer>)], targets: &[Target], dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("create the dump directory");
    for (index, (case, answers)) in results.iter().enumerate() {
        if answers.iter().all(|answer| answer == &answers[0]) {
            continue;
        }
        for (target, answer) in targets.iter().zip(answers) {
            let text = serde_json::to_string_pretty(&json!({
                "case": case.id,
                "status": answer.status,
                "content_type": answer.content_type,
                "body": answer.body,
            }))
            .unwrap_or_default();
            let name = format!("{index:03}-{}.json", target.plugin);
            std::fs::write(dir.join(name), text).expect("write dump");
        }
    }
}

/// Why our answer to a case may differ from the oracle's (ours, theirs); `None` when it must
/// not.
pub type Deliberate = dyn Fn(&Case, &Answer, &Answer) -> Option<&'static str>;

/// How one answer compares with the oracle's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Identical,
    /// Different for a reason the README gives.
    Deliberate(&'static str),
    Unexplained,
}

/// Compares column `ours` with column `oracle` case by case; `deliberate` names the known
/// differences. Returns the verdicts and a printable table with both answers of every
/// difference side by side.
pub fn compare(
    results: &[(Case, Vec<Answer>)],
    ours: usize,
    oracle: usize,
    deliberate: &Deliberate,
) -> (Vec<Verdict>, String) {
    let mut table = String::new();
    let mut verdicts = Vec::new();
    for (case, answers) in results {
        let (mine, theirs) = (&answers[ours], &answers[oracle]);
        let verdict = if mine == theirs {
            Verdict::Identical
        } else if let Some(reason) = deliberate(case, mine, theirs) {
            Verdict::Deliberate(reason)
        } else {
            Verdict::Unexplained
        };
        match &verdict {
            Verdict::Identical => {
                let _ = writeln!(table, "  identical    {}", case.id);
            }
            Verdict::Deliberate(reason) => {
                let _ = writeln!(table, "  deliberate   {} ({reason})", case.id);
            }
            Verdict::Unexplained => {
                let _ = writeln!(table, "  DIFFERENT    {}", case.id);
            }
        }
        if verdict != Verdict::Identical {
            let _ = writeln!(table, "      ours:   {}", mine.brief());
            let _ = writeln!(table, "      theirs: {}", theirs.brief());
        }
        verdicts.push(verdict);
    }
    (verdicts, table)
}

/// `identical`, `deliberate` and `unexplained` counts.
pub fn totals(verdicts: &[Verdict]) -> (usize, usize, usize) {
    let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    (
        count(|v| *v == Verdict::Identical),
        count(|v| matches!(v, Verdict::Deliberate(_))),
        count(|v| *v == Verdict::Unexplained),
    )
}
