//! `creds/<name>`: a new username and password under a lease, and the lease's renew and revoke.

use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use vault_plugin_sdk::backend::framework::{
    FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend as _, TtlRequest, calculate_ttl,
    mount_ttl_limits,
};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response, Secret};

use crate::backend::PasswordBackend;
use crate::issued::{Issued, issued_key};
use crate::roles::Role;

/// The secret type of the leases, kept by the server in each lease's internal data: renew and
/// revoke requests reach [`renew`] and [`revoke`] by it.
pub(crate) const SECRET_KIND: &str = "password";

/// Passwords and usernames are drawn from these, so they need no quoting in a shell or a URL.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The random part of a username: 62^16 names make a collision in one role negligible.
const USERNAME_SUFFIX: usize = 16;

pub(crate) fn paths() -> Vec<PathSpec<PasswordBackend>> {
    vec![
        PathSpec::new("creds/{name}")
            .field(FieldSchema::new("name", FieldType::String, "The role's name.").required())
            .issues(SECRET_KIND)
            .operation(Operation::Read, read)
            .help(
                "Issues a username and password under a lease.",
                "The lease lives for the role's ttl and at most its max_ttl; renew and revoke \
                 it with `lease renew` and `lease revoke`.",
            ),
    ]
}

/// `length` characters drawn uniformly from [`ALPHABET`] by the operating system's CSPRNG.
pub(crate) fn random_string(length: usize) -> Result<String, Error> {
    // Bytes at or above the largest multiple of the alphabet's size are rejected, so every
    // character is equally likely (a plain `% 62` would favour the first eight).
    let limit = u8::try_from(256 - 256 % ALPHABET.len()).unwrap_or(u8::MAX);
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while out.len() < length {
        rng.fill(&mut buffer)
            .map_err(|e| Error::other("the system's random generator failed").with_source(e))?;
        for &byte in buffer.iter().filter(|&&b| b < limit) {
            if out.len() == length {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Issues a credential. The lease asks for the role's TTLs and leaves the rest to the server,
/// which fills a zero TTL with the mount's default and caps both by the mount's max
/// (`CalculateTTL`); the same arithmetic here only gives the expiry to record.
async fn read(
    backend: &PasswordBackend,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let name = fields.get_string("name");
    let Some(role) = backend.role(&name).await? else {
        return Ok(Some(Response::error(format!("unknown role: {name}"))));
    };
    let now = SystemTime::now();
    let ttl = granted_ttl(backend, &role, Duration::ZERO, None, now).await?;
    let username = format!("{name}-{}", random_string(USERNAME_SUFFIX)?);
    // With a password policy the server makes the password and the role's length does not
    // apply. Its answer for a missing or unusable policy names neither the policy nor the
    // cause ("failed to generate password"), so the error says which policy it was; it is
    // the role's configuration that is wrong, not the plugin: a 400, as for an unknown role.
    let password = match &role.password_policy {
        None => random_string(role.length)?,
        Some(policy) => match backend
            .system_view
            .generate_password_from_policy(policy)
            .await
        {
            Ok(password) => password,
            Err(e) => {
                return Ok(Some(Response::error(format!(
                    "cannot generate a password from the password policy {policy:?}: {e}"
                ))));
            }
        },
    };

    let record = Issued {
        role: name.clone(),
        issue_time: now,
        ttl,
        expires_at: now + ttl,
    };
    // Written before the answer: if the server then fails to register the lease, it
    // revokes the secret at once and the revoke removes this entry.
    backend
        .storage
        .put_json(&issued_key(&username), &record)
        .await?;
    tracing::info!(role = %name, username = %username, path = %request.path, "issued a credential");

    // Renew replaces the lease's data with the renew answer's (none), so what revoke needs
    // lives in the internal data, which the server keeps as it is.
    let internal = LeaseIdentity {
        username: username.clone(),
        role: name,
    };
    let mut response = backend
        .router()
        .secret_type(SECRET_KIND)?
        .response(&Credential { username, password }, &internal)?;
    if let Some(secret) = response.secret.as_mut() {
        secret.lease.ttl = role.ttl;
        secret.lease.max_ttl = role.max_ttl;
    }
    Ok(Some(response))
}

/// The TTL the server gives a lease of `role` at `now`: what it computes itself from the
/// lease's answer, the client's `increment` and the mount's limits.
async fn granted_ttl(
    backend: &PasswordBackend,
    role: &Role,
    increment: Duration,
    issue_time: Option<SystemTime>,
    now: SystemTime,
) -> Result<Duration, Error> {
    let limits = mount_ttl_limits(backend.system_view.as_ref()).await?;
    let request = TtlRequest {
        increment,
        backend_ttl: role.ttl,
        backend_max_ttl: role.max_ttl,
        ..TtlRequest::default()
    };
    let (ttl, _warnings) = calculate_ttl(&limits, &request, issue_time, now)?;
    Ok(ttl)
}

/// A credential as `creds/<role>` answers it.
#[derive(serde::Serialize)]
struct Credential {
    username: String,
    password: String,
}

/// What a lease's internal data keeps: the credential's username and its role.
#[derive(serde::Serialize, serde::Deserialize)]
struct LeaseIdentity {
    username: String,
    role: String,
}

/// The lease's username and role, as [`read`] put them in its internal data.
fn lease_identity(request: &Request) -> Result<(String, String), Error> {
    let secret = request
        .secret
        .as_ref()
        .ok_or_else(|| Error::other("the request carries no lease"))?;
    let LeaseIdentity { username, role } = secret.internal()?;
    Ok((username, role))
}

/// Renews within the caps, as Go's engines do: the answer is the request's own secret with
/// the role's TTLs, and the server computes the new TTL from them and the increment. The
/// recorded expiry follows, so the periodic tidy keeps the entry.
pub(crate) async fn renew(
    backend: &PasswordBackend,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let (username, role_name) = lease_identity(request)?;
    let Some(role) = backend.role(&role_name).await? else {
        return Err(Error::bad_request(format!(
            "role {role_name:?} no longer exists: the lease of {username} cannot be renewed"
        )));
    };
    let mut secret: Secret = request.secret.clone().unwrap_or_default();
    let now = SystemTime::now();
    let issue_time = secret.lease.issue_time.unwrap_or(now);
    let ttl = granted_ttl(
        backend,
        &role,
        secret.lease.increment,
        Some(issue_time),
        now,
    )
    .await
    .map_err(|e| Error::bad_request(e.message().to_owned()).with_source(e))?;
    let record = Issued {
        role: role_name,
        issue_time,
        ttl,
        expires_at: now + ttl,
    };
    let key = issued_key(&username);
    // Not between the tidy's read of the entry and its delete (see `issued::tidy`).
    let _guard = backend.locks.lock(&key).await;
    backend.storage.put_json(&key, &record).await?;

    secret.lease.ttl = role.ttl;
    secret.lease.max_ttl = role.max_ttl;
    secret.lease.renewable = true;
    Ok(Some(Response::default().with_secret(secret)))
}

/// Forgets the credential. Revoking one that is already gone (the periodic tidy was first, or
/// the revoke is retried) succeeds: a failure would only make the server retry, then give up.
pub(crate) async fn revoke(
    backend: &PasswordBackend,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let (username, role) = lease_identity(request)?;
    let key = issued_key(&username);
    let _guard = backend.locks.lock(&key).await;
    backend.storage.delete(&key).await?;
    tracing::info!(role = %role, username = %username, "revoked a credential");
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use vault_plugin_sdk::backend::{Operation, Response};
    use vault_plugin_sdk::testing::{PasswordPolicy, StaticSystemView};

    use super::{ALPHABET, random_string};
    use crate::backend::testing::{Mount, backend, backend_with, call};
    use crate::issued::Issued;

    const HOUR: Duration = Duration::from_secs(3600);

    /// What the plugin recorded of `username`'s credential.
    async fn recorded(backend: &Mount, username: &str) -> Option<Issued> {
        let entry = backend.stored_json(&format!("issued/{username}")).await?;
        Some(serde_json::from_value(entry).expect("an issued entry"))
    }

    async fn issue(backend: &Mount) -> (Response, String) {
        let issued = call(backend, Operation::Read, "creds/web", json!({}))
            .await
            .expect("a credential");
        let username = issued.data["username"]
            .as_str()
            .expect("a username")
            .to_owned();
        (issued, username)
    }

    #[test]
    fn random_strings_have_the_length_and_the_alphabet() {
        let text = random_string(1000).expect("random bytes");
        assert_eq!(text.len(), 1000);
        assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(text, random_string(1000).expect("random bytes"));
        assert_eq!(random_string(0).expect("random bytes"), "");
    }

    #[tokio::test]
    async fn a_credential_has_a_renewable_lease_with_the_roles_ttls_and_is_recorded() {
        let backend = backend().await;
        call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"ttl": 600, "max_ttl": 1200, "length": 12}),
        )
        .await;
        let (issued, username) = issue(&backend).await;
        assert!(username.starts_with("web-"), "{username}");
        assert_eq!(issued.data["password"].as_str().map(str::len), Some(12));

        let secret = issued.secret.expect("a lease");
        assert!(secret.lease.renewable);
        assert_eq!(secret.lease.ttl, Duration::from_secs(600));
        assert_eq!(secret.lease.max_ttl, Duration::from_secs(1200));
        assert_eq!(secret.internal_data["secret_type"], json!("password"));
        assert_eq!(secret.internal_data["username"], json!(username));
        assert_eq!(secret.internal_data["role"], json!("web"));

        let listed = call(&backend, Operation::List, "issued/", json!({})).await;
        assert_eq!(
            listed.map(|r| r.data["keys"].clone()),
            Some(json!([username]))
        );
        let record = recorded(&backend, &username).await.expect("a record");
        assert_eq!(record.role, "web");
        assert_eq!(record.ttl, Duration::from_secs(600));
    }

    #[tokio::test]
    async fn without_a_role_ttl_the_recorded_expiry_is_the_mounts_default() {
        let backend = backend().await;
        call(&backend, Operation::Update, "roles/web", json!({})).await;
        let (issued, username) = issue(&backend).await;
        // The lease asks for nothing: the server applies the mount's default, which the plugin
        // recorded.
        let secret = issued.secret.expect("a lease");
        assert_eq!(secret.lease.ttl, Duration::ZERO);
        assert_eq!(backend.lease_ttl(&secret), Some(HOUR));
        let record = recorded(&backend, &username).await.expect("a record");
        assert_eq!(record.ttl, HOUR);
    }

    #[tokio::test]
    async fn an_unknown_role_is_a_400() {
        let backend = backend().await;
        let response = call(&backend, Operation::Read, "creds/nobody", json!({}))
            .await
            .expect("an error response");
        assert!(response.is_error());
        assert_eq!(response.data["error"], json!("unknown role: nobody"));
    }

    /// The server makes a policy's passwords: here the kit's system view, which has the
    /// policy `digits`.
    #[tokio::test]
    async fn a_password_policy_makes_the_password() {
        let view = StaticSystemView::default()
            .with_password_policy("digits", PasswordPolicy::fixed(["123456789012"]));
        let backend = backend_with(view).await;
        call(
            &backend,
            Operation::Update,
            "roles/pin",
            json!({"password_policy": "digits", "length": 40}),
        )
        .await;
        let issued = call(&backend, Operation::Read, "creds/pin", json!({}))
            .await
            .expect("a credential");
        assert_eq!(issued.data["password"], json!("123456789012"));
        assert!(issued.secret.is_some());
    }

    /// A policy the server does not have: a 400 that names the policy, and nothing recorded.
    #[tokio::test]
    async fn a_password_policy_the_server_cannot_use_is_a_400_naming_it() {
        let backend = backend().await;
        call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"password_policy": "digits"}),
        )
        .await;
        let response = call(&backend, Operation::Read, "creds/web", json!({}))
            .await
            .expect("an error response");
        assert!(response.is_error(), "{response:?}");
        assert!(response.secret.is_none(), "{response:?}");
        assert_eq!(
            response.data["error"],
            json!(
                "cannot generate a password from the password policy \"digits\": \
                 failed to generate password"
            )
        );
        assert!(backend.stored_keys("issued/").await.is_empty());

        // Without the policy the plugin makes the password again.
        call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"password_policy": ""}),
        )
        .await;
        let (issued, _) = issue(&backend).await;
        assert_eq!(issued.data["password"].as_str().map(str::len), Some(20));
    }

    #[tokio::test]
    async fn renew_returns_the_secret_with_the_roles_ttls_and_moves_the_recorded_expiry() {
        let backend = backend().await;
        call(
            &backend,
            Operation::Update,
            "roles/web",
            json!({"ttl": 60, "max_ttl": 7200}),
        )
        .await;
        let (issued, username) = issue(&backend).await;

        let lease = issued.secret.clone().expect("a lease");
        let renewed = backend
            .renew(&lease)
            .increment(HOUR)
            .await
            .expect("renewed");
        let secret = renewed.and_then(|r| r.secret).expect("the secret back");
        assert_eq!(secret.lease.ttl, Duration::from_secs(60));
        assert_eq!(secret.lease.max_ttl, Duration::from_secs(7200));
        assert_eq!(secret.internal_data, lease.internal_data);

        let record = recorded(&backend, &username).await.expect("a record");
        assert_eq!(record.ttl, HOUR, "the increment, within max_ttl");
        assert_eq!(
            backend.lease_ttl(&lease),
            Some(HOUR),
            "as the server computes it"
        );

        // An increment above max_ttl is capped at what is left of it.
        backend
            .renew(&lease)
            .increment(10 * HOUR)
            .await
            .expect("renewed");
        let record = recorded(&backend, &username).await.expect("a record");
        assert!(record.ttl <= 2 * HOUR && record.ttl >= 2 * HOUR - Duration::from_secs(2));
    }

    #[tokio::test]
    async fn renew_after_the_role_is_deleted_fails_and_revoke_still_forgets() {
        let backend = backend().await;
        call(&backend, Operation::Update, "roles/web", json!({})).await;
        let (issued, username) = issue(&backend).await;
        let lease = issued.secret.expect("a lease");
        call(&backend, Operation::Delete, "roles/web", json!({})).await;

        let renewed = backend.renew(&lease).await;
        let error = renewed.expect_err("renew must fail").to_string();
        assert!(error.contains("no longer exists"), "{error}");

        let revoked = backend.revoke(&lease).await;
        assert_eq!(revoked, Ok(None));
        assert_eq!(backend.lease_ttl(&lease), None);
        let record = recorded(&backend, &username).await;
        assert_eq!(record, None);
        // A second revoke (a retry of the server's, sent by hand) succeeds too.
        let again = backend
            .request(Operation::Revoke, "creds/web")
            .secret(lease)
            .await;
        assert_eq!(again, Ok(None));
    }
}
