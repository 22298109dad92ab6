//! The Go plugin's stored records (its `types.proto`, proto3, package `kv`), field for field,
//! with the times and durations they carry.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use prost_types::{Duration as PbDuration, Timestamp};
use vault_plugin_sdk::backend::Error;
use vault_plugin_sdk::backend::framework::format_time;

/// The mount's settings (`<u>/config`).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Configuration {
    #[prost(uint32, tag = "1")]
    pub(crate) max_versions: u32,
    #[prost(bool, tag = "2")]
    pub(crate) cas_required: bool,
    #[prost(message, optional, tag = "3")]
    pub(crate) delete_version_after: Option<PbDuration>,
}

/// One version as the key's metadata lists it.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct VersionMetadata {
    #[prost(message, optional, tag = "1")]
    pub(crate) created_time: Option<Timestamp>,
    #[prost(message, optional, tag = "2")]
    pub(crate) deletion_time: Option<Timestamp>,
    #[prost(bool, tag = "3")]
    pub(crate) destroyed: bool,
}

/// A key's metadata (`<u>/metadata/<encrypted name>`).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct KeyMetadata {
    #[prost(string, tag = "1")]
    pub(crate) key: String,
    #[prost(map = "uint64, message", tag = "2")]
    pub(crate) versions: HashMap<u64, VersionMetadata>,
    #[prost(uint64, tag = "3")]
    pub(crate) current_version: u64,
    #[prost(uint64, tag = "4")]
    pub(crate) oldest_version: u64,
    #[prost(message, optional, tag = "5")]
    pub(crate) created_time: Option<Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub(crate) updated_time: Option<Timestamp>,
    #[prost(uint32, tag = "7")]
    pub(crate) max_versions: u32,
    #[prost(bool, tag = "8")]
    pub(crate) cas_required: bool,
    #[prost(message, optional, tag = "9")]
    pub(crate) delete_version_after: Option<PbDuration>,
    #[prost(map = "string, string", tag = "10")]
    pub(crate) custom_metadata: HashMap<String, String>,
}

/// One version's data (`<u>/versions/<hash>`): the JSON text as written.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Version {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) data: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub(crate) created_time: Option<Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub(crate) deletion_time: Option<Timestamp>,
}

/// Where the upgrade from version 1 stands (`<u>/upgrading`).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct UpgradeInfo {
    #[prost(message, optional, tag = "1")]
    pub(crate) started_time: Option<Timestamp>,
    #[prost(bool, tag = "2")]
    pub(crate) done: bool,
}

/// Decodes a stored record; the error names the key, never the bytes.
pub(crate) fn decode<M: Message + Default>(key: &str, bytes: &[u8]) -> Result<M, Error> {
    M::decode(bytes).map_err(|error| {
        Error::other(format!(
            "the storage entry {key:?} does not decode: {error}"
        ))
    })
}

/// The current time as the Go plugin stamps it (`ptypes.TimestampNow`).
pub(crate) fn now() -> Timestamp {
    timestamp(SystemTime::now())
}

/// `time` as a protobuf timestamp.
pub(crate) fn timestamp(time: SystemTime) -> Timestamp {
    Timestamp::from(time)
}

/// A protobuf timestamp as a `SystemTime`; one out of range reads as the epoch.
pub(crate) fn system_time(timestamp: &Timestamp) -> SystemTime {
    SystemTime::try_from(*timestamp).unwrap_or(UNIX_EPOCH)
}

/// A timestamp as the API shows it: RFC 3339 with nanoseconds, `""` when unset.
pub(crate) fn time_text(timestamp: Option<&Timestamp>) -> String {
    timestamp
        .map(|t| format_time(system_time(t)))
        .unwrap_or_default()
}

/// Whole seconds as a protobuf duration.
pub(crate) fn seconds(seconds: i64) -> PbDuration {
    PbDuration { seconds, nanos: 0 }
}

/// A stored duration in whole seconds (Go's `ptypes.Duration` then truncation); unset is 0.
pub(crate) fn duration_seconds(duration: Option<&PbDuration>) -> i64 {
    duration.map_or(0, |d| d.seconds)
}

/// `created + seconds`, for a deletion time.
pub(crate) fn add_seconds(created: &Timestamp, seconds: i64) -> Timestamp {
    Timestamp {
        seconds: created.seconds.saturating_add(seconds),
        nanos: created.nanos,
    }
}

/// True when `time` is strictly before now (Go's `deletionTime.Before(time.Now())`).
pub(crate) fn is_past(time: &Timestamp) -> bool {
    system_time(time) < SystemTime::now()
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `-1s`, `1m30s`, `768h0m0s`.
pub(crate) fn duration_text(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let total = seconds.unsigned_abs();
    let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{secs}s"),
        (0, _) => format!("{sign}{minutes}m{secs}s"),
        _ => format!("{sign}{hours}h{minutes}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_read_as_go_prints_them() {
        for (seconds, text) in [
            (0, "0s"),
            (-1, "-1s"),
            (59, "59s"),
            (90, "1m30s"),
            (3600, "1h0m0s"),
            (768 * 3600, "768h0m0s"),
            (-3661, "-1h1m1s"),
        ] {
            assert_eq!(duration_text(seconds), text);
        }
    }

    #[test]
    fn records_round_trip_and_a_bad_entry_is_an_error_naming_its_key() {
        let mut meta = KeyMetadata {
            key: "a/b".to_owned(),
            current_version: 2,
            ..KeyMetadata::default()
        };
        meta.versions.insert(
            2,
            VersionMetadata {
                created_time: Some(now()),
                ..VersionMetadata::default()
            },
        );
        let bytes = meta.encode_to_vec();
        assert_eq!(decode::<KeyMetadata>("k", &bytes).unwrap(), meta);
        let error = decode::<KeyMetadata>("uuid/metadata/x", &[0xff, 0xff]).unwrap_err();
        assert!(error.message().contains("\"uuid/metadata/x\""), "{error}");
    }

    #[test]
    fn unset_times_are_empty_text() {
        assert_eq!(time_text(None), "");
        let t = Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(time_text(Some(&t)), "2023-11-14T22:13:20.000000005Z");
    }
}
