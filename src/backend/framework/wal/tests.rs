use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::backend::{BoxFuture, ErrorKind, MemoryStorage};

const NOW: u64 = 1_700_000_000;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// Memory storage that fails the operations a test picks, with the server's kind of text.
#[derive(Default)]
struct FailingStorage {
    inner: MemoryStorage,
    fail_list: bool,
    fail_get: Option<String>,
    fail_delete: bool,
}

fn failure() -> StorageError {
    StorageError::new("cannot write to readonly storage")
}

impl Storage for FailingStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        if self.fail_get.as_deref() == Some(key) {
            return Box::pin(async { Err(failure()) });
        }
        self.inner.get(key)
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), StorageError>> {
        self.inner.put(key, value)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        if self.fail_delete {
            return Box::pin(async { Err(failure()) });
        }
        self.inner.delete(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        if self.fail_list {
            return Box::pin(async { Err(failure()) });
        }
        self.inner.list(prefix)
    }
}

/// A callback that records what it was given and fails for the kinds in `failing`.
fn recorder(
    seen: &Mutex<Vec<(String, Value)>>,
    failing: &'static [&'static str],
) -> impl FnMut(String, Value) -> std::future::Ready<Result<(), Error>> {
    move |kind, data| {
        let fails = failing.contains(&kind.as_str());
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((kind, data));
        std::future::ready(if fails {
            Err(Error::other("boom"))
        } else {
            Ok(())
        })
    }
}

fn seen_kinds(seen: &Mutex<Vec<(String, Value)>>) -> Vec<String> {
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut kinds: Vec<String> = seen.iter().map(|(kind, _)| kind.clone()).collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn entries_are_written_as_go_writes_them_and_read_back() -> Result<(), WalError> {
    let storage = MemoryStorage::new();
    let data = json!({"user": "<a&b>", "n": 1});
    let id = put_wal_at(
        &storage,
        "user",
        &data,
        at(NOW) + Duration::from_millis(700),
    )
    .await?;

    assert_eq!(id.len(), 36);
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12]);
    assert!(
        id.bytes()
            .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(&id[14..15], "4", "version 4");

    let stored = storage.get(&format!("wal/{id}")).await?.unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&stored),
        r#"{"type":"user","data":{"n":1,"user":"\u003ca\u0026b\u003e"},"created_at":1700000000}"#
    );
    assert_eq!(
        get_wal(&storage, &id).await?,
        Some(WalEntry {
            id: id.clone(),
            kind: "user".to_owned(),
            data,
            created_at: 1_700_000_000,
        })
    );
    assert_eq!(list_wal(&storage).await?, std::slice::from_ref(&id));

    delete_wal(&storage, &id).await?;
    assert_eq!(get_wal(&storage, &id).await?, None);
    assert!(list_wal(&storage).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn ids_differ() -> Result<(), WalError> {
    let storage = MemoryStorage::new();
    let first = put_wal(&storage, "k", &Value::Null).await?;
    let second = put_wal(&storage, "k", &Value::Null).await?;
    assert_ne!(first, second);
    Ok(())
}

#[tokio::test]
async fn entries_decode_as_go_decodes_them() -> Result<(), WalError> {
    let storage = MemoryStorage::new();
    storage
        .put("wal/partial", br#"{"data":[1]}"#.to_vec())
        .await?;
    let entry = get_wal(&storage, "partial").await?;
    assert_eq!(
        entry,
        Some(WalEntry {
            id: "partial".to_owned(),
            kind: String::new(),
            data: json!([1]),
            created_at: 0,
        })
    );
    storage.put("wal/bad", b"not json".to_vec()).await?;
    assert!(matches!(
        get_wal(&storage, "bad").await,
        Err(WalError::Decode(_))
    ));
    storage.put("wal/typed", br#"{"type":1}"#.to_vec()).await?;
    assert!(matches!(
        get_wal(&storage, "typed").await,
        Err(WalError::Malformed(_))
    ));
    storage.put("wal/empty", Vec::new()).await?;
    assert!(matches!(
        get_wal(&storage, "empty").await,
        Err(WalError::Malformed(_))
    ));
    Ok(())
}

#[tokio::test]
async fn only_entries_older_than_the_min_age_are_rolled_back_and_deleted() -> Result<(), WalError> {
    let storage = MemoryStorage::new();
    let old = put_wal_at(&storage, "old", &json!({"x": 1}), at(NOW - 11 * 60)).await?;
    // Exactly ten minutes old is not older than ten minutes.
    let edge = put_wal_at(&storage, "edge", &json!(null), at(NOW - 10 * 60)).await?;
    let young = put_wal_at(&storage, "young", &json!(null), at(NOW - 60)).await?;

    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::ZERO,
        false,
        at(NOW),
        recorder(&seen, &[]),
    )
    .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(seen_kinds(&seen), ["old"]);
    assert_eq!(
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[0]
            .1,
        json!({"x": 1})
    );
    assert_eq!(get_wal(&storage, &old).await?, None);
    let mut left = list_wal(&storage).await?;
    left.sort();
    let mut expected = vec![edge, young];
    expected.sort();
    assert_eq!(left, expected);

    // A shorter min age of the backend's own.
    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::from_secs(120),
        false,
        at(NOW),
        recorder(&seen, &[]),
    )
    .await;
    assert!(outcome.is_ok());
    assert_eq!(seen_kinds(&seen), ["edge"]);
    Ok(())
}

#[tokio::test]
async fn immediate_rolls_back_every_entry() -> Result<(), WalError> {
    let storage = MemoryStorage::new();
    put_wal_at(&storage, "now", &json!(null), at(NOW)).await?;
    put_wal_at(&storage, "future", &json!(null), at(NOW + 3600)).await?;
    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::ZERO,
        true,
        at(NOW),
        recorder(&seen, &[]),
    )
    .await;
    assert!(outcome.is_ok());
    assert_eq!(seen_kinds(&seen), ["future", "now"]);
    assert!(list_wal(&storage).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_empty_log_is_nothing_to_do() {
    let storage = MemoryStorage::new();
    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::ZERO,
        true,
        at(NOW),
        recorder(&seen, &[]),
    )
    .await;
    assert!(outcome.is_ok());
    assert!(seen_kinds(&seen).is_empty());
}

#[tokio::test]
async fn a_failed_callback_keeps_its_entry_and_the_others_still_roll_back() -> Result<(), WalError>
{
    let storage = MemoryStorage::new();
    let kept = put_wal_at(&storage, "bad", &json!(null), at(NOW - 3600)).await?;
    put_wal_at(&storage, "good", &json!(null), at(NOW - 3600)).await?;
    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::ZERO,
        false,
        at(NOW),
        recorder(&seen, &["bad"]),
    )
    .await;
    let Err(error) = outcome else {
        panic!("the failed callback was not reported");
    };
    assert_eq!(
        error.to_string(),
        "1 error occurred:\n\t* error rolling back \"bad\" entry: boom\n\n"
    );
    let WalRollbackError::Entries(failures) = &error else {
        panic!("per entry: {error:?}");
    };
    assert!(matches!(
        &failures[..],
        [WalEntryFailure::Rollback { kind, error }]
            if kind == "bad" && error.kind() == ErrorKind::Other
    ));
    assert_eq!(seen_kinds(&seen), ["bad", "good"]);
    assert_eq!(list_wal(&storage).await?, [kept]);
    Ok(())
}

#[tokio::test]
async fn storage_failures_are_collected_per_entry() -> Result<(), WalError> {
    let mut storage = FailingStorage::default();
    let unreadable = put_wal_at(&storage, "a", &json!(null), at(NOW - 3600)).await?;
    put_wal_at(&storage, "b", &json!(null), at(NOW - 3600)).await?;
    storage.fail_get = Some(format!("wal/{unreadable}"));
    storage.fail_delete = true;

    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::ZERO,
        false,
        at(NOW),
        recorder(&seen, &[]),
    )
    .await;
    let Err(error) = outcome else {
        panic!("the storage failures were not reported");
    };
    // The unreadable entry is never given to the callback; the other is, but stays.
    assert_eq!(seen_kinds(&seen), ["b"]);
    assert_eq!(
        error.to_string(),
        "2 errors occurred:\n\t* cannot write to readonly storage\n\t* cannot write to readonly \
         storage\n\n"
    );
    let WalRollbackError::Entries(failures) = &error else {
        panic!("not per entry: {error:?}");
    };
    assert_eq!(failures.len(), 2);
    assert!(
        failures
            .iter()
            .any(|f| matches!(f, WalEntryFailure::Read(WalError::Storage(_))))
    );
    assert!(
        failures
            .iter()
            .any(|f| matches!(f, WalEntryFailure::Delete(_)))
    );
    assert_eq!(list_wal(&storage.inner).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_failed_list_is_its_own_error() {
    let storage = FailingStorage {
        fail_list: true,
        ..FailingStorage::default()
    };
    let seen = Mutex::new(Vec::new());
    let outcome = rollback_wal(
        &storage,
        Duration::ZERO,
        true,
        at(NOW),
        recorder(&seen, &[]),
    )
    .await;
    let Err(error) = outcome else {
        panic!("the list failure was not reported");
    };
    assert!(matches!(error, WalRollbackError::List(_)));
    assert_eq!(error.to_string(), "cannot write to readonly storage");
}

#[test]
fn put_failures_keep_the_storage_error() {
    let error = WalError::from(failure());
    assert_eq!(error.to_string(), "cannot write to readonly storage");
    assert!(std::error::Error::source(&error).is_some());
}
