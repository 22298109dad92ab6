//! The encrypted metadata names: sdk `helper/keysutil`'s `EncryptedKeyStorageWrapper` exactly
//! as the Go plugin configures it (`backend.go` `policy` and `getKeyEncryptor`), so the keys
//! under `<u>/metadata/` are the ones the Go plugin writes and reads.
//!
//! Every segment of a cleaned name is encrypted convergently (the same plaintext in the same
//! folder always gives the same ciphertext) with the policy's latest key:
//!
//! - `okm = HKDF-SHA256(ikm = key, no salt, info = context, 64 bytes)`, where the context is
//!   `<u>/metadata` joined with the plaintext segments before this one;
//! - `nonce = HMAC-SHA256(okm[32..64], segment)[..12]` (convergent version 3);
//! - `token = "<version>:" + base64(nonce || AES-256-GCM(okm[..32], nonce, segment))`;
//! - the storage segment is `token` read as a big-endian integer, written in base 62.
//!
//! The policy itself lives at `<u>/policy/metadata` (and its archive at `<u>/archive/metadata`)
//! in keysutil's JSON, which this module reads and, for a new mount, writes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::{aead, hkdf, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use vault_plugin_sdk::backend::framework::format_time;
use vault_plugin_sdk::backend::{Error, Storage};

/// The policy's name, which is also the last segment of its storage keys.
const POLICY_NAME: &str = "metadata";

/// keysutil `EncryptedKeyPolicyVersionTpl`: the ciphertexts carry `1:` rather than the
/// default `vault:v1:`, to keep the storage keys short.
const VERSION_TEMPLATE: &str = "{{version}}:";

/// keysutil `DefaultVersionTemplate`, used when a stored policy has no template.
const DEFAULT_VERSION_TEMPLATE: &str = "vault:v{{version}}:";

/// keysutil `currentConvergentVersion`: the nonce is an HMAC of the plaintext under a key
/// derived with the encryption key. The only version this module encrypts with.
const CONVERGENT_VERSION: i64 = 3;

/// keysutil `Kdf_hkdf_sha256`.
const KDF_HKDF_SHA256: i64 = 1;

/// keysutil `KeyType_AES256_GCM96`.
const KEY_TYPE_AES256_GCM96: i64 = 0;

/// The AES-GCM nonce length, which keysutil puts in front of the sealed segment.
const NONCE_LEN: usize = 12;

/// The key length: AES-256.
const KEY_LEN: usize = 32;

/// keysutil `ErrTooOld`.
const ERR_TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";

/// Go big.Int's digits for bases above 36: `0-9`, then `a-z`, then `A-Z`.
const BASE62_DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// 62^5 fits in 30 bits, so base-62 conversion can take five digits per pass over the bytes
/// with a `u64` accumulator instead of one.
const BASE62_CHUNK_DIGITS: usize = 5;
const BASE62_CHUNK: u64 = 62 * 62 * 62 * 62 * 62;

/// The names under `<u>/metadata/`: encrypts plaintext names into storage keys and decrypts
/// listed children back, with the mount's `metadata` keysutil policy.
#[derive(Clone)]
pub(crate) struct MetadataNames {
    inner: Arc<Inner>,
}

struct Inner {
    /// `path.Join(<u>, "metadata/")`: the first encryption context, and the storage prefix
    /// without its trailing slash.
    root: String,
    /// The key versions the policy holds, for decryption (a ciphertext names its version).
    keys: BTreeMap<i64, KeyVersion>,
    /// The version new names are encrypted with: keysutil encrypts with the latest.
    latest_version: i64,
    /// The latest version's key, kept apart so that encryption needs no fallible lookup.
    encryption_key: hkdf::Prk,
    min_decryption_version: i64,
    /// The policy-wide convergent version, which a key version's own (when not 0) overrides.
    convergent_version: i64,
    /// The version template split around `{{version}}`: what comes before and after it.
    template_prefix: String,
    template_suffix: String,
    /// Storage keys of names asked for lately: a name's key is the same every time (the
    /// encryption is convergent), and a request on a key asks for it at least once.
    known: Mutex<HashMap<String, String>>,
}

/// How many names [`Inner::known`] keeps before it starts again: a few hundred KiB at most.
const KNOWN_NAMES: usize = 4096;

/// One key version of the policy.
struct KeyVersion {
    /// The HKDF pseudo-random key extracted from the version's key bytes; every derivation
    /// only varies the context, so the extraction is done once.
    prk: hkdf::Prk,
    /// The entry's own `convergent_version` (0 when absent).
    convergent_version: i64,
}

/// Never prints key material.
impl fmt::Debug for MetadataNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataNames")
            .field("root", &self.inner.root)
            .field("latest_version", &self.inner.latest_version)
            .finish_non_exhaustive()
    }
}

impl MetadataNames {
    /// Loads the policy at `<u>/policy/metadata`; if absent, creates it as the Go plugin does
    /// (keysutil `NewPolicy` + `Rotate`: key 1 with a random 32-byte key and HMAC key, written
    /// to `<u>/archive/metadata` and then `<u>/policy/metadata` in keysutil's JSON).
    ///
    /// A stored policy this module cannot use as keysutil would (not derived, not convergent,
    /// another key type or KDF, no usable latest key) is an error, naming what is wrong and
    /// never the key bytes.
    pub(crate) async fn load_or_create(storage: &dyn Storage, uuid: &str) -> Result<Self, Error> {
        let policy_key = path_join(&[uuid, "policy", POLICY_NAME]);
        let root = path_join(&[uuid, "metadata/"]);
        // `get_json` reports a malformed entry by position only, never by its bytes.
        if let Some(policy) = storage.get_json::<Value>(&policy_key).await? {
            return Self::from_policy(root, &policy_key, &policy);
        }

        let entry = NewKeyEntry::generate()?;
        // keysutil's Persist stores the archive before the policy: a policy in storage always
        // has its archive.
        let archive_key = path_join(&[uuid, "archive", POLICY_NAME]);
        storage
            .put(&archive_key, archive_json(&entry).into_bytes())
            .await?;
        let policy = policy_json(uuid, &entry);
        storage
            .put(&policy_key, policy.clone().into_bytes())
            .await?;
        // Read back what was written, so a new mount and a loaded one take the same path.
        let policy: Value = serde_json::from_str(&policy).map_err(|_| {
            Error::other(format!(
                "the new metadata policy {policy_key:?} does not decode"
            ))
        })?;
        Self::from_policy(root, &policy_key, &policy)
    }

    /// The storage key of the metadata of the plaintext key `name`, as keysutil's wrapper maps
    /// it: `""` and `"/"` are the bare prefix `<u>/metadata/`; any other name is cleaned (Go
    /// `path.Clean`), loses a leading `/`, and has every segment encrypted.
    pub(crate) fn storage_key(&self, name: &str) -> String {
        let inner = &self.inner;
        if let Some(key) = lock(&inner.known).get(name) {
            return key.clone();
        }
        let key = self.encrypt_name(name);
        let mut known = lock(&inner.known);
        if known.len() >= KNOWN_NAMES {
            known.clear();
        }
        known.insert(name.to_owned(), key.clone());
        key
    }

    fn encrypt_name(&self, name: &str) -> String {
        let inner = &self.inner;
        if name.is_empty() || name == "/" {
            return format!("{}/", inner.root);
        }
        let cleaned = path_clean(name);
        let relative = cleaned.strip_prefix('/').unwrap_or(&cleaned);

        let mut key = inner.root.clone();
        let mut context = inner.root.clone();
        for segment in relative.split('/') {
            key.push('/');
            key.push_str(&self.encrypt_segment(&context, segment));
            // Joined (and so cleaned) as Go does: after a leading `..` the context climbs
            // above `<u>/metadata`, which keysutil's List mirrors with its own Join.
            context = path_join(&[&context, segment]);
        }
        key
    }

    /// The plaintext children of `prefix`, as keysutil's wrapper lists them: the encrypted
    /// prefix is listed, every child decrypted (a folder keeps its trailing `/`), and the
    /// result sorted byte-wise. A child that does not decode or decrypt is an error with
    /// keysutil's text (for one, `could not decode key`).
    pub(crate) async fn list(
        &self,
        storage: &dyn Storage,
        prefix: &str,
    ) -> Result<Vec<String>, Error> {
        let mut folder = self.storage_key(prefix);
        if !folder.ends_with('/') {
            folder.push('/');
        }
        let children = storage.list(&folder).await?;

        // The decryption context is the prefix joined to `<u>/metadata/` in one go, as Go's
        // List computes it (not segment by segment as encryption does).
        let context = path_join(&[&format!("{}/", self.inner.root), prefix]);
        let mut names = Vec::with_capacity(children.len());
        // Every child shares the context, so each key version's cipher is derived once.
        let mut ciphers = BTreeMap::new();
        for child in &children {
            let (encoded, is_folder) = match child.strip_suffix('/') {
                Some(encoded) => (encoded, true),
                None => (child.as_str(), false),
            };
            let token = base62_decode_like_go(encoded);
            if token.is_empty() {
                return Err(Error::other("could not decode key"));
            }
            let mut name = self.decrypt_token(&context, &token, &mut ciphers)?;
            if is_folder {
                name.push(b'/');
            }
            names.push(name);
        }
        // Go sorts the raw strings, so sort the bytes before any lossy conversion.
        names.sort_unstable();
        // Go keeps names as raw bytes; what reaches a client is JSON, where Go's encoder puts
        // U+FFFD for invalid UTF-8, as the lossy conversion does.
        Ok(names
            .into_iter()
            .map(|name| String::from_utf8_lossy(&name).into_owned())
            .collect())
    }

    /// Reads a keysutil policy (Go `json.Marshal` of `keysutil.Policy`) and checks that it
    /// can encrypt and decrypt names as keysutil would with it. Missing fields take Go's zero
    /// values and unknown ones are ignored, as Go's decoder does.
    fn from_policy(root: String, policy_key: &str, policy: &Value) -> Result<Self, Error> {
        let bad = |what: &str| {
            Error::other(format!(
                "the metadata policy {policy_key:?} is not usable: {what}"
            ))
        };
        let empty = Map::new();
        let fields = match policy {
            Value::Object(fields) => fields,
            // Go decodes `null` into a zero policy, which the checks below then reject.
            Value::Null => &empty,
            _ => return Err(bad("it is not a JSON object")),
        };
        let field = JsonFields { fields, policy_key };

        // NewEncryptedKeyStorageWrapper's checks, with its texts.
        if !field.boolean("derived")? {
            return Err(Error::other("key policy must use derived keys"));
        }
        if !field.boolean("convergent_encryption")? {
            return Err(Error::other("key policy must use convergent encryption"));
        }
        // keysutil supports more than the Go plugin ever creates; these are what it creates.
        if field.integer("type")? != KEY_TYPE_AES256_GCM96 {
            return Err(bad("its key type is not aes256-gcm96 (0)"));
        }
        if field.integer("kdf")? != KDF_HKDF_SHA256 {
            return Err(bad("its key derivation is not HKDF-SHA256 (1)"));
        }

        let convergent_version = field.integer("convergent_version")?;
        // With a policy-wide convergent version of 1, keysutil decrypts without a nonce,
        // which AES-GCM cannot do.
        if convergent_version == 1 {
            return Err(bad("its convergent version is 1"));
        }
        let latest_version = field.integer("latest_version")?;
        let min_decryption_version = field.integer("min_decryption_version")?;
        let min_encryption_version = field.integer("min_encryption_version")?;

        let template = field.string("version_template")?;
        let template = if template.is_empty() {
            DEFAULT_VERSION_TEMPLATE
        } else {
            template
        };
        let (template_prefix, template_suffix) = match template.split_once("{{version}}") {
            Some((before, after)) if !after.contains("{{version}}") => (before, after),
            _ => return Err(Error::internal("error parsing version template")),
        };
        // keysutil splits on the text after the version; an empty one splits differently
        // and no keysutil policy is written with it.
        if template_suffix.is_empty() {
            return Err(bad("its version template has nothing after {{version}}"));
        }

        let mut keys = BTreeMap::new();
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]);
        if let Some(entries) = field.object("keys")? {
            for (version, entry) in entries {
                // keysutil looks entries up by `strconv.Itoa(version)`: only canonical
                // decimal names are ever found.
                let Some(number) = version
                    .parse::<i64>()
                    .ok()
                    .filter(|number| number.to_string() == *version)
                else {
                    continue;
                };
                let entry_fields = match entry {
                    Value::Object(entry) => entry,
                    Value::Null => &empty,
                    _ => return Err(bad("a key version is not a JSON object")),
                };
                let entry = JsonFields {
                    fields: entry_fields,
                    policy_key,
                };
                // HKDF takes key bytes of any length, as keysutil's derivation does.
                let key = entry.bytes("key")?;
                keys.insert(
                    number,
                    KeyVersion {
                        prk: salt.extract(&key),
                        convergent_version: entry.integer("convergent_version")?,
                    },
                );
            }
        }

        // What keysutil's Encrypt would refuse on every name, refused once here so that
        // `storage_key` cannot fail.
        if latest_version < 1 {
            return Err(Error::internal(
                "unable to access the key; no key versions found",
            ));
        }
        if latest_version < min_encryption_version {
            return Err(Error::user(
                "requested version for encryption is less than the minimum encryption key version",
            ));
        }
        let Some(latest) = keys.get(&latest_version) else {
            return Err(Error::user("no such key version"));
        };
        if effective_convergent_version(convergent_version, latest.convergent_version)
            != CONVERGENT_VERSION
        {
            return Err(bad(
                "its latest key version does not use convergent version 3",
            ));
        }
        let encryption_key = latest.prk.clone();

        Ok(Self {
            inner: Arc::new(Inner {
                root,
                keys,
                latest_version,
                encryption_key,
                min_decryption_version,
                convergent_version,
                template_prefix: template_prefix.to_owned(),
                template_suffix: template_suffix.to_owned(),
                known: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// One storage segment: the base-62 form of the keysutil ciphertext of `segment`.
    fn encrypt_segment(&self, context: &str, segment: &str) -> String {
        let inner = &self.inner;
        let sealed = seal_convergent(&inner.encryption_key, context, segment.as_bytes())
            // Every step's failure is ruled out by sizes fixed here: a 64-byte HKDF output
            // (limit 8160), a 32-byte AES key, a 12-byte nonce, and a name far below AES-GCM's
            // 64 GiB limit.
            .expect("HKDF-SHA256 and AES-256-GCM with fixed, valid sizes do not fail");
        let token = format!(
            "{}{}{}{}",
            inner.template_prefix,
            inner.latest_version,
            inner.template_suffix,
            STANDARD.encode(sealed)
        );
        base62_encode(token.as_bytes())
    }

    /// keysutil `Policy.Decrypt` of one token, with its checks in its order and its error
    /// texts and kinds (user or internal error); returns the plaintext segment.
    /// `ciphers` keeps the cipher of each key version derived for `context` so far.
    fn decrypt_token(
        &self,
        context: &str,
        token: &[u8],
        ciphers: &mut BTreeMap<i64, aead::LessSafeKey>,
    ) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let Some(rest) = token.strip_prefix(inner.template_prefix.as_bytes()) else {
            return Err(Error::user("invalid ciphertext: no prefix"));
        };
        let suffix = inner.template_suffix.as_bytes();
        let Some(split) = rest
            .windows(suffix.len())
            .position(|window| window == suffix)
        else {
            return Err(Error::user("invalid ciphertext: wrong number of fields"));
        };
        let (version, ciphertext) = (&rest[..split], &rest[split + suffix.len()..]);

        // Go's Atoi: optional sign, decimal digits, 64 bits; so does `i64::from_str`.
        let Some(mut version) = std::str::from_utf8(version)
            .ok()
            .and_then(|version| version.parse::<i64>().ok())
        else {
            return Err(Error::user(
                "invalid ciphertext: version number could not be decoded",
            ));
        };
        if version == 0 {
            // keysutil's compatibility with keys that once started at 0.
            version = 1;
        }
        if version > inner.latest_version {
            return Err(Error::user("invalid ciphertext: version is too new"));
        }
        if inner.min_decryption_version > 0 && version < inner.min_decryption_version {
            return Err(Error::user(ERR_TOO_OLD));
        }
        let key = inner.keys.get(&version);
        let entry_convergent_version = key.map_or(0, |key| key.convergent_version);
        if effective_convergent_version(inner.convergent_version, entry_convergent_version) == 1 {
            return Err(Error::user("invalid convergent nonce supplied"));
        }
        let Some(sealed) = go_base64_decode(ciphertext) else {
            return Err(Error::user("invalid ciphertext: could not decode base64"));
        };
        if version <= 0 {
            return Err(Error::user("invalid key version"));
        }
        let Some(key) = key else {
            return Err(Error::user("no such key version"));
        };
        let cipher = match ciphers.entry(version) {
            std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::btree_map::Entry::Vacant(new) => {
                new.insert(convergent_cipher(&key.prk, context)?)
            }
        };
        open_convergent(cipher, sealed)
    }
}

/// The cache's lock; a panic while it was held left a map that is still valid.
fn lock(
    known: &Mutex<HashMap<String, String>>,
) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
    known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// keysutil `convergentVersion`: the entry's version when set, else the policy's, with 0
/// (a policy never upgraded) counting as 1.
fn effective_convergent_version(policy: i64, entry: i64) -> i64 {
    match (entry, policy) {
        (0, 0) => 1,
        (0, policy) => policy,
        (entry, _) => entry,
    }
}

/// keysutil's derivation for AES-256-GCM with HKDF-SHA256: the first `out.len()` bytes of
/// HKDF-Expand with `context` as the info (the extraction, with no salt, is in `prk`).
/// Encryption takes 64 bytes (key and HMAC key), decryption 32 (the key): HKDF's output
/// for a shorter length is a prefix of the longer one, so both agree on the key.
fn derive(prk: &hkdf::Prk, context: &str, out: &mut [u8]) -> Result<(), Unspecified> {
    let info = [context.as_bytes()];
    prk.expand(&info, OkmLen(out.len()))?.fill(out)
}

/// The length of an HKDF output, as aws-lc-rs asks for it.
struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// keysutil `SymmetricEncryptRaw` for convergent version 3: `nonce || AES-GCM(plaintext)`,
/// the nonce being the HMAC of the plaintext, so equal names give equal ciphertexts.
fn seal_convergent(
    prk: &hkdf::Prk,
    context: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, Unspecified> {
    let mut okm = [0u8; 2 * KEY_LEN];
    derive(prk, context, &mut okm)?;
    let (encryption_key, hmac_key) = okm.split_at(KEY_LEN);

    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, hmac_key), plaintext);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);

    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, encryption_key)?);
    let mut in_out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut in_out,
    )?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&in_out);
    Ok(sealed)
}

/// The AES-256-GCM cipher keysutil derives for `context` (the first 32 bytes of the HKDF
/// output), for decryption.
fn convergent_cipher(prk: &hkdf::Prk, context: &str) -> Result<aead::LessSafeKey, Error> {
    let mut encryption_key = [0u8; KEY_LEN];
    derive(prk, context, &mut encryption_key)
        .map_err(|_| Error::internal("could not derive enc key, length not correct"))?;
    aead::UnboundKey::new(&aead::AES_256_GCM, &encryption_key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| Error::user(AUTHENTICATION_FAILED))
}

/// Go's GCM says this for every failure to open, a too-short input included.
const AUTHENTICATION_FAILED: &str = "cipher: message authentication failed";

/// keysutil `SymmetricDecryptRaw` (the nonce leads the ciphertext), with its error texts.
fn open_convergent(key: &aead::LessSafeKey, mut sealed: Vec<u8>) -> Result<Vec<u8>, Error> {
    if sealed.len() < NONCE_LEN {
        return Err(Error::user("invalid ciphertext length"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let failed = || Error::user(AUTHENTICATION_FAILED);
    let plaintext_len = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut sealed[NONCE_LEN..],
        )
        .map_err(|_| failed())?
        .len();
    sealed.drain(..NONCE_LEN);
    sealed.truncate(plaintext_len);
    Ok(sealed)
}

/// Go `base64.StdEncoding.DecodeString`: padded, line breaks ignored, and (not being
/// strict) any trailing bits accepted.
fn go_base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    if !text.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
        return GO_STD_ENCODING.decode(text).ok();
    }
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|&byte| byte != b'\r' && byte != b'\n')
        .collect();
    GO_STD_ENCODING.decode(text).ok()
}

/// Go `big.Int.SetBytes(bytes).Text(62)`: the bytes as a big-endian integer in base 62.
fn base62_encode(bytes: &[u8]) -> String {
    // Repeated division by 62^5 of the big-endian number, collecting the remainders' digits
    // least significant first.
    let mut number: Vec<u8> = bytes
        .iter()
        .copied()
        .skip_while(|&byte| byte == 0)
        .collect();
    let mut digits = Vec::with_capacity(bytes.len() * 4 / 3 + BASE62_CHUNK_DIGITS);
    while !number.is_empty() {
        let mut remainder = 0u64;
        let mut quotient = Vec::with_capacity(number.len());
        for &byte in &number {
            let accumulator = (remainder << 8) | u64::from(byte);
            let digit = accumulator / BASE62_CHUNK;
            remainder = accumulator % BASE62_CHUNK;
            // A quotient byte: the accumulator is below 256 * 62^5, so it fits.
            if !quotient.is_empty() || digit != 0 {
                quotient.push(digit as u8);
            }
        }
        for _ in 0..BASE62_CHUNK_DIGITS {
            digits.push(BASE62_DIGITS[(remainder % 62) as usize]);
            remainder /= 62;
        }
        number = quotient;
    }
    // The last chunk's leading zeros are not part of the number.
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return "0".to_owned();
    }
    digits
        .iter()
        .rev()
        .map(|&digit| char::from(digit))
        .collect()
}

/// What Go's `decoder.SetString(text, 62)` followed by `decoder.Bytes()` gives in keysutil's
/// List, which ignores SetString's failure: an optional sign, then the longest run of base-62
/// digits, as a big-endian integer without leading zero bytes. So `zz!` reads as `zz`, and
/// text with no digits (or an empty name) as zero, which List reports as "could not decode
/// key". (Go would keep the previous child's value for an empty name, but that name sorts
/// first, when there is no previous value.)
fn base62_decode_like_go(text: &str) -> Vec<u8> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text).as_bytes();
    let count = digits
        .iter()
        .position(|&byte| base62_value(byte).is_none())
        .unwrap_or(digits.len());
    let digits = &digits[..count];

    // Little-endian 32-bit limbs, multiplied by 62^n and added to, n digits at a time (a
    // listing decodes every child, so this stays in one allocation of words, not bytes).
    let mut limbs: Vec<u32> = Vec::with_capacity(count * 6 / 32 + 2);
    for chunk in digits.chunks(BASE62_CHUNK_DIGITS) {
        let scale = 62u64.pow(chunk.len() as u32);
        let mut carry = chunk.iter().fold(0u64, |value, &digit| {
            value * 62 + base62_value(digit).unwrap_or_default()
        });
        for limb in &mut limbs {
            let product = u64::from(*limb) * scale + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        // Below 2^30 + 1: one limb holds it.
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    limbs
        .iter()
        .rev()
        .flat_map(|limb| limb.to_be_bytes())
        .skip_while(|&byte| byte == 0)
        .collect()
}

/// The value of one base-62 digit (the order of [`BASE62_DIGITS`]), `None` for anything else.
fn base62_value(byte: u8) -> Option<u64> {
    let value = match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'z' => byte - b'a' + 10,
        b'A'..=b'Z' => byte - b'A' + 36,
        _ => return None,
    };
    Some(u64::from(value))
}

/// Go `path.Clean`: no repeated or trailing slashes, no `.` segments, and `..` segments
/// resolved (kept at the start of a relative path, dropped at the root); `""` is `"."`.
fn path_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.last().is_some_and(|last| *last != "..") {
                    segments.pop();
                } else if !rooted {
                    segments.push("..");
                }
            }
            segment => segments.push(segment),
        }
    }
    let joined = segments.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Go `path.Join`: the non-empty elements joined with `/` and cleaned; `""` when all are
/// empty.
pub(super) fn path_join(elements: &[&str]) -> String {
    let present: Vec<&str> = elements
        .iter()
        .copied()
        .filter(|element| !element.is_empty())
        .collect();
    if present.is_empty() {
        return String::new();
    }
    path_clean(&present.join("/"))
}

/// Reads fields of a policy or key entry as Go's `encoding/json` fills a struct: a missing
/// or null field is the zero value, a field of another JSON type is an error. Errors name the
/// field, never its value: the entry holds keys.
struct JsonFields<'a> {
    fields: &'a Map<String, Value>,
    policy_key: &'a str,
}

impl<'a> JsonFields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.fields.get(name).filter(|value| !value.is_null())
    }

    fn wrong_type(&self, name: &str, expected: &str) -> Error {
        Error::other(format!(
            "the metadata policy {:?} does not decode: field {name:?} is not {expected}",
            self.policy_key
        ))
    }

    fn boolean(&self, name: &str) -> Result<bool, Error> {
        match self.get(name) {
            None => Ok(false),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.wrong_type(name, "a boolean")),
        }
    }

    fn integer(&self, name: &str) -> Result<i64, Error> {
        match self.get(name) {
            None => Ok(0),
            Some(value) => value
                .as_i64()
                .ok_or_else(|| self.wrong_type(name, "an integer")),
        }
    }

    fn string(&self, name: &str) -> Result<&'a str, Error> {
        match self.get(name) {
            None => Ok(""),
            Some(value) => value
                .as_str()
                .ok_or_else(|| self.wrong_type(name, "a string")),
        }
    }

    /// A Go `[]byte`: standard base64 in a string.
    fn bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(value) => value
                .as_str()
                .and_then(|text| go_base64_decode(text.as_bytes()))
                .ok_or_else(|| self.wrong_type(name, "base64 in a string")),
        }
    }

    fn object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_object()
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "an object")),
        }
    }
}

/// Key 1 of a new policy, as keysutil `RotateInMemory` makes it.
struct NewKeyEntry {
    key: [u8; KEY_LEN],
    hmac_key: [u8; KEY_LEN],
    /// `time.Now()` at the rotation.
    created: SystemTime,
}

impl NewKeyEntry {
    fn generate() -> Result<Self, Error> {
        let mut key = [0u8; KEY_LEN];
        let mut hmac_key = [0u8; KEY_LEN];
        for bytes in [&mut hmac_key, &mut key] {
            rand::fill(bytes).map_err(|_| {
                Error::other("failed to read random bytes: the system generator failed")
            })?;
        }
        Ok(Self {
            key,
            hmac_key,
            created: SystemTime::now(),
        })
    }

    /// Go `json.Marshal` of the `keysutil.KeyEntry`, fields in struct order.
    fn json(&self) -> String {
        // `creation_time` is Go's `time.Unix()`: whole seconds, rounded down. A clock before
        // 1970 is not worth failing a request for; the times are informational.
        let seconds = match self.created.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        format!(
            concat!(
                r#"{{"key":"{key}","hmac_key":"{hmac_key}","time":"{time}","#,
                r#""ec_x":null,"ec_y":null,"ec_d":null,"rsa_key":null,"rsa_public_key":null,"#,
                r#""public_key":"","convergent_version":{convergent},"creation_time":{seconds}}}"#
            ),
            key = STANDARD.encode(self.key),
            hmac_key = STANDARD.encode(self.hmac_key),
            time = format_time(self.created),
            convergent = CONVERGENT_VERSION,
            seconds = seconds,
        )
    }
}

/// Go `json.Marshal` of the zero `KeyEntry`, which keysutil's archive keeps at index 0 (the
/// archive is indexed by key version, and versions start at 1).
const ZERO_KEY_ENTRY_JSON: &str = concat!(
    r#"{"key":null,"hmac_key":null,"time":"0001-01-01T00:00:00Z","#,
    r#""ec_x":null,"ec_y":null,"ec_d":null,"rsa_key":null,"rsa_public_key":null,"#,
    r#""public_key":"","convergent_version":0,"creation_time":0}"#
);

/// `<u>/archive/metadata` after the first rotation: every key version by index.
fn archive_json(entry: &NewKeyEntry) -> String {
    format!(r#"{{"keys":[{ZERO_KEY_ENTRY_JSON},{}]}}"#, entry.json())
}

/// `<u>/policy/metadata` after `NewPolicy` and the first `Rotate`, byte for byte as Go's
/// `json.Marshal` writes the `keysutil.Policy` struct (field order, omitted empty
/// `key`/`key_size`, Go's un-tagged `Imported` and `AllowImportedKeyRotation`).
fn policy_json(uuid: &str, entry: &NewKeyEntry) -> String {
    format!(
        concat!(
            r#"{{"name":"{name}","keys":{{"1":{entry}}},"derived":true,"kdf":{kdf},"#,
            r#""convergent_encryption":true,"exportable":false,"min_decryption_version":1,"#,
            r#""min_encryption_version":0,"latest_version":1,"archive_version":1,"#,
            r#""archive_min_version":0,"min_available_version":0,"deletion_allowed":false,"#,
            r#""convergent_version":-1,"type":{key_type},"backup_info":null,"restore_info":null,"#,
            r#""allow_plaintext_backup":false,"version_template":{template},"#,
            r#""storage_prefix":{prefix},"auto_rotate_period":0,"Imported":false,"#,
            r#""AllowImportedKeyRotation":false}}"#
        ),
        name = POLICY_NAME,
        entry = entry.json(),
        kdf = KDF_HKDF_SHA256,
        key_type = KEY_TYPE_AES256_GCM96,
        template = go_json_string(VERSION_TEMPLATE),
        prefix = go_json_string(uuid),
    )
}

/// A JSON string as Go's `json.Marshal` writes it: like serde_json, but with `<`, `>`, `&`,
/// U+2028 and U+2029 escaped (Go's HTML-safe default). Mount UUIDs never contain them; this
/// only keeps the bytes Go's for any prefix.
fn go_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in Value::from(text).to_string().chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use vault_plugin_sdk::backend::{ErrorKind, MemoryStorage};

    use super::*;

    // The vectors below were produced by the Go code itself: a throwaway program built against
    // github.com/hashicorp/vault/sdk v0.9.2-0.20230721171514-bf23fe8636b0 (the sdk of Vault
    // 1.14.1, into which vault-plugin-secrets-kv v0.15.0 is built) made the policy with
    // keysutil.NewPolicy (the Go plugin's config) and Rotate, reading the "random" bytes
    // 0x80..0x9f (HMAC key) then 0x00..0x1f (key) from a fixed reader; it printed the
    // policy and archive entries, the storage keys keysutil's EncryptedKeyStorageWrapper
    // (prefix path.Join(U, "metadata/")) Put each name at, its List of prefixes, its List
    // errors for planted children, path.Clean, and salt.SaltID for the version keys.

    /// The BackendUUID of the vectors.
    const U: &str = "8f2a6c1e-5b7d-4e3f-9a01-23456789abcd";

    /// `<U>/policy/metadata` as keysutil wrote it.
    const GO_POLICY: &str = r#"{"name":"metadata","keys":{"1":{"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","hmac_key":"gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8=","time":"2026-12-03T11:58:18.887330035Z","ec_x":null,"ec_y":null,"ec_d":null,"rsa_key":null,"rsa_public_key":null,"public_key":"","convergent_version":3,"creation_time":1796299098}},"derived":true,"kdf":1,"convergent_encryption":true,"exportable":false,"min_decryption_version":1,"min_encryption_version":0,"latest_version":1,"archive_version":1,"archive_min_version":0,"min_available_version":0,"deletion_allowed":false,"convergent_version":-1,"type":0,"backup_info":null,"restore_info":null,"allow_plaintext_backup":false,"version_template":"{{version}}:","storage_prefix":"8f2a6c1e-5b7d-4e3f-9a01-23456789abcd","auto_rotate_period":0,"Imported":false,"AllowImportedKeyRotation":false}"#;

    /// `<U>/archive/metadata` as keysutil wrote it.
    const GO_ARCHIVE: &str = r#"{"keys":[{"key":null,"hmac_key":null,"time":"0001-01-01T00:00:00Z","ec_x":null,"ec_y":null,"ec_d":null,"rsa_key":null,"rsa_public_key":null,"public_key":"","convergent_version":0,"creation_time":0},{"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","hmac_key":"gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8=","time":"2026-12-03T11:58:18.887330035Z","ec_x":null,"ec_y":null,"ec_d":null,"rsa_key":null,"rsa_public_key":null,"public_key":"","convergent_version":3,"creation_time":1796299098}]}"#;

    /// Plaintext names and where keysutil put them, below `<U>/metadata/`.
    const GO_KEYS: &[(&str, &str)] = &[
        ("", ""),
        ("/", ""),
        (
            "a",
            "18yeP3SQBSIV7zCzkHqbXE7Qoccl6DC5JzQcFCawYDGZGePRaGjNAN5MN",
        ),
        (
            "a/b/c",
            "18yeP3SQBSIV7zCzkHqbXE7Qoccl6DC5JzQcFCawYDGZGePRaGjNAN5MN/18yeTA8f3KhKooepS0Lq1PuLLe439KPRGiia35Qz6kL8jhzYIXH5wygCV/18ydjHlWAgI9sSlg2RIMZWVJqiwoEurIHmQIyD5enhIrWLZsGLCUDnolf",
        ),
        (
            "x/",
            "18yaSMmnBXyYc69c1ugGmjn8cTHiPRQUcEuDLAe4RigQAB6UMTNltnzHf",
        ),
        (
            "/x",
            "18yaSMmnBXyYc69c1ugGmjn8cTHiPRQUcEuDLAe4RigQAB6UMTNltnzHf",
        ),
        (
            "a//b/./c/../d",
            "18yeP3SQBSIV7zCzkHqbXE7Qoccl6DC5JzQcFCawYDGZGePRaGjNAN5MN/18yeTA8f3KhKooepS0Lq1PuLLe439KPRGiia35Qz6kL8jhzYIXH5wygCV/18ydoGrTO9ET3HlBTepiaCV9wwgFi76PgjbB5edECTqrIEqHx7GN3NcDj",
        ),
        (
            "with space",
            "1TfDQjdURiZ4yaGOmLp2qAn947ogqVToNx7xX18bfQ13p50019Yt6w7S2qXgAiKU6kPCC6JhX",
        ),
        (
            "ünï/cødé ☃",
            "5kL4qDogiTnBTlgL5H0ULsSMbCaYRQpQ9y04CRvP052fhWfENt5rDr2CeHT3XP/1TfzUJpq8ifmMRfNZzRicEIS62XaRi22iSYnD4TR1a22MiZHS1kHqKJxWlD6Of6uNoDP7YgFv",
        ),
        (
            ".",
            "18ydjthuabEc0QGRmH3pSCHHMtgH16vy4d0VFoUCQ3vxReg80RhbjaivP",
        ),
        (
            "..",
            "18y9HI4peOoTKg01TuTja5SfaDgMkjyQycgEnI45mzxRC7BXC0lJsx5wz",
        ),
        (
            "../a",
            "18y9HI4peOoTKg01TuTja5SfaDgMkjyQycgEnI45mzxRC7BXC0lJsx5wz/18yeOL2ebc7VXlGs1q1vXMn5El6Ffd7PItBOSCm7gfyDq1i28QANvBihL",
        ),
        (
            "//",
            "18y9MzFMlhWM9M0gLy7aEXLbrHEGiuUNo9qmjn8HqGlfzevEEubBoNFLv",
        ),
        (
            "foo",
            "5kKGusiYIxSkTscjfKMb8MARBI5KE9QEwhF5QrKVzulYVEcJhLzVqaa7Q9QaN7",
        ),
        (
            "foo/bar",
            "5kKGusiYIxSkTscjfKMb8MARBI5KE9QEwhF5QrKVzulYVEcJhLzVqaa7Q9QaN7/5kKXLKzK1RG4uixQdIvyF08LLYrcvPIvqC5mNIXAhAmLFU8nBaSKcaae52HidD",
        ),
        (
            "foo/baz/qux",
            "5kKGusiYIxSkTscjfKMb8MARBI5KE9QEwhF5QrKVzulYVEcJhLzVqaa7Q9QaN7/5kKErroDR9WCEfuBcRzgxt4tZCLYOlpJ0R2z5C7wafC6zzn0kw9VO3CgcqCZOZ/5kKQe9IEFIgm7MsHdGtNta2wszMBbf8SPw07tvAEnHfz3cCRz7jujsrLkv2gKV",
        ),
    ];

    /// keysutil's List of each prefix, over a storage holding the names of `GO_KEYS` but ""
    /// and "/" (which put an entry at the prefix itself).
    const GO_LISTS: &[(&str, &[&str])] = &[
        (
            "",
            &[
                "",
                ".",
                "..",
                "../",
                "a",
                "a/",
                "foo",
                "foo/",
                "with space",
                "x",
                "ünï/",
            ],
        ),
        (
            "/",
            &[
                "",
                ".",
                "..",
                "../",
                "a",
                "a/",
                "foo",
                "foo/",
                "with space",
                "x",
                "ünï/",
            ],
        ),
        ("foo", &["bar", "baz/"]),
        ("foo/", &["bar", "baz/"]),
        ("foo/baz", &["qux"]),
        ("a/b", &["c", "d"]),
        ("ünï/", &["cødé ☃"]),
        ("..", &["a"]),
        ("x", &[]),
    ];

    /// keysutil's List of `""` when `<U>/metadata/` holds one planted child: the ciphertext of
    /// "foo" under another context, of "1:!!!", of version 9, -1 and 0 of "foo", of "1:AAAA",
    /// of "x:…", of "nocolon", and the right one behind a sign.
    const GO_PLANTED: &[(&str, Result<&str, &str>)] = &[
        ("!!!", Err("could not decode key")),
        ("zz!", Err("invalid ciphertext: wrong number of fields")),
        ("", Err("could not decode key")),
        ("/x", Err("could not decode key")),
        (
            "5kKV0Z2H0zpWmoKhiToRojlteDtSdaoYAWjhlZoBD6PrmjPjdqNzfOtQJZRErb",
            Err("cipher: message authentication failed"),
        ),
        (
            "3IMB3wZ",
            Err("invalid ciphertext: could not decode base64"),
        ),
        (
            "6cvfzLamAFx85ActN7LGHp6yMiInwsy29TGIi0opiaUdsC8BrXwjkfDu38BHrf",
            Err("invalid ciphertext: version is too new"),
        ),
        (
            "kdKhzGwdrMpkWBk94jLn9feLxAjeFQtpGzthZUUHdrNtuBEmK17D87i1XjvGqOV",
            Err("ciphertext or signature version is disallowed by policy (too old)"),
        ),
        (
            "5e276xHiZ1UZfbHhW59urHMoXDvVhS0JjA9Ti0aZBExcC1IfguAnqTYHOxfesB",
            Ok("foo"),
        ),
        ("fmVfu4yl", Err("invalid ciphertext length")),
        (
            "d1NcShrLQ8Q80lIOMq54tinFuX7zaAja46oti1Uj5PvjoJ76Ke3QzHeVHm8YhL",
            Err("invalid ciphertext: version number could not be decoded"),
        ),
        (
            "2imPVP1Mg6",
            Err("invalid ciphertext: wrong number of fields"),
        ),
        (
            "-5kKGusiYIxSkTscjfKMb8MARBI5KE9QEwhF5QrKVzulYVEcJhLzVqaa7Q9QaN7",
            Ok("foo"),
        ),
        (
            "+5kKGusiYIxSkTscjfKMb8MARBI5KE9QEwhF5QrKVzulYVEcJhLzVqaa7Q9QaN7/",
            Ok("foo/"),
        ),
    ];

    /// Go `path.Clean`.
    const GO_CLEAN: &[(&str, &str)] = &[
        ("", "."),
        (".", "."),
        ("..", ".."),
        ("/", "/"),
        ("//", "/"),
        ("a/", "a"),
        ("/a/", "/a"),
        ("a//b", "a/b"),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("../a", "../a"),
        ("../../a/..", "../.."),
        ("/../a", "/a"),
        ("a/b/../../..", ".."),
        ("./a/", "a"),
        ("x/./../y/.", "y"),
        ("ü/ /ü", "ü/ /ü"),
    ];

    /// The key entry of the vectors' policy.
    fn go_entry() -> NewKeyEntry {
        let mut key = [0u8; KEY_LEN];
        let mut hmac_key = [0u8; KEY_LEN];
        for (index, (key, hmac_key)) in key.iter_mut().zip(&mut hmac_key).enumerate() {
            *key = u8::try_from(index).unwrap();
            *hmac_key = 0x80 + u8::try_from(index).unwrap();
        }
        NewKeyEntry {
            key,
            hmac_key,
            created: UNIX_EPOCH + Duration::new(1_796_299_098, 887_330_035),
        }
    }

    fn policy_key() -> String {
        format!("{U}/policy/metadata")
    }

    /// A storage holding the Go policy, and the names loaded from it.
    async fn go_names() -> (MemoryStorage, MetadataNames) {
        let storage = MemoryStorage::new();
        storage
            .put(&policy_key(), GO_POLICY.as_bytes().to_vec())
            .await
            .unwrap();
        let names = MetadataNames::load_or_create(&storage, U).await.unwrap();
        (storage, names)
    }

    #[tokio::test]
    async fn a_go_policy_loads_and_gives_gos_storage_keys() {
        let (storage, names) = go_names().await;
        for (name, key) in GO_KEYS {
            assert_eq!(
                names.storage_key(name),
                format!("{U}/metadata/{key}"),
                "name {name:?}"
            );
        }
        // Loading wrote nothing: the policy stays Go's, and no archive appears.
        assert_eq!(
            storage.get(&policy_key()).await.unwrap().unwrap(),
            GO_POLICY.as_bytes()
        );
        assert_eq!(storage.list(&format!("{U}/")).await.unwrap(), ["policy/"]);
    }

    #[tokio::test]
    async fn keys_go_wrote_list_as_go_lists_them() {
        let (storage, names) = go_names().await;
        for (name, key) in &GO_KEYS[2..] {
            let key = format!("{U}/metadata/{key}");
            storage.put(&key, name.as_bytes().to_vec()).await.unwrap();
        }
        for (prefix, expected) in GO_LISTS {
            assert_eq!(
                names.list(&storage, prefix).await.unwrap(),
                *expected,
                "prefix {prefix:?}"
            );
        }
    }

    #[tokio::test]
    async fn planted_children_give_gos_results_and_errors() {
        let (_, names) = go_names().await;
        for (child, expected) in GO_PLANTED {
            let storage = MemoryStorage::new();
            let key = format!("{U}/metadata/{child}");
            storage.put(&key, b"v".to_vec()).await.unwrap();
            let listed = names.list(&storage, "").await;
            match expected {
                Ok(name) => assert_eq!(listed.unwrap(), [*name], "child {child:?}"),
                Err(message) => {
                    let error = listed.unwrap_err();
                    assert_eq!(error.message(), *message, "child {child:?}");
                    // keysutil's own errors are errutil.UserError; the wrapper's is plain.
                    let kind = if *message == "could not decode key" {
                        ErrorKind::Other
                    } else {
                        ErrorKind::User
                    };
                    assert_eq!(error.kind(), kind, "child {child:?}");
                }
            }
        }
    }

    #[test]
    fn a_new_policy_and_archive_are_byte_for_byte_gos() {
        assert_eq!(policy_json(U, &go_entry()), GO_POLICY);
        assert_eq!(archive_json(&go_entry()), GO_ARCHIVE);
    }

    #[tokio::test]
    async fn a_new_policy_is_written_with_its_archive_and_loaded_again() {
        let storage = MemoryStorage::new();
        let created = MetadataNames::load_or_create(&storage, U).await.unwrap();

        let policy: Value =
            serde_json::from_slice(&storage.get(&policy_key()).await.unwrap().unwrap()).unwrap();
        let entry = &policy["keys"]["1"];
        assert_eq!(
            STANDARD
                .decode(entry["key"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            STANDARD
                .decode(entry["hmac_key"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_ne!(entry["key"], entry["hmac_key"]);
        assert_eq!(entry["convergent_version"], 3);
        assert_eq!(policy["storage_prefix"], U);
        assert_eq!(policy["latest_version"], 1);

        let archive: Value = serde_json::from_slice(
            &storage
                .get(&format!("{U}/archive/metadata"))
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let archived = archive["keys"].as_array().unwrap();
        assert_eq!(archived.len(), 2);
        assert_eq!(archived[0]["key"], Value::Null);
        assert_eq!(&archived[1], entry);

        // Loaded again, the same key gives the same names; a second mount's key does not.
        let loaded = MetadataNames::load_or_create(&storage, U).await.unwrap();
        assert_eq!(loaded.storage_key("a/b"), created.storage_key("a/b"));
        let other = MetadataNames::load_or_create(&MemoryStorage::new(), U)
            .await
            .unwrap();
        assert_ne!(other.storage_key("a/b"), created.storage_key("a/b"));
    }

    #[tokio::test]
    async fn names_round_trip_through_storage_and_list() {
        let storage = MemoryStorage::new();
        let names = MetadataNames::load_or_create(&storage, U).await.unwrap();
        let prefix = format!("{U}/metadata/");

        // The bare prefix, and path.Clean's aliases.
        assert_eq!(names.storage_key(""), prefix);
        assert_eq!(names.storage_key("/"), prefix);
        assert_eq!(names.storage_key("x/"), names.storage_key("x"));
        assert_eq!(names.storage_key("/x"), names.storage_key("x"));
        assert_eq!(names.storage_key("a//b/./c/"), names.storage_key("a/b/c"));
        assert_ne!(names.storage_key("a"), names.storage_key("b"));

        for name in [
            "a/b/c",
            "a/b/d",
            "a/e",
            "with space",
            "ünï/cødé ☃",
            "x/",
            "z",
        ] {
            let key = names.storage_key(name);
            // One encrypted segment per plaintext one, each plain base 62.
            let encrypted = key.strip_prefix(&prefix).unwrap();
            let cleaned = path_clean(name);
            assert_eq!(encrypted.split('/').count(), cleaned.split('/').count());
            assert!(
                encrypted
                    .bytes()
                    .all(|b| b == b'/' || b.is_ascii_alphanumeric())
            );
            storage.put(&key, Vec::new()).await.unwrap();
        }

        let list = |prefix: &'static str| {
            let (storage, names) = (&storage, &names);
            async move { names.list(storage, prefix).await.unwrap() }
        };
        assert_eq!(list("").await, ["a/", "with space", "x", "z", "ünï/"]);
        assert_eq!(list("/").await, list("").await);
        assert_eq!(list("a").await, ["b/", "e"]);
        assert_eq!(list("a/").await, ["b/", "e"]);
        assert_eq!(list("a/b/").await, ["c", "d"]);
        assert_eq!(list("ünï/").await, ["cødé ☃"]);
        assert!(list("missing/").await.is_empty());
        assert!(list("z/").await.is_empty());
    }

    #[tokio::test]
    async fn a_malformed_policy_is_an_error_that_shows_no_key_bytes() {
        const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let cases = [
            // Not JSON at all (cut short).
            GO_POLICY[..GO_POLICY.len() / 2].to_owned(),
            // A field of the wrong type next to the key, and the key itself of the wrong form.
            GO_POLICY.replace(r#""convergent_version":3"#, r#""convergent_version":"3""#),
            GO_POLICY.replace(KEY, &format!("!{KEY}")),
            GO_POLICY
                .replace(r#""keys":{"1":{"#, r#""keys":{"1":[{"#)
                .replace("1796299098}}", "1796299098}]}"),
            // Valid JSON that keysutil's wrapper or this module refuses.
            GO_POLICY.replace(r#""derived":true"#, r#""derived":false"#),
            GO_POLICY.replace(
                r#""convergent_encryption":true"#,
                r#""convergent_encryption":false"#,
            ),
            GO_POLICY.replace(r#""kdf":1"#, r#""kdf":0"#),
            GO_POLICY.replace(r#""latest_version":1"#, r#""latest_version":2"#),
            GO_POLICY.replace(r#""latest_version":1"#, r#""latest_version":0"#),
            GO_POLICY.replace(r#""convergent_version":3"#, r#""convergent_version":2"#),
            GO_POLICY.replace(
                r#""version_template":"{{version}}:""#,
                r#""version_template":"{{version}}""#,
            ),
            "[]".to_owned(),
        ];
        for policy in cases {
            let storage = MemoryStorage::new();
            storage
                .put(&policy_key(), policy.into_bytes())
                .await
                .unwrap();
            let error = MetadataNames::load_or_create(&storage, U)
                .await
                .unwrap_err();
            let message = error.message();
            assert!(!message.is_empty());
            for secret in [KEY, &KEY[..8], "AAECAwQF", "gIGCg4SF"] {
                assert!(!message.contains(secret), "{message}");
            }
            // And nothing was overwritten.
            assert!(
                storage
                    .get(&format!("{U}/archive/metadata"))
                    .await
                    .unwrap()
                    .is_none()
            );
        }

        let storage = MemoryStorage::new();
        let derived = GO_POLICY.replace(r#""derived":true"#, r#""derived":false"#);
        storage
            .put(&policy_key(), derived.into_bytes())
            .await
            .unwrap();
        let error = MetadataNames::load_or_create(&storage, U)
            .await
            .unwrap_err();
        assert_eq!(error.message(), "key policy must use derived keys");
    }

    #[tokio::test]
    async fn unknown_and_missing_fields_are_tolerated() {
        let storage = MemoryStorage::new();
        // Only what encryption needs, plus fields keysutil does not know.
        let minimal = r#"{"keys":{"1":{"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "convergent_version":3,"future":{"x":1}},"01":{"key":"not base64 but never read"}},
            "derived":true,"kdf":1,"convergent_encryption":true,"latest_version":1,
            "min_decryption_version":1,"version_template":"{{version}}:","another":[1,2]}"#;
        storage
            .put(&policy_key(), minimal.as_bytes().to_vec())
            .await
            .unwrap();
        let names = MetadataNames::load_or_create(&storage, U).await.unwrap();
        for (name, key) in GO_KEYS {
            assert_eq!(names.storage_key(name), format!("{U}/metadata/{key}"));
        }
    }

    #[test]
    fn base62_is_gos_big_int_text() {
        let token = "1:5z7O33OJMkcX0rtSO8MYn07Kss5oBIQ19Pm80hKuow==";
        let text = "5kKGusiYIxSkTscjfKMb8MARBI5KE9QEwhF5QrKVzulYVEcJhLzVqaa7Q9QaN7";
        assert_eq!(base62_encode(token.as_bytes()), text);
        assert_eq!(base62_decode_like_go(text), token.as_bytes());

        assert_eq!(base62_encode(&[]), "0");
        assert_eq!(base62_encode(&[0, 0]), "0");
        assert_eq!(base62_encode(&[61]), "Z");
        assert_eq!(base62_encode(&[62]), "10");
        assert_eq!(base62_encode(&[0, 1, 0]), "48");
        assert_eq!(base62_decode_like_go("0048"), [1, 0]);
        assert!(base62_decode_like_go("").is_empty());
        assert!(base62_decode_like_go("000").is_empty());
        assert!(base62_decode_like_go("-").is_empty());
        assert_eq!(base62_decode_like_go("Z!Z"), [61]);

        // Every length round-trips, across the five-digit chunks.
        let bytes: Vec<u8> = (1..=200u8).map(|b| b.wrapping_mul(37)).collect();
        for len in 0..bytes.len() {
            let slice = &bytes[..len];
            let trimmed: Vec<u8> = slice.iter().copied().skip_while(|&b| b == 0).collect();
            assert_eq!(base62_decode_like_go(&base62_encode(slice)), trimmed);
        }
    }

    #[test]
    fn paths_clean_and_join_as_go() {
        for (path, cleaned) in GO_CLEAN {
            assert_eq!(path_clean(path), *cleaned, "path {path:?}");
        }
        assert_eq!(path_join(&["", "metadata/"]), "metadata");
        assert_eq!(path_join(&["u", "metadata/"]), "u/metadata");
        assert_eq!(path_join(&["u/metadata/", ""]), "u/metadata");
        assert_eq!(path_join(&["u/metadata", ".."]), "u");
        assert_eq!(path_join(&["", ""]), "");
    }
}
