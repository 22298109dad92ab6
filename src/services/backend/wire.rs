//! Between the protobuf messages of `pb.Backend` and `pb.SystemView` and the backend's own
//! types. Durations travel as int64 nanoseconds, JSON maps as strings, times as Timestamps.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::backend::{self, Alias, Auth, Connection, LeaseOptions, Operation, Secret, TokenType};
use crate::proto::{logical as logical_pb, pb};

/// The wire's error types (`ProtoError.err_type`).
pub(crate) mod err_type {
    pub(crate) const UNKNOWN: u32 = 0;
    pub(crate) const USER_ERROR: u32 = 1;
    pub(crate) const INTERNAL_ERROR: u32 = 2;
    pub(crate) const CODED_ERROR: u32 = 3;
    pub(crate) const STATUS_BAD_REQUEST: u32 = 4;
    pub(crate) const UNSUPPORTED_OPERATION: u32 = 5;
    pub(crate) const UNSUPPORTED_PATH: u32 = 6;
    pub(crate) const INVALID_REQUEST: u32 = 7;
    pub(crate) const PERMISSION_DENIED: u32 = 8;
    pub(crate) const MULTI_AUTHZ_PENDING: u32 = 9;
    pub(crate) const UNRECOVERABLE: u32 = 10;
}

/// Go's zero `time.Time` as a Timestamp: what a Go plugin sends for "no issue time". The
/// server fails on a missing Timestamp wherever lease options are present.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Nanoseconds on the wire; negative values (which the server never sends) read as zero.
pub(crate) fn duration_from_wire(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// Nanoseconds on the wire, saturating at `i64::MAX` (292 years).
pub(crate) fn duration_to_wire(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn time_from_wire(timestamp: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    match u64::try_from(timestamp.seconds) {
        Ok(seconds) => UNIX_EPOCH.checked_add(Duration::new(seconds, nanos)),
        // Before 1970: Go's zero time, which means "unset".
        Err(_) => None,
    }
}

fn time_to_wire(time: Option<SystemTime>) -> prost_types::Timestamp {
    let since_epoch = time.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    match since_epoch {
        Some(d) => prost_types::Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        },
        None => prost_types::Timestamp {
            seconds: GO_ZERO_TIME_SECONDS,
            nanos: 0,
        },
    }
}

/// A JSON object from the wire: `""` and `null` are empty, anything else but an object is an
/// error naming what it was.
fn object_from_wire(json: &str) -> Result<Map<String, Value>, String> {
    match json.trim() {
        "" | "null" => Ok(Map::new()),
        json => match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Null) => Ok(Map::new()),
            Ok(other) => {
                let kind = match other {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    _ => "a boolean",
                };
                Err(format!("must be a JSON object, not {kind}"))
            }
            Err(e) => Err(format!("is not valid JSON: {e}")),
        },
    }
}

fn lease_from_wire(options: Option<pb::LeaseOptions>) -> LeaseOptions {
    let options = options.unwrap_or_default();
    LeaseOptions {
        ttl: duration_from_wire(options.ttl),
        max_ttl: duration_from_wire(options.max_ttl),
        renewable: options.renewable,
        increment: duration_from_wire(options.increment),
        issue_time: time_from_wire(options.issue_time),
    }
}

fn lease_to_wire(lease: LeaseOptions) -> pb::LeaseOptions {
    pb::LeaseOptions {
        ttl: duration_to_wire(lease.ttl),
        renewable: lease.renewable,
        increment: duration_to_wire(lease.increment),
        issue_time: Some(time_to_wire(lease.issue_time)),
        max_ttl: duration_to_wire(lease.max_ttl),
    }
}

fn secret_from_wire(secret: pb::Secret) -> Result<Secret, String> {
    Ok(Secret {
        lease: lease_from_wire(secret.lease_options),
        internal_data: object_from_wire(&secret.internal_data)
            .map_err(|e| format!("the secret's internal data {e}"))?,
        lease_id: secret.lease_id,
    })
}

fn secret_to_wire(secret: Secret) -> pb::Secret {
    pb::Secret {
        lease_options: Some(lease_to_wire(secret.lease)),
        // Always an object, `{}` at least: the server fails to decode an empty string here.
        internal_data: Value::Object(secret.internal_data).to_string(),
        lease_id: secret.lease_id,
    }
}

fn string_map(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

pub(crate) fn alias_from_wire(alias: logical_pb::Alias) -> Alias {
    Alias {
        name: alias.name,
        mount_type: alias.mount_type,
        mount_accessor: alias.mount_accessor,
        metadata: string_map(alias.metadata),
        id: alias.id,
        namespace_id: alias.namespace_id,
        custom_metadata: string_map(alias.custom_metadata),
        local: alias.local,
    }
}

fn alias_to_wire(alias: Alias) -> logical_pb::Alias {
    logical_pb::Alias {
        mount_type: alias.mount_type,
        mount_accessor: alias.mount_accessor,
        name: alias.name,
        metadata: alias.metadata.into_iter().collect(),
        id: alias.id,
        namespace_id: alias.namespace_id,
        custom_metadata: alias.custom_metadata.into_iter().collect(),
        local: alias.local,
    }
}

fn auth_from_wire(auth: pb::Auth) -> Result<Auth, String> {
    Ok(Auth {
        lease: lease_from_wire(auth.lease_options),
        internal_data: object_from_wire(&auth.internal_data)
            .map_err(|e| format!("the auth's internal data {e}"))?,
        display_name: auth.display_name,
        policies: auth.policies,
        metadata: string_map(auth.metadata),
        client_token: auth.client_token,
        accessor: auth.accessor,
        period: duration_from_wire(auth.period),
        num_uses: auth.num_uses,
        entity_id: auth.entity_id,
        alias: auth.alias.map(alias_from_wire),
        group_aliases: auth
            .group_aliases
            .into_iter()
            .map(alias_from_wire)
            .collect(),
        bound_cidrs: auth.bound_cidrs,
        token_policies: auth.token_policies,
        identity_policies: auth.identity_policies,
        explicit_max_ttl: duration_from_wire(auth.explicit_max_ttl),
        token_type: TokenType::from_wire(auth.token_type),
        no_default_policy: auth.no_default_policy,
    })
}

fn auth_to_wire(auth: Auth) -> pb::Auth {
    pb::Auth {
        lease_options: Some(lease_to_wire(auth.lease)),
        internal_data: Value::Object(auth.internal_data).to_string(),
        display_name: auth.display_name,
        policies: auth.policies,
        metadata: auth.metadata.into_iter().collect(),
        client_token: auth.client_token,
        accessor: auth.accessor,
        period: duration_to_wire(auth.period),
        num_uses: auth.num_uses,
        entity_id: auth.entity_id,
        alias: auth.alias.map(alias_to_wire),
        group_aliases: auth.group_aliases.into_iter().map(alias_to_wire).collect(),
        bound_cidrs: auth.bound_cidrs,
        token_policies: auth.token_policies,
        identity_policies: auth.identity_policies,
        explicit_max_ttl: duration_to_wire(auth.explicit_max_ttl),
        token_type: auth.token_type.to_wire(),
        no_default_policy: auth.no_default_policy,
    }
}

fn headers_from_wire(headers: HashMap<String, pb::Header>) -> BTreeMap<String, Vec<String>> {
    headers
        .into_iter()
        .map(|(name, values)| (name, values.header))
        .collect()
}

fn headers_to_wire(headers: BTreeMap<String, Vec<String>>) -> HashMap<String, pb::Header> {
    headers
        .into_iter()
        .map(|(name, header)| (name, pb::Header { header }))
        .collect()
}

/// Decodes the wire request. Its `data` and the internal data of its secret or auth must be
/// JSON objects (or null).
pub fn request_from_wire(request: Option<pb::Request>) -> Result<backend::Request, String> {
    let request = request.ok_or("the call carries no request")?;
    let data = object_from_wire(&request.data).map_err(|e| format!("request data {e}"))?;
    Ok(backend::Request {
        id: request.id,
        operation: Operation::from_wire(&request.operation),
        path: request.path,
        data,
        secret: request.secret.map(secret_from_wire).transpose()?,
        auth: request.auth.map(auth_from_wire).transpose()?,
        headers: headers_from_wire(request.headers),
        client_token: request.client_token,
        client_token_accessor: request.client_token_accessor,
        display_name: request.display_name,
        entity_id: request.entity_id,
        mount_point: request.mount_point,
        mount_type: request.mount_type,
        mount_accessor: request.mount_accessor,
        wrap_ttl: request
            .wrap_info
            .filter(|wrap| wrap.ttl > 0)
            .map(|wrap| duration_from_wire(wrap.ttl)),
        policy_override: request.policy_override,
        unauthenticated: request.unauthenticated,
        connection: request.connection.map(|connection| Connection {
            remote_addr: connection.remote_addr,
            remote_port: u16::try_from(connection.remote_port).unwrap_or(0),
        }),
    })
}

/// Encodes a backend response.
pub fn response_to_wire(response: backend::Response) -> pb::Response {
    pb::Response {
        secret: response.secret.map(secret_to_wire),
        auth: response.auth.map(auth_to_wire),
        // Go encodes a response without data as `null` (a nil map), which the server
        // shows as `"data": null`; an empty object would show as `{}`.
        data: if response.data.is_empty() {
            "null".to_owned()
        } else {
            Value::Object(response.data).to_string()
        },
        redirect: response.redirect,
        warnings: response.warnings,
        wrap_info: response.wrap_ttl.map(|ttl| pb::ResponseWrapInfo {
            ttl: duration_to_wire(ttl),
            creation_time: Some(time_to_wire(None)),
            ..Default::default()
        }),
        headers: headers_to_wire(response.headers),
        mount_type: String::new(),
    }
}

/// Encodes a backend error as the wire's `ProtoError`.
pub fn error_to_wire(error: &backend::Error) -> pb::ProtoError {
    use backend::ErrorKind as K;
    let (kind, code) = match error.kind() {
        K::Other => (err_type::UNKNOWN, 0),
        K::User => (err_type::USER_ERROR, 0),
        K::Internal => (err_type::INTERNAL_ERROR, 0),
        K::Coded { status } => (err_type::CODED_ERROR, i64::from(status)),
        K::BadRequest => (err_type::STATUS_BAD_REQUEST, 0),
        K::UnsupportedOperation => (err_type::UNSUPPORTED_OPERATION, 0),
        K::UnsupportedPath => (err_type::UNSUPPORTED_PATH, 0),
        K::InvalidRequest => (err_type::INVALID_REQUEST, 0),
        K::PermissionDenied => (err_type::PERMISSION_DENIED, 0),
        K::MultiAuthzPending => (err_type::MULTI_AUTHZ_PENDING, 0),
        K::Unrecoverable => (err_type::UNRECOVERABLE, 0),
    };
    pb::ProtoError {
        err_type: kind,
        // The message alone: the error's cause stays in the plugin.
        err_msg: error.message().to_owned(),
        err_code: code,
    }
}

/// A request that could not be decoded is the caller's fault: HTTP 400 with the reason.
pub(crate) fn bad_request(message: String) -> pb::ProtoError {
    pb::ProtoError {
        err_type: err_type::STATUS_BAD_REQUEST,
        err_msg: message,
        err_code: 0,
    }
}

#[cfg(test)]
mod tests;
