//! Passwords at rest: PBKDF2-HMAC-SHA256 with a random salt per password, and nothing that could
//! give the password back.
//!
//! The hashing is deliberately slow (that is its point), so it runs through the SDK's
//! [`cpu_bound`]: off the runtime's threads, at most one hash per CPU at a time however many
//! logins come (`login` needs no token), while other requests go on. On the runtime's thread a
//! login would hold up every other request of every mount for the length of a PBKDF2
//! (`make bench` shows both: logins per second, and a read's time while logins run).

use std::num::NonZeroU32;

use aws_lc_rs::{digest, pbkdf2, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use vault_plugin_sdk::backend::Error;
use vault_plugin_sdk::cpu_bound;

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;

/// The iterations OWASP's password storage cheat sheet recommends for PBKDF2-HMAC-SHA256
/// (2023). Each stored hash records its own count, so raising this later keeps old hashes
/// verifiable.
const ITERATIONS: NonZeroU32 = match NonZeroU32::new(600_000) {
    Some(iterations) => iterations,
    None => panic!("the iteration count is not zero"),
};

/// 128 bits, the least NIST SP 800-132 allows; a fresh salt for every password set.
const SALT_LEN: usize = 16;

/// SHA-256's output length: a longer PBKDF2 output would only cost the defender more.
const HASH_LEN: usize = 32;

/// What is stored for a user's password.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "StoredHash", into = "StoredHash")]
pub(crate) struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// The stored form: an object naming the algorithm, so another could be added later; salt and
/// hash in base64.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "algorithm")]
enum StoredHash {
    #[serde(rename = "pbkdf2-hmac-sha256")]
    Pbkdf2HmacSha256 {
        iterations: NonZeroU32,
        salt: String,
        hash: String,
    },
}

impl From<PasswordHash> for StoredHash {
    fn from(stored: PasswordHash) -> Self {
        Self::Pbkdf2HmacSha256 {
            iterations: stored.iterations,
            salt: BASE64.encode(&stored.salt),
            hash: BASE64.encode(&stored.hash),
        }
    }
}

impl TryFrom<StoredHash> for PasswordHash {
    type Error = &'static str;

    fn try_from(stored: StoredHash) -> Result<Self, Self::Error> {
        let StoredHash::Pbkdf2HmacSha256 {
            iterations,
            salt,
            hash,
        } = stored;
        let decode = |text: String| {
            BASE64
                .decode(text)
                .map_err(|_| "salt or hash is not base64")
        };
        let hash = decode(hash)?;
        // An empty hash would make every verification fail anyway; refuse it as corrupt.
        if hash.is_empty() {
            return Err("the hash is empty");
        }
        Ok(Self {
            iterations,
            salt: decode(salt)?,
            hash,
        })
    }
}

/// What a login checks an unknown user's password against, so that an unknown user costs the
/// same PBKDF2 as a wrong password and the answer's timing does not tell which names exist.
/// The all-zero "hash" matches no password that anyone can find.
fn dummy() -> PasswordHash {
    PasswordHash {
        iterations: ITERATIONS,
        salt: vec![0x5a; SALT_LEN],
        hash: vec![0; HASH_LEN],
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub(crate) async fn new(password: String) -> Result<Self, Error> {
        cpu_bound(move || Self::derive(&password, ITERATIONS)).await?
    }

    fn derive(password: &str, iterations: NonZeroU32) -> Result<Self, Error> {
        let mut salt = vec![0; SALT_LEN];
        rand::fill(&mut salt)
            .map_err(|e| Error::internal("no random bytes for a password salt").with_source(e))?;
        let mut hash = vec![0; HASH_LEN];
        pbkdf2::derive(ALGORITHM, iterations, &salt, password.as_bytes(), &mut hash);
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// True when `password` is the one hashed, compared in constant time.
    fn matches(&self, password: &str) -> bool {
        pbkdf2::verify(
            ALGORITHM,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no such user:
    /// both take one PBKDF2 of the same cost, and an unknown user never verifies.
    pub(crate) async fn verify(stored: Option<Self>, password: String) -> Result<bool, Error> {
        cpu_bound(move || match stored {
            Some(stored) => stored.matches(&password),
            None => {
                let _ = dummy().matches(&password);
                false
            }
        })
        .await
    }

    /// Names this very hash without revealing it: a SHA-256 over the count, salt and hash,
    /// kept in a token's internal data so that renew can tell the password has changed since
    /// the login (a new password always has a new salt, so even setting the same password
    /// again, or re-creating a deleted user, changes it).
    pub(crate) fn fingerprint(&self) -> String {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(&self.iterations.get().to_be_bytes());
        context.update(&self.salt);
        context.update(&self.hash);
        BASE64.encode(context.finish().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A low count keeps the tests fast; the arithmetic is the same.
    const FEW: NonZeroU32 = match NonZeroU32::new(1_000) {
        Some(iterations) => iterations,
        None => panic!("not zero"),
    };

    #[test]
    fn the_right_password_verifies_and_others_do_not() {
        let stored = PasswordHash::derive("correct horse", FEW).expect("hash");
        assert!(stored.matches("correct horse"));
        assert!(!stored.matches("correct horse "));
        assert!(!stored.matches(""));
    }

    #[test]
    fn the_same_password_gets_a_new_salt_hash_and_fingerprint_each_time() {
        let first = PasswordHash::derive("pw", FEW).expect("hash");
        let second = PasswordHash::derive("pw", FEW).expect("hash");
        assert_ne!(first.salt, second.salt);
        assert_ne!(first.hash, second.hash);
        assert_ne!(first.fingerprint(), second.fingerprint());
        assert_eq!(first.fingerprint(), first.clone().fingerprint());
        assert_eq!((first.salt.len(), first.hash.len()), (SALT_LEN, HASH_LEN));
    }

    #[test]
    fn the_stored_form_round_trips_and_holds_no_password() {
        let stored = PasswordHash::derive("hunter2", FEW).expect("hash");
        let json = serde_json::to_value(&stored).expect("encodes");
        assert!(!json.to_string().contains("hunter2"));
        assert_eq!(json["algorithm"], json!("pbkdf2-hmac-sha256"));
        assert_eq!(json["iterations"], json!(FEW.get()));
        let back: PasswordHash = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(back, stored);
        assert!(back.matches("hunter2"));

        let parses = |other: &serde_json::Map<String, serde_json::Value>| {
            serde_json::from_value::<PasswordHash>(other.clone().into()).is_ok()
        };
        let mut other = json.as_object().expect("object").clone();
        other.insert("algorithm".into(), json!("md5"));
        assert!(!parses(&other));
        other.insert("algorithm".into(), json!("pbkdf2-hmac-sha256"));
        other.insert("hash".into(), json!(""));
        assert!(!parses(&other));
        other.insert("hash".into(), json!("AAAA"));
        assert!(parses(&other));
        other.insert("iterations".into(), json!(0));
        assert!(!parses(&other));
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_and_costs_a_full_pbkdf2() {
        let verify = |stored, password: &str| PasswordHash::verify(stored, password.to_owned());
        assert!(!verify(None, "").await.expect("runs"));
        assert!(!verify(None, "x").await.expect("runs"));
        // The dummy has the production cost: the same count as a freshly set password.
        let fresh = PasswordHash::new("pw".into()).await.expect("hash");
        assert_eq!(fresh.iterations, dummy().iterations);
        assert_eq!(fresh.salt.len(), dummy().salt.len());
        assert_eq!(fresh.hash.len(), dummy().hash.len());
        assert!(verify(Some(fresh.clone()), "pw").await.expect("runs"));
        assert!(!verify(Some(fresh), "PW").await.expect("runs"));
    }
}
