//! `roles/<name>` and `roles/`: what a credential of each role looks like and how long it lives.

use std::time::Duration;

use serde_json::json;
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use crate::backend::{PasswordBackend, seconds};

/// A password's length when the role does not say.
pub(crate) const DEFAULT_LENGTH: i64 = 20;
/// Shorter passwords are too easy to guess to be worth leasing.
const MIN_LENGTH: i64 = 8;
/// The server keeps every password in the lease's data: keep that small.
const MAX_LENGTH: i64 = 1024;

pub(crate) fn paths() -> Vec<PathSpec<PasswordBackend>> {
    vec![
        PathSpec::new("roles/?")
            .operation(Operation::List, list)
            .help("Lists the roles.", ""),
        PathSpec::new("roles/{name}")
            .field(FieldSchema::new("name", FieldType::String, "The role's name.").required())
            .field(FieldSchema::new(
                "ttl",
                FieldType::DurationSecond,
                "How long a credential's lease lives; 0 means the mount's default lease TTL.",
            ))
            .field(FieldSchema::new(
                "max_ttl",
                FieldType::DurationSecond,
                "The most a credential's lease may live, renewals included; 0 means the \
                 mount's max lease TTL.",
            ))
            .field(
                FieldSchema::new(
                    "length",
                    FieldType::Int,
                    "The passwords' length; it does not apply with a password_policy.",
                )
                .with_default(json!(DEFAULT_LENGTH)),
            )
            .field(FieldSchema::new(
                "password_policy",
                FieldType::String,
                "The server's password policy (sys/policies/password/<name>) that makes the \
                 passwords instead of the plugin, length and all; empty for none.",
            ))
            // Without an existence check every write would need `update` capability and be
            // an update; with it, the server sends `create` for a new role.
            .existence_check(exists)
            .operation(Operation::Create, write)
            .operation(Operation::Update, write)
            .operation(Operation::Read, read)
            .operation(Operation::Delete, delete)
            .help(
                "Manages the roles credentials are issued for.",
                "A role fixes the passwords' length, or the server's password policy that \
                 makes them, and the TTL and max TTL of their leases. With a password_policy, \
                 length does not apply and a read shows the policy in its place.",
            ),
    ]
}

/// A role as stored at `roles/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Role {
    #[serde(with = "seconds")]
    pub(crate) ttl: Duration,
    #[serde(with = "seconds")]
    pub(crate) max_ttl: Duration,
    /// Ignored while `password_policy` is set, but kept for when it is cleared.
    pub(crate) length: usize,
    /// The server's password policy that makes the passwords, if any (never empty). Absent
    /// in roles stored before the field existed.
    #[serde(default)]
    pub(crate) password_policy: Option<String>,
}

pub(crate) fn role_key(name: &str) -> String {
    format!("roles/{name}")
}

impl PasswordBackend {
    /// The role called `name`, if there is one.
    pub(crate) async fn role(&self, name: &str) -> Result<Option<Role>, Error> {
        self.storage.get_json(&role_key(name)).await
    }
}

async fn exists(
    backend: &PasswordBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<bool, Error> {
    let key = role_key(&fields.get_string("name"));
    Ok(backend.storage.get(&key).await?.is_some())
}

/// Create and update: an update changes only the fields it names, a create starts from the
/// defaults.
async fn write(
    backend: &PasswordBackend,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let name = fields.get_string("name");
    // Read, change, write back: held until the write, so that two updates at once do not
    // each keep the role as it was before the other.
    let _guard = backend.locks.lock(&role_key(&name)).await;
    let existing = match request.operation {
        Operation::Update => backend.role(&name).await?,
        _ => None,
    };
    let mut role = existing.unwrap_or(Role {
        ttl: Duration::ZERO,
        max_ttl: Duration::ZERO,
        length: 0,
        password_policy: None,
    });
    if fields.is_present("ttl") || request.operation == Operation::Create {
        role.ttl = fields.get_duration("ttl");
    }
    if fields.is_present("max_ttl") || request.operation == Operation::Create {
        role.max_ttl = fields.get_duration("max_ttl");
    }
    if fields.is_present("length") || role.length == 0 {
        // Reads the default when absent, so a create (or an update that makes the role)
        // gets 20.
        let length = fields.get_int("length");
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Ok(Some(Response::error(format!(
                "length must be between {MIN_LENGTH} and {MAX_LENGTH}, not {length}"
            ))));
        }
        role.length = usize::try_from(length).unwrap_or(DEFAULT_LENGTH as usize);
    }
    if fields.is_present("password_policy") {
        let policy = fields.get_string("password_policy");
        role.password_policy = Some(policy).filter(|p| !p.is_empty());
    }
    // Checked on the role as it will be, so an update of one of the two is checked
    // against the stored other.
    if !role.max_ttl.is_zero() && role.ttl > role.max_ttl {
        return Ok(Some(Response::error("ttl cannot be greater than max_ttl")));
    }
    backend.storage.put_json(&role_key(&name), &role).await?;
    if fields.is_present("length") && role.password_policy.is_some() {
        return Ok(Some(Response::default().with_warning(
            "length does not apply while the role has a password_policy",
        )));
    }
    Ok(None)
}

async fn read(
    backend: &PasswordBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let Some(role) = backend.role(&fields.get_string("name")).await? else {
        return Ok(None);
    };
    // With a policy the length does not apply: the read shows the policy in its place.
    let length = role.password_policy.is_none().then_some(role.length);
    Response::from_serialize(&RoleView {
        ttl: role.ttl.as_secs(),
        max_ttl: role.max_ttl.as_secs(),
        length,
        password_policy: role.password_policy,
    })
    .map(Some)
}

/// A role as a read shows it: durations in seconds, and the length or the policy.
#[derive(serde::Serialize)]
struct RoleView {
    ttl: u64,
    max_ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_policy: Option<String>,
}

/// Deleting a role leaves its credentials' leases alone (as Go's database engine does): they
/// live until they expire or are revoked, but can no longer be renewed.
async fn delete(
    backend: &PasswordBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = role_key(&fields.get_string("name"));
    // Not in the middle of an update, which would write the role back.
    let _guard = backend.locks.lock(&key).await;
    backend.storage.delete(&key).await?;
    Ok(None)
}

async fn list(
    backend: &PasswordBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Ok(Some(Response::list(backend.storage.list("roles/").await?)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vault_plugin_sdk::backend::{BoxFuture, ErrorKind, KeyedLocks, Operation, StorageError};
    use vault_plugin_sdk::testing::TestBackend;

    use crate::backend::testing::{backend, call};

    #[tokio::test]
    async fn a_role_is_created_with_defaults_read_in_seconds_updated_in_part_and_deleted() {
        let backend = backend().await;
        let written = call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"ttl": "1h"}),
        )
        .await;
        assert_eq!(written, None);
        let read = call(&backend, Operation::Read, "roles/web", json!({})).await;
        assert_eq!(
            read.map(|r| r.data),
            Some(crate::backend::testing::object(
                json!({"ttl": 3600, "max_ttl": 0, "length": 20})
            ))
        );

        // An update keeps what it does not name.
        call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"max_ttl": "2h", "length": 32}),
        )
        .await;
        let read = call(&backend, Operation::Read, "roles/web", json!({})).await;
        assert_eq!(
            read.map(|r| r.data),
            Some(crate::backend::testing::object(
                json!({"ttl": 3600, "max_ttl": 7200, "length": 32})
            ))
        );

        let listed = call(&backend, Operation::List, "roles/", json!({})).await;
        assert_eq!(listed.map(|r| r.data["keys"].clone()), Some(json!(["web"])));
        call(&backend, Operation::Delete, "roles/web", json!({})).await;
        assert_eq!(
            call(&backend, Operation::Read, "roles/web", json!({})).await,
            None
        );
    }

    #[tokio::test]
    async fn a_password_policy_is_shown_in_place_of_the_length_which_it_keeps() {
        let backend = backend().await;
        let written = call(
            &backend,
            Operation::Update,
            "roles/pin",
            json!({"password_policy": "digits"}),
        )
        .await;
        assert_eq!(written, None);
        let read = call(&backend, Operation::Read, "roles/pin", json!({})).await;
        assert_eq!(
            read.map(|r| r.data),
            Some(crate::backend::testing::object(
                json!({"ttl": 0, "max_ttl": 0, "password_policy": "digits"})
            ))
        );
        let role = backend
            .backend()
            .role("pin")
            .await
            .expect("storage")
            .expect("a role");
        assert_eq!(role.password_policy.as_deref(), Some("digits"));

        // A length written with a policy is kept, with a warning that it does not apply.
        let written = call(
            &backend,
            Operation::Update,
            "roles/pin",
            json!({"length": 32}),
        )
        .await
        .expect("a warning");
        assert_eq!(
            written.warnings,
            ["length does not apply while the role has a password_policy"]
        );
        // An empty policy clears it, and the length applies again.
        call(
            &backend,
            Operation::Update,
            "roles/pin",
            json!({"password_policy": ""}),
        )
        .await;
        let read = call(&backend, Operation::Read, "roles/pin", json!({})).await;
        assert_eq!(
            read.map(|r| r.data),
            Some(crate::backend::testing::object(
                json!({"ttl": 0, "max_ttl": 0, "length": 32})
            ))
        );
    }

    #[test]
    fn a_role_stored_without_a_password_policy_reads_back_without_one() {
        let role: super::Role =
            serde_json::from_value(json!({"ttl": 1, "max_ttl": 2, "length": 9})).expect("reads");
        assert_eq!(role.password_policy, None);
        assert_eq!(role.ttl, std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn bad_values_are_refused_with_a_400_and_nothing_is_stored() {
        let backend = backend().await;
        for (data, message) in [
            (
                json!({"length": 3}),
                "length must be between 8 and 1024, not 3",
            ),
            (
                json!({"ttl": 60, "max_ttl": 30}),
                "ttl cannot be greater than max_ttl",
            ),
        ] {
            let response = call(&backend, Operation::Update, "roles/bad", data).await;
            let response = response.expect("an error response");
            assert!(response.is_error(), "{response:?}");
            assert_eq!(response.data["error"], json!(message));
        }
        // A field that does not convert is refused by the existence check, as on the server:
        // its error alone, without the "Field validation failed: " of the handler's.
        let refused = backend
            .write("roles/bad")
            .data(json!({"ttl": "soon"}))
            .await;
        let error = refused.expect_err("refused by the check");
        assert_eq!(error.kind(), ErrorKind::User, "{error:?}");
        assert!(
            error
                .message()
                .starts_with("error converting input for field \"ttl\""),
            "{error:?}"
        );
        let response = backend
            .write("roles/bad")
            .data(json!({"ttl": "soon"}))
            .without_existence_check()
            .await
            .expect("no error")
            .expect("an error response");
        assert!(response.is_error());
        assert!(
            response.data["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Field validation failed")),
            "{response:?}"
        );
        assert!(backend.stored_keys("roles/").await.is_empty());
        assert_eq!(
            call(&backend, Operation::Read, "roles/bad", json!({})).await,
            None
        );
    }

    #[tokio::test]
    async fn an_update_is_checked_against_the_stored_ttls() {
        let backend = backend().await;
        call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"max_ttl": 60}),
        )
        .await;
        let response = call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"ttl": 120}),
        )
        .await
        .expect("an error response");
        assert_eq!(
            response.data["error"],
            json!("ttl cannot be greater than max_ttl")
        );
    }

    /// Storage whose reads give way to other tasks between reading and answering, as a read
    /// from the server does while its answer travels; memory storage alone answers at once,
    /// so nothing would interleave.
    struct YieldingStorage(vault_plugin_sdk::backend::MemoryStorage);

    impl vault_plugin_sdk::backend::Storage for YieldingStorage {
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
            Box::pin(async move {
                let value = self.0.get(key).await;
                tokio::task::yield_now().await;
                value
            })
        }

        fn put<'a>(
            &'a self,
            key: &'a str,
            value: Vec<u8>,
        ) -> BoxFuture<'a, Result<(), StorageError>> {
            self.0.put(key, value)
        }

        fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
            self.0.delete(key)
        }

        fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
            self.0.list(prefix)
        }
    }

    /// Two updates of one role at once, each naming another field: both read the role before
    /// either writes unless the role's lock keeps the second waiting, so both changes stay.
    #[tokio::test]
    async fn concurrent_updates_of_one_role_keep_both_changes() {
        // The kit's own storage left aside for the yielding one.
        let backend = TestBackend::builder()
            .build_with(|config| crate::backend::PasswordBackend {
                storage: std::sync::Arc::new(YieldingStorage(
                    vault_plugin_sdk::backend::MemoryStorage::new(),
                )),
                system_view: config.system_view,
                locks: KeyedLocks::new(),
            })
            .await
            .expect("mounted");
        call(&backend, Operation::Update, "roles/web", json!({})).await;
        tokio::join!(
            call(&backend, Operation::Update, "roles/web", json!({"ttl": 60})),
            call(
                &backend,
                Operation::Update,
                "roles/web",
                json!({"max_ttl": 7200})
            ),
            call(
                &backend,
                Operation::Update,
                "roles/web",
                json!({"length": 32})
            ),
        );
        let read = call(&backend, Operation::Read, "roles/web", json!({})).await;
        assert_eq!(
            read.map(|r| r.data),
            Some(crate::backend::testing::object(
                json!({"ttl": 60, "max_ttl": 7200, "length": 32})
            ))
        );
    }
}
