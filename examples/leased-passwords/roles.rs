//! `roles/<name>` and `roles/`: what a credential of each role looks like and how long it lives.

use std::time::Duration;

use serde_json::{Map, Value, json};
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{BoxFuture, Error, Operation, Request, Response};

use crate::backend::{FromJson, PasswordBackend, ToJson};

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
                FieldSchema::new("length", FieldType::Int, "The passwords' length.")
                    .with_default(json!(DEFAULT_LENGTH)),
            )
            // Without an existence check every write would need `update` capability and be
            // an update; with it, the server sends `create` for a new role.
            .existence_check(exists)
            .operation(Operation::Create, write)
            .operation(Operation::Update, write)
            .operation(Operation::Read, read)
            .operation(Operation::Delete, delete)
            .help(
                "Manages the roles credentials are issued for.",
                "A role fixes the passwords' length and the TTL and max TTL of their leases.",
            ),
    ]
}

/// A role as stored at `roles/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    pub(crate) ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) length: usize,
}

impl FromJson for Role {
    fn from_json(value: &Value) -> Option<Self> {
        let seconds = |key| {
            value
                .get(key)
                .and_then(Value::as_u64)
                .map(Duration::from_secs)
        };
        Some(Self {
            ttl: seconds("ttl")?,
            max_ttl: seconds("max_ttl")?,
            length: usize::try_from(value.get("length")?.as_u64()?).ok()?,
        })
    }
}

impl ToJson for Role {
    fn to_json(&self) -> Value {
        json!({
            "ttl": self.ttl.as_secs(),
            "max_ttl": self.max_ttl.as_secs(),
            "length": self.length,
        })
    }
}

pub(crate) fn role_key(name: &str) -> String {
    format!("roles/{name}")
}

impl PasswordBackend {
    /// The role called `name`, if there is one.
    pub(crate) async fn role(&self, name: &str) -> Result<Option<Role>, Error> {
        self.get_json(&role_key(name)).await
    }
}

fn exists<'a>(
    backend: &'a PasswordBackend,
    _: &'a Request,
    fields: &'a FieldData<'a>,
) -> BoxFuture<'a, Result<bool, Error>> {
    Box::pin(async move {
        let key = role_key(&fields.get_string("name"));
        Ok(backend.storage.get(&key).await?.is_some())
    })
}

/// Create and update: an update changes only the fields it names, a create starts from the
/// defaults.
fn write<'a>(
    backend: &'a PasswordBackend,
    request: &'a Request,
    fields: &'a FieldData<'a>,
) -> BoxFuture<'a, Result<Option<Response>, Error>> {
    Box::pin(async move {
        let name = fields.get_string("name");
        let existing = match request.operation {
            Operation::Update => backend.role(&name).await?,
            _ => None,
        };
        let mut role = existing.unwrap_or(Role {
            ttl: Duration::ZERO,
            max_ttl: Duration::ZERO,
            length: 0,
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
        // Checked on the role as it will be, so an update of one of the two is checked
        // against the stored other.
        if !role.max_ttl.is_zero() && role.ttl > role.max_ttl {
            return Ok(Some(Response::error("ttl cannot be greater than max_ttl")));
        }
        backend.put_json(&role_key(&name), &role).await?;
        Ok(None)
    })
}

fn read<'a>(
    backend: &'a PasswordBackend,
    _: &'a Request,
    fields: &'a FieldData<'a>,
) -> BoxFuture<'a, Result<Option<Response>, Error>> {
    Box::pin(async move {
        let Some(role) = backend.role(&fields.get_string("name")).await? else {
            return Ok(None);
        };
        let mut data = Map::new();
        data.insert("ttl".to_owned(), json!(role.ttl.as_secs()));
        data.insert("max_ttl".to_owned(), json!(role.max_ttl.as_secs()));
        data.insert("length".to_owned(), json!(role.length));
        Ok(Some(Response::with_data(data)))
    })
}

/// Deleting a role leaves its credentials' leases alone (as Go's database engine does): they
/// live until they expire or are revoked, but can no longer be renewed.
fn delete<'a>(
    backend: &'a PasswordBackend,
    _: &'a Request,
    fields: &'a FieldData<'a>,
) -> BoxFuture<'a, Result<Option<Response>, Error>> {
    Box::pin(async move {
        let key = role_key(&fields.get_string("name"));
        backend.storage.delete(&key).await?;
        Ok(None)
    })
}

fn list<'a>(
    backend: &'a PasswordBackend,
    _: &'a Request,
    _: &'a FieldData<'a>,
) -> BoxFuture<'a, Result<Option<Response>, Error>> {
    Box::pin(async move { Ok(Some(Response::list(backend.storage.list("roles/").await?))) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vault_plugin_sdk::backend::Operation;

    use crate::backend::testing::{backend, call};

    #[tokio::test]
    async fn a_role_is_created_with_defaults_read_in_seconds_updated_in_part_and_deleted() {
        let backend = backend();
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
    async fn bad_values_are_refused_with_a_400_and_nothing_is_stored() {
        let backend = backend();
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
        let response = call(
            &backend,
            Operation::Update,
            "roles/bad",
            json!({"ttl": "soon"}),
        )
        .await
        .expect("an error response");
        assert!(response.is_error());
        assert!(
            response.data["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Field validation failed")),
            "{response:?}"
        );
        assert_eq!(
            call(&backend, Operation::Read, "roles/bad", json!({})).await,
            None
        );
    }

    #[tokio::test]
    async fn an_update_is_checked_against_the_stored_ttls() {
        let backend = backend();
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
}
