//! The factory: the mount's `version` option picks the backend, as the Go plugin's `Factory`.

use vault_plugin_sdk::backend::framework::RoutedBackend;
use vault_plugin_sdk::backend::{
    Backend, BackendConfig, BackendFactory, Error, Request, Response, SpecialPaths,
};

use crate::passthrough::Passthrough;
use crate::versioned::Versioned;

/// Builds the backend of one mount.
pub(crate) struct Factory;

impl BackendFactory for Factory {
    type Backend = Kv;

    async fn create(&self, config: BackendConfig) -> Result<Kv, Error> {
        let version = config.config.get("version").map_or("", String::as_str);
        match version {
            "" | "1" => {
                let leased = config
                    .config
                    .get("leased_passthrough")
                    .is_some_and(|value| value == "true");
                Ok(Kv::V1(Passthrough::new(
                    config.storage,
                    config.system_view,
                    leased,
                )))
            }
            "2" => Versioned::new(config.storage, config.backend_uuid)
                .await
                .map(|backend| Kv::V2(Box::new(backend))),
            // The Go factory returns no backend and no error; the server then fails the mount
            // with `nil backend of type "kv" returned from factory`. An error says why.
            other => Err(Error::other(format!(
                "unsupported K/V version {other:?}: the version option must be 1 or 2"
            ))),
        }
    }
}

/// One mount: version 1 or version 2.
pub(crate) enum Kv {
    V1(Passthrough),
    V2(Box<Versioned>),
}

impl Backend for Kv {
    fn special_paths(&self) -> SpecialPaths {
        match self {
            Self::V1(v1) => Backend::special_paths(v1),
            Self::V2(v2) => v2.seal_wrapped(),
        }
    }

    async fn handle_request(&self, request: Request) -> Result<Option<Response>, Error> {
        match self {
            Self::V1(v1) => v1.router().handle_request(v1, &request).await,
            Self::V2(v2) => v2.router().handle_request(v2.as_ref(), &request).await,
        }
    }

    async fn existence_check(&self, request: Request) -> Result<Option<bool>, Error> {
        match self {
            Self::V1(v1) => v1.router().existence_check(v1, &request).await,
            Self::V2(v2) => v2.router().existence_check(v2.as_ref(), &request).await,
        }
    }

    async fn invalidate(&self, key: &str) {
        match self {
            Self::V1(v1) => Backend::invalidate(v1, key).await,
            Self::V2(v2) => Backend::invalidate(v2.as_ref(), key).await,
        }
    }

    async fn cleanup(&self) {
        match self {
            Self::V1(v1) => Backend::cleanup(v1).await,
            Self::V2(v2) => Backend::cleanup(v2.as_ref()).await,
        }
    }
}
