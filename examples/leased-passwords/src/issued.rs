//! `issued/`: the credentials whose lease is live, and the periodic tidy that forgets those
//! whose lease the server can no longer hold (the rule is in the crate's docs).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{BoxFuture, Error, Operation, Request, Response};

use crate::backend::{FromJson, PasswordBackend, ToJson, seconds_at};

/// How long past its recorded expiry an entry is kept: the server retries a failed revoke
/// for about ten minutes (backoff 20 s, 40 s, … ±50 %), and may deliver one late after a
/// restart; clocks of the plugin and the server may differ a little.
pub(crate) const GRACE: Duration = Duration::from_secs(15 * 60);

pub(crate) fn paths() -> Vec<PathSpec<PasswordBackend>> {
    vec![
        PathSpec::new("issued/?")
            .operation(Operation::List, list)
            .help("Lists the usernames of the live credentials.", ""),
        PathSpec::new("issued/{username}")
            .field(FieldSchema::new(
                "username",
                FieldType::String,
                "The credential's username.",
            ))
            .operation(Operation::Read, read)
            .help(
                "What is kept of one live credential (never its password).",
                "role, issue_time and expires_at (Unix seconds) and ttl (seconds), as of the \
                 last issue or renew.",
            ),
    ]
}

/// What is kept of a live credential at `issued/<username>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Issued {
    /// The role it was issued for.
    pub(crate) role: String,
    /// When its lease was first issued.
    pub(crate) issue_time: SystemTime,
    /// The TTL the server gave the lease at the last issue or renew.
    pub(crate) ttl: Duration,
    /// When the lease ends unless renewed: the last issue or renew plus `ttl`. The server's own
    /// expiry is at most the answer's round trip (and a second of rounding) later.
    pub(crate) expires_at: SystemTime,
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl FromJson for Issued {
    fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            role: value.get("role")?.as_str()?.to_owned(),
            issue_time: UNIX_EPOCH + seconds_at(value, "issue_time")?,
            ttl: seconds_at(value, "ttl")?,
            expires_at: UNIX_EPOCH + seconds_at(value, "expires_at")?,
        })
    }
}

impl ToJson for Issued {
    fn to_json(&self) -> Value {
        // Rounded up to the second, as the server's expiry may be a little later.
        let expires_at = self
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                since.as_secs() + u64::from(since.subsec_nanos() > 0)
            });
        json!({
            "role": self.role,
            "issue_time": unix_seconds(self.issue_time),
            "ttl": self.ttl.as_secs(),
            "expires_at": expires_at,
        })
    }
}

pub(crate) fn issued_key(username: &str) -> String {
    format!("issued/{username}")
}

/// True when the lease of `entry` is over by the tidy's rule: its recorded expiry is more
/// than [`GRACE`] before `now`.
pub(crate) fn is_stale(entry: &Issued, now: SystemTime) -> bool {
    entry.expires_at + GRACE < now
}

/// Deletes the entries whose lease is over at `now`, returning their usernames. Unreadable
/// entries are left for a person to look at: deleting them would hide a bug.
pub(crate) async fn tidy(backend: &PasswordBackend, now: SystemTime) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for username in backend.storage.list("issued/").await? {
        let key = issued_key(&username);
        match backend.get_json::<Issued>(&key).await {
            Ok(Some(entry)) if is_stale(&entry, now) => {
                backend.storage.delete(&key).await?;
                tracing::info!(username = %username, role = %entry.role, "forgot an expired credential");
                removed.push(username);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(key = %key, error = %error, "cannot read an issued entry"),
        }
    }
    Ok(removed)
}

/// The periodic function: the server sends `rollback` every minute.
pub(crate) fn periodic_tidy<'a>(
    backend: &'a PasswordBackend,
    _: &'a Request,
) -> BoxFuture<'a, Result<(), Error>> {
    Box::pin(async move { tidy(backend, SystemTime::now()).await.map(drop) })
}

async fn list(
    backend: &PasswordBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Ok(Some(Response::list(backend.storage.list("issued/").await?)))
}

async fn read(
    backend: &PasswordBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = issued_key(&fields.get_string("username"));
    let Some(entry) = backend.get_json::<Issued>(&key).await? else {
        return Ok(None);
    };
    match entry.to_json() {
        Value::Object(data) => Ok(Some(Response::with_data(data))),
        _ => Err(Error::Internal(
            "an issued entry is not an object".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::json;
    use vault_plugin_sdk::backend::{Backend as _, Operation, Request};

    use super::{GRACE, Issued, is_stale, issued_key, tidy};
    use crate::backend::testing::{backend, call};

    const NOW: u64 = 1_800_000_000;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn entry(expires_at: u64) -> Issued {
        Issued {
            role: "web".to_owned(),
            issue_time: at(expires_at - 60),
            ttl: Duration::from_secs(60),
            expires_at: at(expires_at),
        }
    }

    #[test]
    fn an_entry_is_stale_only_once_its_expiry_is_past_by_more_than_the_grace() {
        let grace = GRACE.as_secs();
        assert!(!is_stale(&entry(NOW + 60), at(NOW)), "live");
        assert!(!is_stale(&entry(NOW), at(NOW)), "expiring now");
        assert!(
            !is_stale(&entry(NOW - grace), at(NOW)),
            "at the end of the grace"
        );
        assert!(is_stale(&entry(NOW - grace - 1), at(NOW)), "past the grace");
    }

    #[test]
    fn the_recorded_expiry_rounds_up_to_the_second() {
        let mut issued = entry(NOW);
        issued.expires_at = at(NOW) + Duration::from_millis(1);
        assert_eq!(
            super::ToJson::to_json(&issued)["expires_at"],
            json!(NOW + 1)
        );
    }

    #[tokio::test]
    async fn the_tidy_removes_stale_entries_keeps_live_and_unreadable_ones() {
        let backend = backend();
        let grace = GRACE.as_secs();
        backend
            .put_json(&issued_key("web-live"), &entry(NOW + 30))
            .await
            .expect("put");
        backend
            .put_json(&issued_key("web-recent"), &entry(NOW - 30))
            .await
            .expect("put");
        backend
            .put_json(&issued_key("web-old"), &entry(NOW - grace - 30))
            .await
            .expect("put");
        backend
            .storage
            .put(&issued_key("web-garbled"), b"not json".to_vec())
            .await
            .expect("put");

        let removed = tidy(&backend, at(NOW)).await.expect("tidy");
        assert_eq!(removed, ["web-old"]);
        assert_eq!(
            backend.storage.list("issued/").await.expect("list"),
            ["web-garbled", "web-live", "web-recent"]
        );
        // Run again much later, only the unreadable entry is left.
        let removed = tidy(&backend, at(NOW + 2 * grace)).await.expect("tidy");
        assert_eq!(removed, ["web-live", "web-recent"]);
        assert_eq!(
            backend.storage.list("issued/").await.expect("list"),
            ["web-garbled"]
        );
    }

    #[tokio::test]
    async fn a_renewed_lease_survives_the_tidy_that_would_have_removed_it() {
        let backend = backend();
        call(&backend, Operation::Update, "roles/web", json!({"ttl": 60})).await;
        let issued = call(&backend, Operation::Read, "creds/web", json!({}))
            .await
            .expect("a credential");
        let username = issued.data["username"]
            .as_str()
            .expect("a username")
            .to_owned();
        let soon_after_expiry =
            SystemTime::now() + Duration::from_secs(60) + GRACE + Duration::from_secs(5);

        let mut secret = issued.secret.expect("a lease");
        secret.lease.issue_time = Some(SystemTime::now());
        secret.lease.increment = Duration::from_secs(3600);
        let mut renew = Request::new(Operation::Renew, "creds/web");
        renew.secret = Some(secret);
        backend.handle_request(renew).await.expect("renewed");

        assert!(
            tidy(&backend, soon_after_expiry)
                .await
                .expect("tidy")
                .is_empty()
        );
        let listed = call(&backend, Operation::List, "issued/", json!({})).await;
        assert_eq!(
            listed.map(|r| r.data["keys"].clone()),
            Some(json!([username]))
        );
    }

    #[tokio::test]
    async fn the_rollback_request_runs_the_tidy() {
        let backend = backend();
        backend
            .put_json(&issued_key("web-ancient"), &entry(1_000_000))
            .await
            .expect("put");
        let answer = backend
            .handle_request(Request::new(Operation::Rollback, ""))
            .await
            .expect("rollback");
        assert_eq!(answer, None);
        assert!(
            backend
                .storage
                .list("issued/")
                .await
                .expect("list")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_issued_entry_reads_back_without_a_password() {
        let backend = backend();
        backend
            .put_json(&issued_key("web-a"), &entry(NOW))
            .await
            .expect("put");
        let read = call(&backend, Operation::Read, "issued/web-a", json!({}))
            .await
            .expect("an entry");
        assert_eq!(
            serde_json::Value::Object(read.data),
            json!({"role": "web", "issue_time": NOW - 60, "ttl": 60, "expires_at": NOW})
        );
    }
}
