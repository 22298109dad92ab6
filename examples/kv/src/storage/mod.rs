//! The Go plugin's storage layout: what is kept where, and how it is encoded, so a mount can
//! move between the Go binary and this one in either direction.

pub(crate) mod names;
pub(crate) mod records;
pub(crate) mod salt;
