//! The bytes between the server and the plugin, and their security: the socket the server
//! connects to, the certificates of automatic mutual TLS, and the legacy bootstrap that
//! unwraps them from a wrapping token instead.

pub(crate) mod io;
pub(crate) mod listener;
pub(crate) mod tls;
pub(crate) mod unwrap_tls;
