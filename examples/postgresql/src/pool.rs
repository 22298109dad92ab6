//! Connections to PostgreSQL, pooled as Go's `database/sql` pools them for the Go plugin: at
//! most `max_open` at once, up to `max_idle` kept for the next call, each closed once older
//! than the lifetime, and a closed one replaced.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use vault_plugin_sdk::database::Error;

use crate::config::Config;

/// How long a dial may take when the URL says nothing (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// An open connection and when it was opened.
struct Idle {
    client: Client,
    opened: Instant,
}

/// The pool of one configured connection.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    open: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    lifetime: Option<Duration>,
}

/// A connection lent out; back to the pool when dropped.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Idle>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client.as_ref().expect("held until dropped").client
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client.as_mut().expect("held until dropped").client
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(idle) = self.client.take() {
            self.pool.give_back(idle);
        }
    }
}

impl Pool {
    /// A pool for `config`'s URL, with the Go plugin's additions: `timezone=UTC`, and
    /// `application_name=vault` unless the URL names one. Nothing is dialed yet.
    pub(crate) fn new(config: &Config) -> Result<Self, Error> {
        let url = with_go_parameters(&config.url);
        // The URL holds the root password: its parse error is named, never quoted.
        let mut parsed: tokio_postgres::Config = url
            .parse()
            .map_err(|_| Error::new("cannot parse connection url"))?;
        // A server that accepts the socket and never answers must not hold a request for
        // ever: pgx bounds a dial by the request's deadline, which the plugin does not get.
        if parsed.get_connect_timeout().is_none() {
            parsed.connect_timeout(CONNECT_TIMEOUT);
        }
        let tls = match parsed.get_ssl_mode() {
            SslMode::Disable => None,
            _ => Some(tls::connector()),
        };
        Ok(Self {
            config: parsed,
            tls,
            open: Arc::new(Semaphore::new(config.max_open)),
            idle: Mutex::new(Vec::new()),
            max_idle: config.max_idle,
            lifetime: config.max_lifetime,
        })
    }

    /// A connection: an idle one that is still open and young enough, else a new one. Waits
    /// while `max_open` are lent out.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, Error> {
        let permit = self
            .open
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::new("the connection pool is closed").with_source(e))?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let mut found = None;
            while let Some(candidate) = idle.pop() {
                if !candidate.client.is_closed() && !self.expired(&candidate) {
                    found = Some(candidate);
                    break;
                }
            }
            found
        };
        let client = match reused {
            Some(idle) => idle,
            None => self.connect().await?,
        };
        Ok(Pooled {
            pool: self,
            client: Some(client),
            _permit: permit,
        })
    }

    fn expired(&self, idle: &Idle) -> bool {
        self.lifetime
            .is_some_and(|lifetime| idle.opened.elapsed() >= lifetime)
    }

    fn give_back(&self, idle: Idle) {
        if idle.client.is_closed() || self.expired(&idle) {
            return;
        }
        let mut kept = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < self.max_idle {
            kept.push(idle);
        }
    }

    async fn connect(&self) -> Result<Idle, Error> {
        let client = match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(connect_error)?;
                tokio::spawn(connection);
                client
            }
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(connect_error)?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(Idle {
            client,
            opened: Instant::now(),
        })
    }

    /// Closes every idle connection; lent ones close when they come back.
    pub(crate) fn close(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A failed connection, in the driver's words (which name the host, never the password).
fn connect_error(error: tokio_postgres::Error) -> Error {
    Error::new(crate::plugin::pg_text(&error)).with_source(error)
}

/// `url` with the parameters the Go plugin adds to a `postgres://` or `postgresql://` URL:
/// `timezone=UTC` (here as the `TimeZone` setting, which is what pgx makes of it) and
/// `application_name=vault` unless the URL has one.
fn with_go_parameters(url: &str) -> String {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return url.to_owned();
    }
    let mut url = url.to_owned();
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str("options=-c%20TimeZone%3DUTC");
    if !url.contains("application_name") {
        url.push_str("&application_name=vault");
    }
    url
}

/// TLS to PostgreSQL for `sslmode=prefer` (the default) and `require`: encrypted, the
/// server's certificate not checked, as libpq and pgx do for those modes. `verify-ca` and
/// `verify-full` are refused when the URL is parsed.
mod tls {
    use std::sync::Arc;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    pub(super) fn connector() -> tokio_postgres_rustls::MakeRustlsConnect {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|builder| {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                    .with_no_client_auth()
            })
            .expect("the default provider supports the default versions");
        tokio_postgres_rustls::MakeRustlsConnect::new(config)
    }

    /// Accepts any certificate, but still checks that the server holds its key.
    #[derive(Debug)]
    struct Unchecked(Arc<CryptoProvider>);

    impl ServerCertVerifier for Unchecked {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_go_plugins_parameters_are_added_to_postgres_urls_only() {
        assert_eq!(
            with_go_parameters("postgres://u:p@h/db"),
            "postgres://u:p@h/db?options=-c%20TimeZone%3DUTC&application_name=vault"
        );
        assert_eq!(
            with_go_parameters("postgresql://h/db?sslmode=disable&application_name=mine"),
            "postgresql://h/db?sslmode=disable&application_name=mine&options=-c%20TimeZone%3DUTC"
        );
        assert_eq!(
            with_go_parameters("host=h user=u"),
            "host=h user=u",
            "a key=value string is left alone, as the Go plugin leaves it"
        );
    }
}
