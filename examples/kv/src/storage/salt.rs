//! The salt of the version keys: sdk `helper/salt` as the Go plugin configures it
//! (`backend.go` `Salt`: SHA-256, location `<u>/salt`), so the `<u>/versions/…` keys are the
//! ones the Go plugin writes and reads.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use aws_lc_rs::{digest, rand};
use vault_plugin_sdk::backend::{Error, Storage};

use super::names::path_join;

/// The mount's salt, and where its version keys live.
#[derive(Clone)]
pub(crate) struct Salt {
    /// The salt as stored: Go keeps it as a string of the stored bytes and hashes those.
    salt: Arc<[u8]>,
    /// `path.Join(<u>, "versions/")`.
    versions: Arc<str>,
}

/// Never prints the salt: it is what keeps version keys from being guessed from key names.
impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Salt")
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

impl Salt {
    /// Reads `<u>/salt`; when it is absent (or empty, as Go's `NewSalt` treats it), generates
    /// one as go-uuid's `GenerateUUID` does and writes it.
    pub(crate) async fn load_or_create(storage: &dyn Storage, uuid: &str) -> Result<Self, Error> {
        let location = path_join(&[uuid, "salt"]);
        let stored = storage.get(&location).await.map_err(|error| {
            Error::other(format!("failed to read salt: {}", error.message())).with_source(error)
        })?;
        let salt = match stored {
            Some(salt) if !salt.is_empty() => salt,
            _ => {
                let salt = generate_uuid()?.into_bytes();
                storage
                    .put(&location, salt.clone())
                    .await
                    .map_err(|error| {
                        Error::other(format!("failed to persist salt: {}", error.message()))
                            .with_source(error)
                    })?;
                salt
            }
        };
        Ok(Self {
            salt: salt.into(),
            versions: path_join(&[uuid, "versions/"]).into(),
        })
    }

    /// The storage key of version `version` of the raw (un-normalised) key `key`: the Go
    /// plugin's `getVersionKey`, `SaltID` (SHA-256 of the salt followed by the data, not the
    /// HMAC variants) of `"<key>|<version>"`, split after three hex digits.
    pub(crate) fn version_key(&self, key: &str, version: u64) -> String {
        let mut hash = digest::Context::new(&digest::SHA256);
        hash.update(&self.salt);
        hash.update(key.as_bytes());
        hash.update(format!("|{version}").as_bytes());
        let hex = hex(hash.finish().as_ref());
        // `path.Join` with hex segments is plain concatenation.
        format!("{}/{}/{}", self.versions, &hex[..3], &hex[3..])
    }
}

/// go-uuid `GenerateUUID`: 16 random bytes as lowercase hex in 8-4-4-4-12 groups. Unlike an
/// RFC 4122 version 4 UUID, no version or variant bits are set.
fn generate_uuid() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes).map_err(|_| {
        Error::other(
            "failed to generate uuid: failed to read random bytes: the system generator failed",
        )
    })?;
    let hex = hex(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Lowercase hexadecimal, as Go's `hex.EncodeToString`.
fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use vault_plugin_sdk::backend::MemoryStorage;

    use super::*;

    /// The BackendUUID of the vectors.
    const U: &str = "8f2a6c1e-5b7d-4e3f-9a01-23456789abcd";

    /// The salt of the vectors, as stored at `<U>/salt`.
    const GO_SALT: &str = "0b8f3c55-1d2e-4f60-8a7b-9c0d1e2f3a4b";

    /// Version keys below `<U>/versions/`, produced by a throwaway Go program built against
    /// github.com/hashicorp/vault/sdk v0.9.2-0.20230721171514-bf23fe8636b0: salt.NewSalt over
    /// a storage holding GO_SALT at `<U>/salt` (the Go plugin's config: SHA256Hash), then the
    /// plugin's getVersionKey, path.Join(U, "versions/", h[0:3], h[3:]) of
    /// SaltID(fmt.Sprintf("%s|%d", key, version)).
    const GO_VERSION_KEYS: &[(&str, u64, &str)] = &[
        (
            "foo",
            1,
            "7d5/661f85dc67d72991bb78aae8162038b0f54c3a25f557926cbe52d5d27e5fa",
        ),
        (
            "foo",
            2,
            "798/2ac9ea139b74b7331111dbf0c95fb2aa27b7171231f33f40c765aa4093127",
        ),
        (
            "a/b/c",
            10,
            "bb1/6c7ca08ece95277c1eac29b7ec6c5c68ad2bf0c1954601223a45e762211e6",
        ),
        (
            "x/",
            1,
            "dae/4485ecbb1972cd0798bd802bbf606f56d679aa0d565f4264b38ef5170dd7d",
        ),
        (
            "ünï",
            u64::MAX,
            "65f/4eb3575914b9bbed598b680ac896d08f56e6d176f6653f840b76b6fc136e8",
        ),
        (
            "",
            0,
            "15b/04193ef8cf112ea1dceb3296a37a6cc8ca73e92e26ab52dd58ebb2d4728b5",
        ),
    ];

    #[tokio::test]
    async fn a_stored_salt_gives_gos_version_keys() {
        let storage = MemoryStorage::new();
        let location = format!("{U}/salt");
        storage
            .put(&location, GO_SALT.as_bytes().to_vec())
            .await
            .unwrap();
        let salt = Salt::load_or_create(&storage, U).await.unwrap();
        for (key, version, expected) in GO_VERSION_KEYS {
            assert_eq!(
                salt.version_key(key, *version),
                format!("{U}/versions/{expected}"),
                "{key:?} version {version}"
            );
        }
        // The raw key is hashed: `x/` and `x` share no version keys.
        assert_ne!(salt.version_key("x/", 1), salt.version_key("x", 1));
        // Loading left the salt alone.
        assert_eq!(
            storage.get(&location).await.unwrap().unwrap(),
            GO_SALT.as_bytes()
        );
    }

    #[tokio::test]
    async fn a_missing_or_empty_salt_is_generated_like_go_uuid_and_kept() {
        for stored in [None, Some(Vec::new())] {
            let storage = MemoryStorage::new();
            let location = format!("{U}/salt");
            if let Some(stored) = stored {
                storage.put(&location, stored).await.unwrap();
            }
            let salt = Salt::load_or_create(&storage, U).await.unwrap();

            let written =
                String::from_utf8(storage.get(&location).await.unwrap().unwrap()).unwrap();
            assert_eq!(written.len(), 36);
            let groups: Vec<usize> = written.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12]);
            assert!(
                written
                    .bytes()
                    .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );

            // Loaded again, the same salt: the same version keys.
            let again = Salt::load_or_create(&storage, U).await.unwrap();
            assert_eq!(again.version_key("foo", 1), salt.version_key("foo", 1));
            let other = Salt::load_or_create(&MemoryStorage::new(), U)
                .await
                .unwrap();
            assert_ne!(other.version_key("foo", 1), salt.version_key("foo", 1));
        }
    }

    #[test]
    fn generated_uuids_differ_and_debug_hides_the_salt() {
        assert_ne!(generate_uuid().unwrap(), generate_uuid().unwrap());
        let salt = Salt {
            salt: GO_SALT.as_bytes().into(),
            versions: format!("{U}/versions").into(),
        };
        let debug = format!("{salt:?}");
        assert!(
            !debug.contains(GO_SALT) && debug.contains("versions"),
            "{debug}"
        );
    }
}
