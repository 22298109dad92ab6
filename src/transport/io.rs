//! One type for a byte stream of any socket kind (unix, TCP, TLS over either), so listeners,
//! dialers and the HTTP client hand streams around without caring which.

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream of any kind.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
