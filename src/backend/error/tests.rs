use std::error::Error as _;

use super::*;

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
