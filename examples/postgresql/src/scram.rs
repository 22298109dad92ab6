//! SCRAM-SHA-256 verifiers, as PostgreSQL stores them (`SCRAM-SHA-256$<iterations>:<salt>$
//! <StoredKey>:<ServerKey>`, RFC 5802 and 7677): a password sent in this form is stored as
//! given, so the plain password never reaches the server. 4,096 iterations and a 16-byte salt,
//! as PostgreSQL makes them itself; no SASLprep, as the Go plugin.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const ITERATIONS: NonZeroU32 = match NonZeroU32::new(4096) {
    Some(n) => n,
    None => panic!("not zero"),
};
const SALT_LEN: usize = 16;

/// The verifier of `password` with a fresh random salt.
pub(crate) fn hash(password: &str) -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt)?;
    Ok(hash_with_salt(password, &salt))
}

fn hash_with_salt(password: &str, salt: &[u8]) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        ITERATIONS,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${}:{}${}:{}",
        ITERATIONS,
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's password and salt; the expected verifier computed apart, with Python's
    /// `hashlib` and `hmac` from RFC 5802's definitions. (That PostgreSQL accepts a login with
    /// such a verifier is the end-to-end tests' part.)
    #[test]
    fn the_verifier_is_the_one_postgresql_computes() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("base64");
        assert_eq!(
            hash_with_salt("pencil", &salt),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        let first = hash("pw").expect("random");
        let second = hash("pw").expect("random");
        assert_ne!(first, second);
        assert!(first.starts_with("SCRAM-SHA-256$4096:"), "{first}");
    }
}
