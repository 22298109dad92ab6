//! `dbplugin.v5` messages ⇄ the database API's types, with the Go SDK server's checks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::value::Kind as ValueKind;
use prost_types::{ListValue, Struct, Timestamp, Value as PbValue};
use serde_json::{Map, Number, Value};
use tonic::Status;

use crate::database::{
    ChangeExpiration, ChangePassword, ChangePublicKey, CredentialType, NewUserRequest,
    UpdateUserRequest,
};
use crate::proto::dbplugin::v5 as pb;

/// A protobuf `Struct` as JSON. The server sends every number as a double; whole ones come
/// back as integers, as the Go SDK converts them (`"max_open_connections": 4`, not `4.0`).
pub(super) fn struct_to_map(value: Struct) -> Map<String, Value> {
    value
        .fields
        .into_iter()
        .map(|(key, value)| (key, value_to_json(value)))
        .collect()
}

fn value_to_json(value: PbValue) -> Value {
    match value.kind {
        None | Some(ValueKind::NullValue(_)) => Value::Null,
        Some(ValueKind::BoolValue(b)) => Value::Bool(b),
        Some(ValueKind::NumberValue(n)) => number(n),
        Some(ValueKind::StringValue(s)) => Value::String(s),
        Some(ValueKind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(ValueKind::StructValue(object)) => Value::Object(struct_to_map(object)),
    }
}

/// A double as JSON: an integer when it is a whole number in `i64`'s range.
fn number(n: f64) -> Value {
    // 2^63 as a double; `as` saturates, so check the range first.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n) {
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// JSON as a protobuf `Struct`.
pub(super) fn map_to_struct(map: Map<String, Value>) -> Struct {
    Struct {
        fields: map
            .into_iter()
            .map(|(key, value)| (key, json_to_value(value)))
            .collect(),
    }
}

fn json_to_value(value: Value) -> PbValue {
    let kind = match value {
        Value::Null => ValueKind::NullValue(0),
        Value::Bool(b) => ValueKind::BoolValue(b),
        Value::Number(n) => ValueKind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => ValueKind::StringValue(s),
        Value::Array(items) => ValueKind::ListValue(ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        Value::Object(object) => ValueKind::StructValue(map_to_struct(object)),
    };
    PbValue { kind: Some(kind) }
}

/// A protobuf `Timestamp` as a time, or the reason it is not one.
fn time(timestamp: &Timestamp) -> Result<SystemTime, String> {
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|&n| n < 1_000_000_000)
        .ok_or_else(|| format!("timestamp: {timestamp:?}: nanos out of range"))?;
    let seconds = Duration::from_secs(timestamp.seconds.unsigned_abs());
    let at = if timestamp.seconds >= 0 {
        UNIX_EPOCH.checked_add(seconds)
    } else {
        UNIX_EPOCH.checked_sub(seconds)
    };
    at.and_then(|at| at.checked_add(Duration::from_nanos(u64::from(nanos))))
        .ok_or_else(|| format!("timestamp: {timestamp:?}: out of range"))
}

fn commands(statements: Option<pb::Statements>) -> Vec<String> {
    statements.map(|s| s.commands).unwrap_or_default()
}

/// `NewUser`, refused as the Go SDK refuses it: no username config, or an expiration that is
/// not a time.
pub(super) fn new_user(request: pb::NewUserRequest) -> Result<NewUserRequest, Status> {
    let names = request
        .username_config
        .ok_or_else(|| Status::invalid_argument("missing username config"))?;
    let expiration = request
        .expiration
        .as_ref()
        .map(time)
        .transpose()
        .map_err(|e| Status::invalid_argument(format!("unable to parse expiration date: {e}")))?;
    Ok(NewUserRequest {
        display_name: names.display_name,
        role_name: names.role_name,
        password: request.password,
        expiration,
        statements: commands(request.statements),
        rollback_statements: commands(request.rollback_statements),
        credential_type: CredentialType::from_wire(request.credential_type),
        public_key: request.public_key,
        subject: request.subject,
    })
}

/// `UpdateUser`, refused as the Go SDK refuses it: no username, an expiration that is not a
/// time, or nothing to change (an empty password, an empty key and no expiration).
pub(super) fn update_user(request: pb::UpdateUserRequest) -> Result<UpdateUserRequest, Status> {
    if request.username.is_empty() {
        return Err(Status::invalid_argument("no username provided"));
    }
    let password = request
        .password
        .filter(|change| !change.new_password.is_empty())
        .map(|change| ChangePassword {
            new_password: change.new_password,
            statements: commands(change.statements),
        });
    let public_key = request
        .public_key
        .filter(|change| !change.new_public_key.is_empty())
        .map(|change| ChangePublicKey {
            new_public_key: change.new_public_key,
            statements: commands(change.statements),
        });
    let expiration = match request.expiration {
        Some(change) if change.new_expiration.is_some() => {
            let at = change
                .new_expiration
                .as_ref()
                .map(time)
                .transpose()
                .map_err(|e| {
                    Status::invalid_argument(format!("unable to parse new expiration: {e}"))
                })?;
            at.map(|new_expiration| ChangeExpiration {
                new_expiration,
                statements: commands(change.statements),
            })
        }
        _ => None,
    };
    if password.is_none() && public_key.is_none() && expiration.is_none() {
        return Err(Status::invalid_argument(
            "update user request has no changes",
        ));
    }
    Ok(UpdateUserRequest {
        username: request.username,
        password,
        expiration,
        public_key,
        credential_type: CredentialType::from_wire(request.credential_type),
    })
}
