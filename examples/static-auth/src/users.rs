//! `users/<name>` and `list users/`: the users an operator sets up, kept in the mount's storage
//! at `user/<name>`.

use std::time::Duration;

use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response, Storage};

use crate::backend::StaticAuth;
use crate::password::PasswordHash;

/// Where users are kept in the mount's storage; `list` of it lists them.
const PREFIX: &str = "user/";

/// One user as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct User {
    pub(crate) password: PasswordHash,
    /// Sorted, without duplicates or empty names.
    pub(crate) policies: Vec<String>,
    /// The token's TTL; zero: the mount's default.
    #[serde(with = "seconds")]
    pub(crate) ttl: Duration,
    /// The most a token may live, renewals included; zero: the mount's maximum.
    #[serde(with = "seconds")]
    pub(crate) max_ttl: Duration,
}

/// A [`Duration`] stored as whole seconds.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(duration.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl User {
    /// The user called `name`, if there is one. A name with a slash never names a user
    /// (`users/<name>` captures none), and is not looked up.
    pub(crate) async fn load(storage: &dyn Storage, name: &str) -> Result<Option<Self>, Error> {
        if name.is_empty() || name.contains('/') {
            return Ok(None);
        }
        storage.get_json(&key(name)).await
    }

    async fn save(&self, storage: &dyn Storage, name: &str) -> Result<(), Error> {
        storage.put_json(&key(name), self).await
    }

    /// What `read` shows: never the password, nor its hash (a hash can be attacked offline).
    fn to_response(&self) -> Result<Response, Error> {
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            policies: &'a [String],
            ttl: u64,
            max_ttl: u64,
        }
        Response::from_serialize(&Shown {
            policies: &self.policies,
            ttl: self.ttl.as_secs(),
            max_ttl: self.max_ttl.as_secs(),
        })
    }
}

fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// Sorted and without duplicates or empty entries (`a,,b` or a trailing comma), so that the
/// same set reads the same and renew can compare sets by equality.
pub(crate) fn normalize_policies(mut policies: Vec<String>) -> Vec<String> {
    policies.retain(|policy| !policy.is_empty());
    policies.sort_unstable();
    policies.dedup();
    policies
}

pub(crate) fn paths() -> Vec<PathSpec<StaticAuth>> {
    vec![
        PathSpec::new("users/?")
            .operation(Operation::List, list)
            .help(
                "Lists the users.",
                "The names of the users that can log in.",
            ),
        PathSpec::new("users/{name}")
            .field(FieldSchema::new("name", FieldType::String, "The user's name.").required())
            .field(FieldSchema::new(
                "password",
                FieldType::String,
                "The user's password: required on create, kept when an update leaves it out. \
                 Stored only as a salted PBKDF2-HMAC-SHA256 hash and never shown.",
            ))
            .field(FieldSchema::new(
                "policies",
                FieldType::CommaStringSlice,
                "The policies of the user's tokens, as a list or a comma-separated string.",
            ))
            .field(FieldSchema::new(
                "ttl",
                FieldType::DurationSecond,
                "The TTL of the user's tokens; 0 for the mount's default.",
            ))
            .field(FieldSchema::new(
                "max_ttl",
                FieldType::DurationSecond,
                "The most a token may live, renewals included; 0 for the mount's maximum.",
            ))
            // The server asks it to pick the ACL capability: create for a new user, update
            // for an existing one.
            .existence_check(exists)
            .operation(Operation::Create, write)
            .operation(Operation::Update, write)
            .operation(Operation::Read, read)
            .operation(Operation::Delete, delete)
            .help(
                "Manages one user.",
                "Creates, reads, updates and deletes a user: password, policies and TTLs.",
            ),
    ]
}

async fn exists(backend: &StaticAuth, _: &Request, fields: &FieldData<'_>) -> Result<bool, Error> {
    let name = fields.get_string("name");
    Ok(backend.storage().get(&key(&name)).await?.is_some())
}

async fn read(
    backend: &StaticAuth,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let user = User::load(backend.storage(), &fields.get_string("name")).await?;
    user.map(|user| user.to_response()).transpose()
}

/// Create and update alike: an update changes only the fields it gives, and a create (or an
/// update that finds no user, say because it was deleted meanwhile) needs a password.
async fn write(
    backend: &StaticAuth,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let name = fields.get_string("name");
    // Read, change, write back: two concurrent updates of one user must not each keep
    // half of the other's change (a password change lost would keep old tokens renewing).
    let _guard = backend.write_lock(&key(&name)).await;
    let existing = User::load(backend.storage(), &name).await?;

    let password = match fields.get_ok("password") {
        Some(_) => {
            let password = fields.get_string("password");
            if password.is_empty() {
                return Ok(Some(Response::error("password must not be empty")));
            }
            Some(password)
        }
        None => None,
    };
    let password = match (password, existing.as_ref()) {
        (Some(password), _) => PasswordHash::new(password).await?,
        (None, Some(existing)) => existing.password.clone(),
        (None, None) => return Ok(Some(Response::error("missing password"))),
    };
    let mut user = User {
        password,
        policies: existing
            .as_ref()
            .map(|user| user.policies.clone())
            .unwrap_or_default(),
        ttl: existing.as_ref().map(|user| user.ttl).unwrap_or_default(),
        max_ttl: existing
            .as_ref()
            .map(|user| user.max_ttl)
            .unwrap_or_default(),
    };
    if fields.get_ok("policies").is_some() {
        user.policies = normalize_policies(fields.get_string_slice("policies"));
    }
    if fields.get_ok("ttl").is_some() {
        user.ttl = fields.get_duration("ttl");
    }
    if fields.get_ok("max_ttl").is_some() {
        user.max_ttl = fields.get_duration("max_ttl");
    }
    // The server would refuse the login's token anyway ("auth methods cannot create root
    // tokens"); saying so here tells the operator when the mistake is made.
    if user.policies.iter().any(|policy| policy == "root") {
        return Ok(Some(Response::error("a user cannot have the root policy")));
    }
    if !user.max_ttl.is_zero() && user.ttl > user.max_ttl {
        return Ok(Some(Response::error("ttl cannot be greater than max_ttl")));
    }
    user.save(backend.storage(), &name).await?;
    Ok(None)
}

/// Deleting a user ends its tokens at their next renewal (renew finds no user); those already
/// issued live out their TTL, as with the server's own userpass.
async fn delete(
    backend: &StaticAuth,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let name = fields.get_string("name");
    let _guard = backend.write_lock(&key(&name)).await;
    backend.storage().delete(&key(&name)).await?;
    Ok(None)
}

async fn list(
    backend: &StaticAuth,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Ok(Some(Response::list(backend.storage().list(PREFIX).await?)))
}
