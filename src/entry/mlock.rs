//! Locking the process's memory when the server asks for it, so secrets in the plugin's memory
//! are never swapped out: what Go plugins do in `pluginutil.OptionallyEnableMlock`.
//!
//! Vault sets `VAULT_PLUGIN_MLOCK_ENABLED=true` when its own memory is locked (no
//! `disable_mlock` in its configuration); OpenBao would set `BAO_PLUGIN_MLOCK_ENABLED` too, but
//! never does. Only the exact value `true` asks for it, as in Go.

use std::fmt;
use std::path::PathBuf;

use rustix::mm::{MlockAllFlags, mlockall};

/// The server's request to lock memory: the variable that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MlockRequest {
    pub variable: &'static str,
}

impl MlockRequest {
    /// Reads the request as OpenBao's SDK does (`BAO_` first, even when it is not `true`, else
    /// `VAULT_`); Vault's SDK reads only `VAULT_`, the one Vault sets.
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let name = crate::handshake::sdk_var_name(&get, "PLUGIN_MLOCK_ENABLED")?;
        let variable = if name.starts_with("BAO_") {
            "BAO_PLUGIN_MLOCK_ENABLED"
        } else {
            "VAULT_PLUGIN_MLOCK_ENABLED"
        };
        (get(variable).as_deref() == Some("true")).then_some(Self { variable })
    }

    /// Locks every page mapped now and later (`mlockall(MCL_CURRENT | MCL_FUTURE)`).
    pub(crate) fn lock_all_memory(self) -> Result<(), MlockError> {
        mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE).map_err(|errno| MlockError {
            request: self,
            os_error: errno.into(),
            exe: std::env::current_exe().ok(),
        })
    }
}

/// `mlockall` failed: the process may not lock that much memory.
#[derive(Debug)]
pub(crate) struct MlockError {
    request: MlockRequest,
    os_error: std::io::Error,
    exe: Option<PathBuf>,
}

impl fmt::Display for MlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exe = self.exe.as_ref().map_or_else(
            || "<path to the plugin>".into(),
            |p| p.display().to_string(),
        );
        write!(
            f,
            "cannot lock the plugin's memory as the server asks ({}=true): mlockall: {}. Give \
             the binary the CAP_IPC_LOCK capability (`setcap cap_ipc_lock=+ep {exe}`), or set \
             `disable_mlock = true` in the server's configuration.",
            self.request.variable, self.os_error
        )
    }
}

impl std::error::Error for MlockError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn request(vars: &[(&str, &str)]) -> Option<&'static str> {
        MlockRequest::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
        .map(|request| request.variable)
    }

    #[test]
    fn only_true_asks_and_bao_comes_first() {
        assert_eq!(request(&[]), None);
        let vault = Some("VAULT_PLUGIN_MLOCK_ENABLED");
        let bao = Some("BAO_PLUGIN_MLOCK_ENABLED");
        assert_eq!(request(&[("VAULT_PLUGIN_MLOCK_ENABLED", "true")]), vault);
        assert_eq!(request(&[("BAO_PLUGIN_MLOCK_ENABLED", "true")]), bao);
        for other in ["false", "TRUE", "1", ""] {
            assert_eq!(request(&[("VAULT_PLUGIN_MLOCK_ENABLED", other)]), None);
        }
        let both = [
            ("BAO_PLUGIN_MLOCK_ENABLED", "false"),
            ("VAULT_PLUGIN_MLOCK_ENABLED", "true"),
        ];
        assert_eq!(request(&both), None);
    }

    #[test]
    fn the_error_names_the_capability_the_way_out_and_the_os_error() {
        let error = MlockError {
            request: MlockRequest {
                variable: "VAULT_PLUGIN_MLOCK_ENABLED",
            },
            os_error: std::io::Error::from_raw_os_error(12),
            exe: Some("/plugins/my-mock-plugin".into()),
        };
        let os_error = std::io::Error::from_raw_os_error(12).to_string();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot lock the plugin's memory as the server asks \
                 (VAULT_PLUGIN_MLOCK_ENABLED=true): mlockall: {os_error}. Give the binary the \
                 CAP_IPC_LOCK capability (`setcap cap_ipc_lock=+ep /plugins/my-mock-plugin`), \
                 or set `disable_mlock = true` in the server's configuration."
            )
        );
    }
}
