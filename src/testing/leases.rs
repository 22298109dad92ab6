//! The leases and tokens a [`TestBackend`] handed out, and their renewal and revocation as the
//! server's expiration manager sends them.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Map, Value};

use super::TestBackend;
use crate::backend::framework::{TtlLimits, TtlRequest, calculate_ttl};
use crate::backend::{Auth, Backend, Error, Operation, Request, Response, Secret};

/// What the kit keeps, as the server's expiration manager does.
#[derive(Default)]
pub(super) struct Leases {
    requests: u64,
    /// By lease id.
    secrets: HashMap<String, LeaseEntry>,
    /// By client token.
    tokens: HashMap<String, TokenEntry>,
}

impl Leases {
    /// A request id, unique within the test backend.
    pub(super) fn next_request_id(&mut self) -> String {
        self.requests += 1;
        format!("test-request-{}", self.requests)
    }
}

/// One lease: the path that issued it, its data, and the secret with the TTL the server granted.
struct LeaseEntry {
    path: String,
    data: Map<String, Value>,
    secret: Secret,
    issue_time: SystemTime,
    expire_time: SystemTime,
}

/// One token: the login path, and the auth with the TTL the server granted.
struct TokenEntry {
    path: String,
    auth: Auth,
    issue_time: SystemTime,
    expire_time: SystemTime,
}

impl<B: Backend> TestBackend<B> {
    /// Renews the lease of `secret` (from an earlier response, whose `lease_id` the kit
    /// filled in): `.await` it, or set the TTL the client asks for with
    /// [`Renewal::increment`] first.
    ///
    /// The backend gets what the server sends: a `renew` request on the path that issued the
    /// lease, with the lease's data (the last answer's) and the lease as the server keeps it —
    /// its internal data, `ttl` as the server granted it, the backend's `max_ttl`,
    /// `issue_time` of the first issue, `increment`, and no `lease_id`. The server's own
    /// refusals come back as [`ErrorKind::BadRequest`](crate::backend::ErrorKind::BadRequest):
    /// "lease not found" (unknown or revoked), "lease is not renewable", "lease expired".
    /// After a successful renewal the kit keeps the new data and the new TTL (computed as the
    /// server does, capped by the max TTLs).
    pub fn renew(&self, secret: &Secret) -> Renewal<'_, B> {
        Renewal {
            backend: self,
            target: Target::Lease(secret.lease_id.clone()),
            increment: Duration::ZERO,
        }
    }

    /// Renews the token of `auth` (from an earlier login's response, whose `client_token` the
    /// kit filled in): a `renew` request on the login path with the auth as the server keeps
    /// it (`issue_time`, `increment`, the granted `ttl`, no `client_token`) and no data.
    /// Refusals as for [`renew`](TestBackend::renew), the unknown token's being
    /// "invalid lease ID".
    pub fn renew_token(&self, auth: &Auth) -> Renewal<'_, B> {
        Renewal {
            backend: self,
            target: Target::Token(auth.client_token.clone()),
            increment: Duration::ZERO,
        }
    }

    /// Revokes the lease of `secret`: a `revoke` request on the path that issued it, with the
    /// lease's data and the lease as the server keeps it (with its `lease_id` and
    /// `issue_time`). The kit forgets the lease unless the backend fails (an error, or an
    /// error response: the server would retry). A lease the kit does not know is revoked
    /// without asking the backend, as the server does: `Ok(None)`.
    pub async fn revoke(&self, secret: &Secret) -> Result<Option<Response>, Error> {
        let request = {
            let mut leases = self.leases.lock();
            let Some(entry) = leases.secrets.get(&secret.lease_id) else {
                return Ok(None);
            };
            let mut kept = entry.secret.clone();
            kept.lease.issue_time = Some(entry.issue_time);
            let (path, data) = (entry.path.clone(), entry.data.clone());
            let id = leases.next_request_id();
            let mut request = self.lease_request(id, Operation::Revoke, &path);
            request.data = data;
            request.secret = Some(kept);
            request
        };
        let response = self.backend.handle_request(request).await?;
        if !response.as_ref().is_some_and(Response::is_error) {
            self.leases.lock().secrets.remove(&secret.lease_id);
        }
        Ok(response)
    }

    /// The TTL the server granted the lease of `secret` at its issue or last renewal (the
    /// backend's TTL, else the mount's default, capped by the max TTLs); `None` for a lease
    /// the kit does not hold.
    pub fn lease_ttl(&self, secret: &Secret) -> Option<Duration> {
        let leases = self.leases.lock();
        leases
            .secrets
            .get(&secret.lease_id)
            .map(|entry| entry.secret.lease.ttl)
    }

    /// The TTL the server granted the token of `auth` at its login or last renewal; `None`
    /// for a token the kit does not hold.
    pub fn token_ttl(&self, auth: &Auth) -> Option<Duration> {
        let leases = self.leases.lock();
        leases
            .tokens
            .get(&auth.client_token)
            .map(|entry| entry.auth.lease.ttl)
    }

    /// Keeps the lease or token of a response to `path`, filling in what the server does.
    pub(super) fn keep(&self, path: &str, response: &mut Response) -> Result<(), Error> {
        if response.is_error() {
            return Ok(());
        }
        let now = SystemTime::now();
        let data = response.data.clone();
        if let Some(secret) = response.secret.as_mut() {
            let ttl = self.granted(
                &TtlRequest {
                    backend_ttl: secret.lease.ttl,
                    backend_max_ttl: secret.lease.max_ttl,
                    ..TtlRequest::default()
                },
                None,
                now,
            )?;
            secret.lease_id = format!("{}{path}/{}", self.mount_point, random_id()?);
            let mut kept = secret.clone();
            kept.lease.ttl = ttl;
            let entry = LeaseEntry {
                path: path.to_owned(),
                data,
                secret: kept,
                issue_time: now,
                expire_time: now + ttl,
            };
            self.leases
                .lock()
                .secrets
                .insert(secret.lease_id.clone(), entry);
        }
        if let Some(auth) = response.auth.as_mut() {
            let ttl = self.granted(&token_ttl_request(auth, Duration::ZERO), None, now)?;
            auth.client_token = format!("s.{}", random_id()?);
            auth.accessor = random_id()?;
            let mut kept = auth.clone();
            kept.lease.ttl = ttl;
            let entry = TokenEntry {
                path: path.to_owned(),
                auth: kept,
                issue_time: now,
                expire_time: now + ttl,
            };
            self.leases
                .lock()
                .tokens
                .insert(auth.client_token.clone(), entry);
        }
        Ok(())
    }

    /// `CalculateTTL` on the mount's limits.
    fn granted(
        &self,
        request: &TtlRequest,
        start: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<Duration, Error> {
        let limits = TtlLimits {
            default_lease_ttl: self.system_view.default_lease_ttl,
            max_lease_ttl: self.system_view.max_lease_ttl,
        };
        let (ttl, _warnings) = calculate_ttl(&limits, request, start, now)?;
        Ok(ttl)
    }

    /// A request of the expiration manager's, with the request id `id`.
    fn lease_request(&self, id: String, operation: Operation, path: &str) -> Request {
        let mut request = Request::new(operation, path);
        request.id = id;
        request.mount_point = self.mount_point.clone();
        request
    }

    async fn renew_lease(
        &self,
        lease_id: &str,
        increment: Duration,
    ) -> Result<Option<Response>, Error> {
        let now = SystemTime::now();
        let (request, issue_time) = {
            let mut leases = self.leases.lock();
            let id = leases.next_request_id();
            let entry = leases
                .secrets
                .get(lease_id)
                .ok_or_else(|| refused("lease not found"))?;
            check_renewable(entry.secret.lease.renewable, entry.expire_time, now)?;
            let mut kept = entry.secret.clone();
            kept.lease.issue_time = Some(entry.issue_time);
            kept.lease.increment = increment;
            kept.lease_id = String::new();
            let mut request = self.lease_request(id, Operation::Renew, &entry.path);
            request.data = entry.data.clone();
            request.secret = Some(kept);
            (request, entry.issue_time)
        };
        let mut response = self.backend.handle_request(request).await?;
        let Some(answer) = response.as_mut().filter(|answer| !answer.is_error()) else {
            return Ok(response);
        };
        let data = answer.data.clone();
        let Some(secret) = answer.secret.as_mut() else {
            return Ok(response);
        };
        let ttl = self
            .granted(
                &TtlRequest {
                    increment,
                    backend_ttl: secret.lease.ttl,
                    backend_max_ttl: secret.lease.max_ttl,
                    ..TtlRequest::default()
                },
                Some(issue_time),
                now,
            )
            .map_err(|error| refused(&error.to_string()))?;
        secret.lease_id = lease_id.to_owned();
        let mut kept = secret.clone();
        kept.lease.ttl = ttl;
        if let Some(entry) = self.leases.lock().secrets.get_mut(lease_id) {
            entry.data = data;
            entry.secret = kept;
            entry.expire_time = now + ttl;
        }
        Ok(response)
    }

    async fn renew_auth(
        &self,
        client_token: &str,
        increment: Duration,
    ) -> Result<Option<Response>, Error> {
        let now = SystemTime::now();
        let (request, issue_time, accessor) = {
            let mut leases = self.leases.lock();
            let id = leases.next_request_id();
            let entry = leases
                .tokens
                .get(client_token)
                .ok_or_else(|| refused("invalid lease ID"))?;
            check_renewable(entry.auth.lease.renewable, entry.expire_time, now)?;
            let mut kept = entry.auth.clone();
            kept.lease.issue_time = Some(entry.issue_time);
            kept.lease.increment = increment;
            kept.client_token = String::new();
            let mut request = self.lease_request(id, Operation::Renew, &entry.path);
            request.auth = Some(kept);
            (request, entry.issue_time, entry.auth.accessor.clone())
        };
        let mut response = self.backend.handle_request(request).await?;
        let Some(auth) = response
            .as_mut()
            .filter(|answer| !answer.is_error())
            .and_then(|answer| answer.auth.as_mut())
        else {
            return Ok(response);
        };
        let ttl = self
            .granted(&token_ttl_request(auth, increment), Some(issue_time), now)
            .map_err(|error| refused(&error.to_string()))?;
        auth.client_token = client_token.to_owned();
        auth.accessor = accessor;
        let mut kept = auth.clone();
        kept.lease.ttl = ttl;
        if let Some(entry) = self.leases.lock().tokens.get_mut(client_token) {
            entry.auth = kept;
            entry.expire_time = now + ttl;
        }
        Ok(response)
    }
}

/// A renewal on its way: `.await` it (or call [`send`](Renewal::send)) for the backend's
/// answer. See [`TestBackend::renew`] and [`TestBackend::renew_token`].
#[must_use = "a renewal does nothing until it is awaited"]
pub struct Renewal<'a, B> {
    backend: &'a TestBackend<B>,
    target: Target,
    increment: Duration,
}

enum Target {
    Lease(String),
    Token(String),
}

impl<'a, B: Backend> Renewal<'a, B> {
    /// The TTL the client asks for (`bao lease renew -increment=…`); none by default.
    pub fn increment(mut self, increment: Duration) -> Self {
        self.increment = increment;
        self
    }

    /// Sends the renewal; the same as `.await`ing it.
    pub async fn send(self) -> Result<Option<Response>, Error> {
        match &self.target {
            Target::Lease(lease_id) => self.backend.renew_lease(lease_id, self.increment).await,
            Target::Token(token) => self.backend.renew_auth(token, self.increment).await,
        }
    }
}

impl<'a, B: Backend> IntoFuture for Renewal<'a, B> {
    type Output = Result<Option<Response>, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// What `CalculateTTL` is asked for a token.
fn token_ttl_request(auth: &Auth, increment: Duration) -> TtlRequest {
    TtlRequest {
        increment,
        backend_ttl: auth.lease.ttl,
        period: auth.period,
        backend_max_ttl: auth.lease.max_ttl,
        explicit_max_ttl: auth.explicit_max_ttl,
    }
}

/// The server's checks before a renewal reaches the backend.
fn check_renewable(renewable: bool, expire_time: SystemTime, now: SystemTime) -> Result<(), Error> {
    if expire_time < now {
        return Err(refused("lease expired"));
    }
    if !renewable {
        return Err(refused("lease is not renewable"));
    }
    Ok(())
}

/// A refusal of the server's expiration manager: a 400 with its text.
fn refused(message: &str) -> Error {
    Error::bad_request(message.to_owned())
}

/// 24 random letters and digits, as the server's lease ids end with.
fn random_id() -> Result<String, Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|e| Error::other("the system's random generator failed").with_source(e))?;
    Ok(bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect())
}
