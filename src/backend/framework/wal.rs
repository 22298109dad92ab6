//! The write-ahead log a backend keeps in its own storage (`wal/<id>`), rolled back on the
//! server's `rollback` operation, as Go's `framework.PutWAL`/`GetWAL`/`DeleteWAL`/`ListWAL`
//! and `Backend.handleWALRollback` do it.
//!
//! A backend writes an entry before it changes something outside the server (say, creates a
//! user in a database) and deletes it once the change is recorded; an entry that outlives the
//! minimum age means the backend stopped half-way, and the rollback callback undoes the change.
//! Entries are written byte for byte as Go writes them, so a Go plugin's entries roll back here
//! and the other way round.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::backend::{Error, Storage, StorageError};

/// Where the entries live in the backend's storage.
pub const WAL_PREFIX: &str = "wal/";

/// How old an entry must be before a rollback undoes it, when the backend sets no age (Go's
/// default for `WALRollbackMinAge`): older than any operation still running.
pub const DEFAULT_WAL_ROLLBACK_MIN_AGE: Duration = Duration::from_secs(10 * 60);

/// One entry of the log.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WalEntry {
    /// The id [`put_wal`] returned (the key under [`WAL_PREFIX`]).
    pub id: String,
    /// What kind of change the entry undoes, for the rollback callback.
    pub kind: String,
    /// What the rollback needs to undo the change.
    pub data: Value,
    /// When the entry was written, in Unix seconds.
    pub created_at: i64,
}

/// A failure to write, read or decode an entry.
#[derive(Debug)]
#[non_exhaustive]
pub enum WalError {
    /// The storage failed; its text is the server's.
    Storage(StorageError),
    /// No random bytes for the entry's id.
    Random(aws_lc_rs::error::Unspecified),
    /// The stored entry is not JSON.
    Decode(serde_json::Error),
    /// The stored entry is JSON but not an entry (the text says what is wrong).
    Malformed(&'static str),
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Storage(error) => error.fmt(f),
            Self::Random(_) => f.write_str("failed to read random bytes"),
            Self::Decode(error) => error.fmt(f),
            Self::Malformed(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Storage(error) => Some(error),
            Self::Random(error) => Some(error),
            Self::Decode(error) => Some(error),
            Self::Malformed(_) => None,
        }
    }
}

impl From<StorageError> for WalError {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

/// Writes an entry of `kind` with `data`, created now, and returns its id. Entries cannot be
/// changed: write a new one and delete the old.
pub async fn put_wal(
    storage: &(impl Storage + ?Sized),
    kind: &str,
    data: &Value,
) -> Result<String, WalError> {
    put_wal_at(storage, kind, data, SystemTime::now()).await
}

/// [`put_wal`] with the creation time given.
pub async fn put_wal_at(
    storage: &(impl Storage + ?Sized),
    kind: &str,
    data: &Value,
    now: SystemTime,
) -> Result<String, WalError> {
    let id = random_uuid().map_err(WalError::Random)?;
    let value = encode_entry(kind, data, unix_seconds(now));
    storage
        .put(&format!("{WAL_PREFIX}{id}"), value.into_bytes())
        .await?;
    Ok(id)
}

/// The entry with `id`, or `None` when there is none.
pub async fn get_wal(
    storage: &(impl Storage + ?Sized),
    id: &str,
) -> Result<Option<WalEntry>, WalError> {
    let Some(value) = storage.get(&format!("{WAL_PREFIX}{id}")).await? else {
        return Ok(None);
    };
    decode_entry(id, &value).map(Some)
}

/// Deletes (commits) the entry with `id`: the change it guarded is done and needs no rollback.
pub async fn delete_wal(storage: &(impl Storage + ?Sized), id: &str) -> Result<(), StorageError> {
    storage.delete(&format!("{WAL_PREFIX}{id}")).await
}

/// The ids of all entries.
pub async fn list_wal(storage: &(impl Storage + ?Sized)) -> Result<Vec<String>, StorageError> {
    storage.list(WAL_PREFIX).await
}

/// Why one entry was not rolled back.
#[derive(Debug)]
pub(crate) enum WalEntryFailure {
    /// The entry could not be read.
    Read(WalError),
    /// The rollback callback failed; the entry stays, for the next rollback.
    Rollback {
        /// The entry's kind.
        kind: String,
        /// What the callback returned.
        error: Error,
    },
    /// Rolled back, but the entry could not be deleted (and will be rolled back again).
    Delete(StorageError),
}

impl fmt::Display for WalEntryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(error) => error.fmt(f),
            Self::Rollback { kind, error } => {
                write!(f, "error rolling back {kind:?} entry: {error}")
            }
            Self::Delete(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for WalEntryFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read(error) => Some(error),
            Self::Rollback { error, .. } => Some(error),
            Self::Delete(error) => Some(error),
        }
    }
}

/// Why a rollback did not finish. Go answers either with an error *response* (not an error)
/// carrying this text, so the server logs it and the next rollback tries again.
#[derive(Debug)]
pub(crate) enum WalRollbackError {
    /// The log could not be listed; nothing was rolled back.
    List(StorageError),
    /// These entries failed; the others were rolled back and deleted.
    Entries(Vec<WalEntryFailure>),
}

impl fmt::Display for WalRollbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::List(error) => error.fmt(f),
            // go-multierror's list format.
            Self::Entries(failures) => match failures.as_slice() {
                [only] => write!(f, "1 error occurred:\n\t* {only}\n\n"),
                all => {
                    let points: Vec<String> = all.iter().map(|e| format!("* {e}")).collect();
                    write!(
                        f,
                        "{} errors occurred:\n\t{}\n\n",
                        all.len(),
                        points.join("\n\t")
                    )
                }
            },
        }
    }
}

impl std::error::Error for WalRollbackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::List(error) => Some(error),
            Self::Entries(failures) => failures
                .first()
                .map(|failure| failure as &(dyn std::error::Error + 'static)),
        }
    }
}

/// Rolls back the log as Go's `handleWALRollback` does: every entry created more than
/// `min_age` before `now` (zero: [`DEFAULT_WAL_ROLLBACK_MIN_AGE`]; `immediate`: every entry,
/// which Go does when the request's data has the key `immediate`, whatever its value) is given
/// to `rollback` as `(kind, data)` and deleted when that succeeds. A failed entry is kept and
/// the others still tried; the failures come back together.
pub(crate) async fn rollback_wal<S, F, Fut>(
    storage: &S,
    min_age: Duration,
    immediate: bool,
    now: SystemTime,
    mut rollback: F,
) -> Result<(), WalRollbackError>
where
    S: Storage + ?Sized,
    F: FnMut(String, Value) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let ids = list_wal(storage).await.map_err(WalRollbackError::List)?;
    let age = if min_age.is_zero() {
        DEFAULT_WAL_ROLLBACK_MIN_AGE
    } else {
        min_age
    };
    // An entry is old enough when it was created strictly before this instant; Go compares
    // the whole-second creation time with a clock time that keeps its fraction. `immediate`
    // moves the instant 1000 hours ahead, as Go does.
    let cutoff_nanos = if immediate {
        unix_nanos(now) + 1000 * 3600 * 1_000_000_000
    } else {
        unix_nanos(now) - age.as_nanos() as i128
    };
    let mut failures = Vec::new();
    for id in ids {
        let entry = match get_wal(storage, &id).await {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(error) => {
                failures.push(WalEntryFailure::Read(error));
                continue;
            }
        };
        if i128::from(entry.created_at) * 1_000_000_000 >= cutoff_nanos {
            continue;
        }
        let kind = entry.kind.clone();
        if let Err(error) = rollback(entry.kind, entry.data).await {
            failures.push(WalEntryFailure::Rollback { kind, error });
            continue;
        }
        if let Err(error) = delete_wal(storage, &id).await {
            failures.push(WalEntryFailure::Delete(error));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(WalRollbackError::Entries(failures))
    }
}

/// The entry as Go's `json.Marshal(&WALEntry{…})` writes it: fields in declaration order,
/// and `<`, `>`, `&`, U+2028 and U+2029 escaped as Go escapes them.
fn encode_entry(kind: &str, data: &Value, created_at: i64) -> String {
    let text = format!(
        r#"{{"type":{},"data":{},"created_at":{created_at}}}"#,
        Value::from(kind),
        data
    );
    // These characters can only stand inside JSON strings, where the escapes mean the same.
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Reads an entry as Go's `jsonutil.DecodeJSON` into a `WALEntry`: missing fields are zero.
fn decode_entry(id: &str, value: &[u8]) -> Result<WalEntry, WalError> {
    if value.is_empty() {
        return Err(WalError::Malformed("'data' being decoded is nil"));
    }
    let entry = match serde_json::from_slice::<Value>(value).map_err(WalError::Decode)? {
        Value::Object(entry) => entry,
        _ => return Err(WalError::Malformed("WAL entry is not a JSON object")),
    };
    let kind = match entry.get("type") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(WalError::Malformed("WAL entry type is not a string")),
    };
    let created_at = match entry.get("created_at") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_i64()
            .ok_or(WalError::Malformed("WAL entry created_at is not an int64"))?,
    };
    Ok(WalEntry {
        id: id.to_owned(),
        kind,
        data: entry.get("data").cloned().unwrap_or(Value::Null),
        created_at,
    })
}

/// A random (version 4) UUID in its usual text form.
fn random_uuid() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Nanoseconds since the Unix epoch, negative before it.
fn unix_nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// Go's `time.Unix()`: whole seconds, rounded down.
fn unix_seconds(time: SystemTime) -> i64 {
    i64::try_from(unix_nanos(time).div_euclid(1_000_000_000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
