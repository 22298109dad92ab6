//! `login` and the renewal of the tokens it makes.

use std::collections::BTreeMap;

use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Alias, Auth, Error, LeaseOptions, Operation, Request, Response};

use crate::backend::StaticAuth;
use crate::password::PasswordHash;
use crate::users::{User, normalize_policies};

/// The one answer to a wrong password and to an unknown user alike, so that it does not tell
/// which names exist.
pub(crate) const INVALID_CREDENTIALS: &str = "invalid username or password";

/// The token's internal data: kept by the server with the token, sent back on renew, never
/// shown to anyone.
#[derive(serde::Serialize, serde::Deserialize)]
struct TokenInternal {
    username: String,
    /// Not the password, nor its hash: a digest that changes whenever the password is set.
    password_fingerprint: String,
    policies: Vec<String>,
}

/// `login` is unauthenticated (see the router's special paths) and answers `update`, which
/// is what `bao write` sends when the path has no existence check.
///
/// After each login that makes a service token, the server sends `resolve-role` to this path
/// with the login's data, to apply rate-limit quotas bound to a role. Users are not roles, so
/// the path has no handler for it and the framework answers "unsupported operation", which
/// the server takes as "no role" (the login is unaffected). Answering the request's
/// `username` instead would let a caller pick which quota applies to them.
pub(crate) fn path() -> PathSpec<StaticAuth> {
    PathSpec::new("login")
        .field(FieldSchema::new("username", FieldType::String, "The user's name.").required())
        .field(FieldSchema::new("password", FieldType::String, "The user's password.").required())
        .operation(Operation::Update, login)
        .help(
            "Logs in with a username and password.",
            "Answers a token with the user's policies and TTLs; the token's metadata and \
             display name carry the username.",
        )
}

async fn login(
    backend: &StaticAuth,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let username = fields.get_string("username");
    let password = fields.get_string("password");
    // Says nothing about which users exist, so it may answer at once.
    if username.is_empty() || password.is_empty() {
        return Ok(Some(Response::error("missing username or password")));
    }
    let user = User::load(backend.storage(), &username).await?;
    // One PBKDF2 whether the user exists or not: the time taken does not tell.
    let verified =
        PasswordHash::verify(user.as_ref().map(|user| user.password.clone()), password).await?;
    let Some(user) = user.filter(|_| verified) else {
        return Ok(Some(Response::error(INVALID_CREDENTIALS)));
    };
    Ok(Some(
        Response::default().with_auth(auth_for(&username, &user)?),
    ))
}

/// The token the server is to make for `username`.
fn auth_for(username: &str, user: &User) -> Result<Auth, Error> {
    let internal = TokenInternal {
        username: username.to_owned(),
        password_fingerprint: user.password.fingerprint(),
        policies: user.policies.clone(),
    };
    Auth::new(user.policies.clone())
        // Without `renewable` the server refuses `token renew` before asking the plugin.
        .with_lease(LeaseOptions::new(user.ttl, user.max_ttl).renewable(true))
        // The server prefixes the mount's path: `users-alice`.
        .with_display_name(username)
        .with_metadata(BTreeMap::from([(
            "username".to_owned(),
            username.to_owned(),
        )]))
        // The identity entity of the user: the same one on every login.
        .with_alias(Alias::new(username))
        .with_internal(&internal)
}

/// Renews a token this method made (`bao token renew`), if its user still exists with the
/// password and the policies it logged in with; otherwise an error response, which the server
/// takes as a refusal (the token then lives out its current TTL).
///
/// The answer is the token's own auth with the user's current `ttl` and `max_ttl`: the server
/// computes the new TTL from them, the increment asked for and the token's issue time, and
/// stores what we answer as the token's auth (so its policies stay the login's; a change of
/// the user's policies refuses the renewal instead, as the server's userpass does, so that a
/// revoked policy does not live on in renewed tokens).
pub(crate) async fn renew(
    backend: &StaticAuth,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let Some(auth) = request.auth.as_ref() else {
        return Err(Error::other("a token renewal without the token's auth"));
    };
    // A token this method did not make (or made by an older version) names no user.
    let Ok(login) = auth.internal::<TokenInternal>() else {
        return Ok(Some(Response::error("the token names no user")));
    };
    let Some(user) = User::load(backend.storage(), &login.username).await? else {
        return Ok(Some(Response::error("the token's user no longer exists")));
    };
    if login.password_fingerprint != user.password.fingerprint() {
        return Ok(Some(Response::error(
            "the user's password has changed since the login",
        )));
    }
    if normalize_policies(login.policies) != user.policies {
        return Ok(Some(Response::error("policies have changed, not renewing")));
    }

    let mut renewed = auth.clone();
    renewed.lease.ttl = user.ttl;
    renewed.lease.max_ttl = user.max_ttl;
    Ok(Some(Response::default().with_auth(renewed)))
}
