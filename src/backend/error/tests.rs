use std::error::Error as _;

use super::*;
use crate::backend::{StorageError, SystemViewError};

/// A storage failure as `HostStorage` makes it from a failed call.
fn failed_call() -> StorageError {
    let status = tonic::Status::unavailable("cannot write to readonly storage");
    StorageError::new(status.message()).with_source(status)
}

#[test]
fn a_storage_error_keeps_its_text_verbatim_and_the_failed_call_as_the_cause() {
    let error = Error::from(failed_call());
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(error.message(), "cannot write to readonly storage");

    // Error -> StorageError -> tonic::Status.
    let storage = error.source().expect("the storage error is the cause");
    let storage = storage
        .downcast_ref::<StorageError>()
        .expect("a StorageError");
    assert_eq!(storage.message(), "cannot write to readonly storage");
    let status = storage
        .source()
        .expect("the status is the storage error's cause");
    let status = status.downcast_ref::<tonic::Status>().expect("a Status");
    assert_eq!(status.code(), tonic::Code::Unavailable);
}

#[test]
fn a_system_view_error_keeps_its_text_verbatim_and_its_cause() {
    let status = tonic::Status::unimplemented("");
    let error = Error::from(
        SystemViewError::new(
            "system view call failed: Operation is not implemented or not supported",
        )
        .with_source(status),
    );
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        "system view call failed: Operation is not implemented or not supported"
    );
    let cause = error
        .source()
        .and_then(|e| e.downcast_ref::<SystemViewError>());
    let status = cause.and_then(|e| e.source()?.downcast_ref::<tonic::Status>());
    assert_eq!(
        status.map(tonic::Status::code),
        Some(tonic::Code::Unimplemented)
    );
}

#[test]
fn storage_and_system_view_errors_display_their_message_alone_and_compare_by_it() {
    let storage = StorageError::new("the storage's words").with_source(std::io::Error::other("x"));
    assert_eq!(storage.to_string(), "the storage's words");
    assert_eq!(storage, StorageError::new("the storage's words"));
    let view = SystemViewError::new("the view's words").with_source(std::io::Error::other("x"));
    assert_eq!(view.to_string(), "the view's words");
    assert_eq!(view, SystemViewError::new("the view's words"));
}

#[test]
fn the_chain_through_storage_reaches_the_failed_call() {
    let error =
        Error::internal("cannot hand out the credential").with_source(Error::from(failed_call()));
    let mut chain = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(cause) = next {
        chain.push(cause);
        next = cause.source();
    }
    // Error -> Error (from the storage error) -> StorageError -> tonic::Status.
    assert_eq!(chain.len(), 4);
    assert!(chain[1].is::<Error>());
    assert!(chain[2].is::<StorageError>());
    assert!(chain[3].is::<tonic::Status>());
    assert_eq!(chain[1].to_string(), "cannot write to readonly storage");
}

#[test]
fn the_chain_is_walkable_to_its_end() {
    let error = Error::internal("cannot hand out the credential")
        .with_source(Error::other("the store failed").with_source(std::io::Error::other("eof")));
    let mut chain = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(cause) = next {
        chain.push(cause.to_string());
        next = cause.source();
    }
    assert_eq!(
        chain,
        ["cannot hand out the credential", "the store failed", "eof"]
    );
}

#[test]
fn display_is_the_message_alone_never_the_cause() {
    let cause = std::io::Error::other("the cause's own words");
    let error = Error::user("the server's words").with_source(cause);
    assert_eq!(error.to_string(), "the server's words");
    assert_eq!(error.message(), "the server's words");
}

#[test]
fn equality_is_what_the_server_receives_causes_aside() {
    let plain = Error::other("cannot write to readonly storage");
    let caused = plain.clone().with_source(std::io::Error::other("x"));
    assert!(plain.source().is_none());
    assert!(caused.source().is_some());
    assert_eq!(plain, caused);

    // Kind or message apart, they differ.
    assert_ne!(Error::other("x"), Error::user("x"));
    assert_ne!(Error::coded(403, "x"), Error::coded(404, "x"));
    assert_ne!(Error::bad_request("x"), Error::bad_request("y"));
}

#[test]
fn a_clone_keeps_the_cause() {
    let error = Error::other("x").with_source(std::io::Error::other("the cause"));
    let copy = error.clone();
    assert!(
        copy.source()
            .is_some_and(|cause| cause.is::<std::io::Error>())
    );
}

#[test]
fn the_fixed_kinds_keep_their_words() {
    let cases = [
        (
            Error::unsupported_operation(),
            ErrorKind::UnsupportedOperation,
            "unsupported operation",
        ),
        (
            Error::unsupported_path(),
            ErrorKind::UnsupportedPath,
            "unsupported path",
        ),
        (
            Error::invalid_request(),
            ErrorKind::InvalidRequest,
            "invalid request",
        ),
        (
            Error::permission_denied(),
            ErrorKind::PermissionDenied,
            "permission denied",
        ),
        (
            Error::multi_authz_pending(),
            ErrorKind::MultiAuthzPending,
            "request needs further approval",
        ),
        (
            Error::unrecoverable(),
            ErrorKind::Unrecoverable,
            "unrecoverable error",
        ),
    ];
    for (error, kind, message) in cases {
        assert_eq!((error.kind(), error.message()), (kind, message));
        assert_eq!(error.to_string(), message);
        assert!(error.source().is_none());
    }
}
