#![allow(clippy::unwrap_used)]

use tonic::metadata::MetadataValue;

use super::*;

fn metadata(ids: &[&str]) -> MetadataMap {
    let mut map = MetadataMap::new();
    for id in ids {
        map.append(MULTIPLEX_ID_KEY, MetadataValue::try_from(*id).unwrap());
    }
    map
}

#[test]
fn the_multiplex_id_must_be_present_once_and_non_empty() {
    assert_eq!(
        multiplex_id(&metadata(&["AbCdEf0123"])).unwrap(),
        "AbCdEf0123"
    );
    let missing = multiplex_id(&metadata(&[])).unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(missing.message().contains("multiplex_id"));
    let twice = multiplex_id(&metadata(&["a", "b"])).unwrap_err();
    assert!(twice.message().contains("more than one"));
    let empty = multiplex_id(&metadata(&[""])).unwrap_err();
    assert!(empty.message().contains("empty"));
}

/// The smallest backend: one unauthenticated path, every request a nil response. The machinery
/// is tested with it rather than with a real backend's paths.
struct Probe;

impl Backend for Probe {
    fn special_paths(&self) -> crate::backend::SpecialPaths {
        crate::backend::SpecialPaths {
            unauthenticated: vec!["special".to_owned()],
            ..Default::default()
        }
    }

    async fn handle_request(
        &self,
        _: crate::backend::Request,
    ) -> Result<Option<crate::backend::Response>, crate::backend::Error> {
        Ok(None)
    }

    async fn existence_check(
        &self,
        _: crate::backend::Request,
    ) -> Result<Option<bool>, crate::backend::Error> {
        Ok(None)
    }
}

struct ProbeFactory;

impl BackendFactory for ProbeFactory {
    type Backend = Probe;

    async fn create(&self, _: BackendConfig) -> Result<Probe, crate::backend::Error> {
        Ok(Probe)
    }
}

/// A service of the given mode with one backend already set up under `key`.
fn service_with_instance(mode: ServiceMode, key: &str) -> BackendService<ProbeFactory> {
    let identity = crate::transport::tls::Identity::generate().unwrap();
    let broker = Broker::new(
        crate::transport::tls::client_config(&identity, identity.cert.clone()).unwrap(),
    );
    let service = BackendService::new(ProbeFactory, Arc::new(broker), mode);
    service.mounts().insert(key.to_owned(), Arc::new(Probe));
    service
}

use crate::proto::pb::backend_server::Backend as _;

fn read_kv() -> Request<pb::HandleRequestArgs> {
    Request::new(pb::HandleRequestArgs {
        storage_id: 0,
        request: Some(pb::Request {
            operation: "read".into(),
            path: "kv/foo".into(),
            ..Default::default()
        }),
    })
}

#[tokio::test]
async fn metadata_mode_answers_metadata_and_refuses_everything_else() {
    let mode = ServiceMode {
        multiplexed: false,
        metadata_only: true,
    };
    let service = service_with_instance(mode, SINGLE_INSTANCE);

    let kind = service.r#type(Request::new(pb::Empty {})).await.unwrap();
    assert_eq!(kind.into_inner().r#type, 1);
    let paths = service
        .special_paths(Request::new(pb::Empty {}))
        .await
        .unwrap();
    assert_eq!(
        paths.into_inner().paths.unwrap().unauthenticated,
        ["special"]
    );

    let refusals = [
        service.handle_request(read_kv()).await.err(),
        service
            .initialize(Request::new(pb::InitializeArgs {}))
            .await
            .err(),
        service
            .invalidate_key(Request::new(pb::InvalidateKeyArgs {
                key: "internal".into(),
            }))
            .await
            .err(),
        service
            .handle_existence_check(Request::new(pb::HandleExistenceCheckArgs {
                storage_id: 0,
                request: read_kv().into_inner().request,
            }))
            .await
            .err(),
    ];
    for refusal in refusals {
        let status = refusal.expect("refused in metadata mode");
        assert_eq!(status.message(), METADATA_MODE_REFUSAL);
    }
    // Cleanup still works, and finds the single instance without a multiplex_id.
    service.cleanup(Request::new(pb::Empty {})).await.unwrap();
    assert_eq!(service.mount_count(), 0);
}

#[tokio::test]
async fn a_non_multiplexed_process_ignores_the_multiplex_id() {
    let single = ServiceMode {
        multiplexed: false,
        metadata_only: false,
    };
    let service = service_with_instance(single, SINGLE_INSTANCE);
    let mut request = read_kv();
    request
        .metadata_mut()
        .insert(MULTIPLEX_ID_KEY, MetadataValue::from_static("whatever"));
    let reply = service.handle_request(request).await.unwrap().into_inner();
    // No such key: a nil response, not an error.
    assert!(reply.response.is_none() && reply.err.is_none());

    // A multiplexed process insists on the id.
    let service = service_with_instance(ServiceMode::MULTIPLEXED, "abc");
    let status = service.handle_request(read_kv()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}
