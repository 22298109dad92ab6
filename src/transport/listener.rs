//! The socket the server connects to: a unix socket in a private directory (the default), or
//! TCP on loopback in the port range the server allows.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::handshake::{ListenAddr, PluginEnv, Transport};

/// A listener plus, for unix sockets, the private directory that holds the socket.
#[derive(Debug)]
pub(crate) struct PluginListener {
    pub listener: Listener,
    pub addr: ListenAddr,
    /// Removes the socket's directory when dropped.
    pub socket_dir: SocketDir,
}

/// The private directory of a unix socket, removed (with the socket) when dropped.
#[derive(Debug, Default)]
pub(crate) struct SocketDir(Option<PathBuf>);

impl Drop for SocketDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The bound socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Why the listener could not be set up: what was attempted, the OS error, and what to change.
#[derive(Debug)]
pub(crate) struct ListenError {
    /// What was attempted, e.g. `cannot listen on unix socket /tmp/x/plugin.sock`.
    context: String,
    /// The OS's answer, when there was one (none when every port was taken).
    source: Option<io::Error>,
    /// What the operator can change, when something can be.
    fix: &'static str,
}

impl ListenError {
    fn new(context: String, source: Option<io::Error>, fix: &'static str) -> Self {
        Self {
            context,
            source,
            fix,
        }
    }
}

/// The operator reads one line; the fix must follow the OS error, so the line includes it.
/// [`crate::report::report`] skips a cause whose text is already in the line.
impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        f.write_str(self.fix)
    }
}

impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl PluginListener {
    /// Binds the listener the handshake will announce. Must run inside a tokio runtime.
    pub(crate) fn bind(transport: Transport, env: &PluginEnv) -> Result<Self, ListenError> {
        match transport {
            Transport::Unix => {
                let parent = env
                    .unix_socket_dir
                    .clone()
                    .unwrap_or_else(std::env::temp_dir);
                let dir = create_private_dir(&parent)?;
                let socket_dir = SocketDir(Some(dir.clone()));
                let path = dir.join("plugin.sock");
                let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
                    ListenError::new(
                        format!("cannot listen on unix socket {}", path.display()),
                        Some(e),
                        " (socket paths are limited to 107 bytes; set PLUGIN_UNIX_SOCKET_DIR \
                         or TMPDIR to a shorter directory)",
                    )
                })?;
                Ok(Self {
                    listener: Listener::Unix(listener),
                    addr: ListenAddr::Unix(path),
                    socket_dir,
                })
            }
            Transport::Tcp => {
                for port in env.min_port..=env.max_port {
                    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                    let Ok(std_listener) = std::net::TcpListener::bind(addr) else {
                        continue;
                    };
                    let listener = std_listener
                        .set_nonblocking(true)
                        .and_then(|()| tokio::net::TcpListener::from_std(std_listener))
                        .map_err(|e| {
                            ListenError::new(format!("cannot listen on {addr}"), Some(e), "")
                        })?;
                    return Ok(Self {
                        listener: Listener::Tcp(listener),
                        addr: ListenAddr::Tcp(addr),
                        socket_dir: SocketDir::default(),
                    });
                }
                Err(ListenError::new(
                    format!(
                        "no free TCP port on 127.0.0.1 between PLUGIN_MIN_PORT={} and \
                         PLUGIN_MAX_PORT={}",
                        env.min_port, env.max_port
                    ),
                    None,
                    "",
                ))
            }
        }
    }
}

/// Creates `parent/plugin-XXXXXXXXXXXX` readable by our user only, so no other user can
/// connect to the socket (mutual TLS guards it too; this is defence in depth).
fn create_private_dir(parent: &Path) -> Result<PathBuf, ListenError> {
    let mut last_error = None;
    for _ in 0..8 {
        let dir = parent.join(format!("plugin-{}", random_suffix()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                // The umask cannot widen 0700, but make the mode explicit regardless.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                    |e| ListenError::new(format!("cannot secure {}", dir.display()), Some(e), ""),
                )?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(ListenError::new(
                    format!("cannot create the socket directory in {}", parent.display()),
                    Some(e),
                    "; set PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a writable directory",
                ));
            }
        }
    }
    Err(ListenError::new(
        format!(
            "cannot create a unique socket directory in {}",
            parent.display()
        ),
        last_error,
        "",
    ))
}

/// 12 random hex digits from the TLS provider's secure random source.
fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    if provider.secure_random.fill(&mut bytes).is_err() {
        // Not secret, only unique: fall back to the clock and pid.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
        bytes[4..].copy_from_slice(&(std::process::id() as u16).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
