//! `issued/`: the credentials whose lease is live, and the periodic tidy that forgets those
//! whose lease the server can no longer hold (the rule is in the crate's docs).

use std::time::{Duration, SystemTime};

use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use crate::backend::{PasswordBackend, seconds};

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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Issued {
    /// The role it was issued for.
    pub(crate) role: String,
    /// When its lease was first issued.
    #[serde(with = "unix_seconds")]
    pub(crate) issue_time: SystemTime,
    /// The TTL the server gave the lease at the last issue or renew.
    #[serde(with = "seconds")]
    pub(crate) ttl: Duration,
    /// When the lease ends unless renewed: the last issue or renew plus `ttl`. The server's own
    /// expiry is at most the answer's round trip (and a second of rounding) later, so it is
    /// stored rounded up to the second.
    #[serde(
        serialize_with = "unix_seconds::serialize_rounded_up",
        deserialize_with = "unix_seconds::deserialize"
    )]
    pub(crate) expires_at: SystemTime,
}

/// A [`SystemTime`] stored as whole Unix seconds; a time before 1970 is stored as 0.
mod unix_seconds {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(since_epoch(time).as_secs())
    }

    pub(super) fn serialize_rounded_up<S: Serializer>(
        time: &SystemTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let since = since_epoch(time);
        s.serialize_u64(since.as_secs() + u64::from(since.subsec_nanos() > 0))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        u64::deserialize(d).map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn since_epoch(time: &SystemTime) -> Duration {
        time.duration_since(UNIX_EPOCH).unwrap_or_default()
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
        // From the read to the delete: a renewal of this credential meanwhile moves the
        // expiry the decision was made on.
        let _guard = backend.locks.lock(&key).await;
        match backend.storage.get_json::<Issued>(&key).await {
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
pub(crate) async fn periodic_tidy(backend: &PasswordBackend, _: &Request) -> Result<(), Error> {
    tidy(backend, SystemTime::now()).await.map(drop)
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
    let Some(entry) = backend.storage.get_json::<Issued>(&key).await? else {
        return Ok(None);
    };
    Response::from_serialize(&entry).map(Some)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::json;
    use vault_plugin_sdk::backend::Operation;

    use super::{GRACE, Issued, is_stale, issued_key, tidy};
    use crate::backend::testing::{Mount, backend, call};

    const NOW: u64 = 1_800_000_000;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// Writes `entry` at `key` behind the backend's back.
    async fn store(backend: &Mount, key: &str, entry: &Issued) {
        let bytes = serde_json::to_vec(entry).expect("encodes");
        backend.store(key, bytes).await;
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
            serde_json::to_value(&issued).expect("encodes")["expires_at"],
            json!(NOW + 1)
        );
    }

    #[tokio::test]
    async fn the_tidy_removes_stale_entries_keeps_live_and_unreadable_ones() {
        let backend = backend().await;
        let grace = GRACE.as_secs();
        store(&backend, &issued_key("web-live"), &entry(NOW + 30)).await;
        store(&backend, &issued_key("web-recent"), &entry(NOW - 30)).await;
        store(&backend, &issued_key("web-old"), &entry(NOW - grace - 30)).await;
        backend.store(&issued_key("web-garbled"), "not json").await;

        let removed = tidy(backend.backend(), at(NOW)).await.expect("tidy");
        assert_eq!(removed, ["web-old"]);
        assert_eq!(
            backend.stored_keys("issued/").await,
            ["web-garbled", "web-live", "web-recent"]
        );
        // Run again much later, only the unreadable entry is left.
        let removed = tidy(backend.backend(), at(NOW + 2 * grace))
            .await
            .expect("tidy");
        assert_eq!(removed, ["web-live", "web-recent"]);
        assert_eq!(backend.stored_keys("issued/").await, ["web-garbled"]);
    }

    #[tokio::test]
    async fn a_renewed_lease_survives_the_tidy_that_would_have_removed_it() {
        let backend = backend().await;
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

        let secret = issued.secret.expect("a lease");
        backend
            .renew(&secret)
            .increment(Duration::from_secs(3600))
            .await
            .expect("renewed");

        assert!(
            tidy(backend.backend(), soon_after_expiry)
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
        let backend = backend().await;
        store(&backend, &issued_key("web-ancient"), &entry(1_000_000)).await;
        let answer = backend.rollback().await.expect("rollback");
        assert_eq!(answer, None);
        assert!(backend.stored_keys("issued/").await.is_empty());
    }

    #[tokio::test]
    async fn an_issued_entry_reads_back_without_a_password() {
        let backend = backend().await;
        store(&backend, &issued_key("web-a"), &entry(NOW)).await;
        let read = call(&backend, Operation::Read, "issued/web-a", json!({}))
            .await
            .expect("an entry");
        assert_eq!(
            serde_json::Value::Object(read.data),
            json!({"role": "web", "issue_time": NOW - 60, "ttl": 60, "expires_at": NOW})
        );
    }
}
