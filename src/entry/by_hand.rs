//! What the binary tells a person who runs it by hand at a terminal: what it is, its SHA-256
//! and the commands that register and enable it, which is what they need to use it.
//!
//! Only when stderr is a terminal: a program that is not a plugin host but reads stderr (a
//! supervisor, a test) keeps getting the one hclog JSON error line every other failure gives.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Read, Write as _};
use std::path::Path;

use aws_lc_rs::digest;

use super::info::PluginInfo;
use crate::services::Catalog;

/// The running executable's file, as the kernel opened it (still the same file if the path
/// has been renamed or replaced since).
const SELF_EXE: &str = "/proc/self/exe";

/// Writes the introduction for the running executable, a plugin of `kind`, to stderr.
pub(crate) fn explain_to_stderr(info: &PluginInfo, kind: Catalog) {
    let exe = std::env::current_exe().unwrap_or_else(|_| Path::new(SELF_EXE).to_owned());
    let text = introduction(info, kind, &exe, &own_sha256());
    // A failed write to stderr has nowhere better to be reported.
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// The SHA-256 of the running executable in lower-case hex, as `sha256sum` prints it and the
/// catalog expects it.
pub(crate) fn own_sha256() -> io::Result<String> {
    sha256_hex(std::fs::File::open(SELF_EXE)?)
}

fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => context.update(&buffer[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    let mut hex = String::with_capacity(64);
    for byte in context.finish().as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// The text for the executable at `exe`, a plugin of `kind` whose SHA-256 is `sha256` and
/// which reports [`PluginInfo::reported`] to the server. The catalog name and `command=` are
/// the file's own name: the server runs `<plugin_directory>/<command>`.
pub(crate) fn introduction(
    info: &PluginInfo,
    kind: Catalog,
    exe: &Path,
    sha256: &io::Result<String>,
) -> String {
    let reported_version = info.reported();
    // The catalog entry is named after the file when its name can be read.
    let file_name = exe
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or(Cow::Borrowed(info.name));
    let (catalog_type, enable) = match kind {
        Catalog::Secret => ("secret", "secrets"),
        Catalog::Auth => ("auth", "auth"),
        Catalog::Database => ("database", ""),
    };
    let mount_path = info.example_path;
    let name = shell_word(&file_name);
    let path = shell_word(&exe.to_string_lossy()).into_owned();
    let (sha_line, sha) = match sha256 {
        Ok(sha) => (format!("SHA-256: {sha}"), sha.as_str()),
        Err(error) => (
            format!(
                "SHA-256: unknown, {SELF_EXE} cannot be read ({error}); use `sha256sum {path}`"
            ),
            "<sha256>",
        ),
    };
    let mut text = String::new();
    let _ = write!(
        text,
        "{file_name}: {}. The server launches it; it is not meant to be run by hand.\n\
         \n\
         {sha_line}\n\
         Version: {} (reports {} to the server: a catalog entry's -version must name that)\n\
         \n\
         Copy it into the server's plugin_directory, then register and enable it with OpenBao or Vault:\n\
         \n  cp {path} <plugin_directory>/\n",
        info.description,
        info.version,
        if reported_version.is_empty() {
            "no version"
        } else {
            &reported_version
        },
    );
    if kind == Catalog::Database {
        for cli in ["bao", "vault"] {
            let _ = write!(
                text,
                "\n  {cli} plugin register -sha256={sha} database {name}\
                 \n  {cli} secrets enable database\
                 \n  {cli} write database/config/{mount_path} plugin_name={name} \
                 allowed_roles='*' connection_url=...\n"
            );
        }
        return text;
    }
    for cli in ["bao", "vault"] {
        let _ = write!(
            text,
            "\n  {cli} plugin register -sha256={sha} {catalog_type} {name}\
             \n  {cli} {enable} enable -path={mount_path} {name}\n"
        );
    }
    let _ = write!(
        text,
        "\nor, without a type, as in the tutorial:\n\
         \n  vault write sys/plugins/catalog/{name} sha_256={sha} command={name}\
         \n  vault {enable} enable -path={mount_path} -plugin-name={name} plugin\n"
    );
    text
}

/// `text` as one shell word: unchanged when it needs no quoting, else in single quotes.
fn shell_word(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("'{}'", text.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sha256_is_lower_case_hex_of_the_bytes() {
        // FIPS 180-2's "abc" example.
        assert_eq!(
            sha256_hex(&b"abc"[..]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Longer than one read buffer.
        let long = vec![b'a'; 1_000_000];
        assert_eq!(
            sha256_hex(&long[..]).unwrap(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    const MOCK: PluginInfo = PluginInfo::new("my-mock-plugin", env!("CARGO_PKG_VERSION"))
        .description("a Vault/OpenBao secrets-engine plugin")
        .example_path("my-secrets-plugin");

    #[test]
    fn a_database_plugin_is_registered_as_one_and_used_from_the_database_engine() {
        let info = PluginInfo::new("postgresql-database-plugin", "0.1.0")
            .description("a database plugin for PostgreSQL")
            .example_path("postgres");
        let text = introduction(
            &info,
            Catalog::Database,
            Path::new("/p/postgresql-database-plugin"),
            &Ok("ef56".to_owned()),
        );
        for line in [
            "  bao plugin register -sha256=ef56 database postgresql-database-plugin",
            "  bao secrets enable database",
            "  vault write database/config/postgres plugin_name=postgresql-database-plugin \
             allowed_roles='*' connection_url=...",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        // Not the backends' lines.
        assert!(!text.contains("-plugin-name="), "{text}");
        assert!(!text.contains("secret postgresql"), "{text}");
    }

    #[test]
    fn an_auth_method_is_registered_and_enabled_as_one() {
        let info = PluginInfo::new("static-auth", env!("CARGO_PKG_VERSION"))
            .description("an auth method")
            .example_path("users");
        let text = introduction(
            &info,
            Catalog::Auth,
            Path::new("/p/static-auth"),
            &Ok("cd34".to_owned()),
        );
        for line in [
            "  bao plugin register -sha256=cd34 auth static-auth\n",
            "  bao auth enable -path=users static-auth\n",
            "  vault auth enable -path=users -plugin-name=static-auth plugin\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }

    #[test]
    fn the_commands_use_the_file_name_and_the_sha() {
        let text = introduction(
            &MOCK.reported_version("v0.0.0+mock"),
            Catalog::Secret,
            Path::new("/opt/plugins/mock-2"),
            &Ok("ab12".to_owned()),
        );
        for line in [
            "mock-2: a Vault/OpenBao secrets-engine plugin.",
            "SHA-256: ab12\n",
            &format!(
                "Version: {} (reports v0.0.0+mock to the server: a catalog entry's -version must \
                 name that)\n",
                env!("CARGO_PKG_VERSION")
            ),
            "  cp /opt/plugins/mock-2 <plugin_directory>/\n",
            "  bao plugin register -sha256=ab12 secret mock-2\n",
            "  bao secrets enable -path=my-secrets-plugin mock-2\n",
            "  vault plugin register -sha256=ab12 secret mock-2\n",
            "  vault secrets enable -path=my-secrets-plugin mock-2\n",
            "  vault write sys/plugins/catalog/mock-2 sha_256=ab12 command=mock-2\n",
            "  vault secrets enable -path=my-secrets-plugin -plugin-name=mock-2 plugin\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }

    #[test]
    fn an_unreadable_executable_still_gets_the_commands() {
        let error = io::Error::from(io::ErrorKind::NotFound);
        let text = introduction(
            &MOCK.reported_version(""),
            Catalog::Secret,
            Path::new("/p/my-mock-plugin"),
            &Err(error),
        );
        assert!(
            text.contains("SHA-256: unknown, /proc/self/exe cannot be read (")
                && text.contains("use `sha256sum /p/my-mock-plugin`"),
            "{text}"
        );
        assert!(text.contains("register -sha256=<sha256> secret my-mock-plugin\n"));
    }

    #[test]
    fn paths_that_need_quoting_are_quoted() {
        let text = introduction(
            &MOCK,
            Catalog::Secret,
            Path::new("/my plugins/it's"),
            &Ok("00".to_owned()),
        );
        assert!(
            text.contains(r"  cp '/my plugins/it'\''s' <plugin_directory>/"),
            "{text}"
        );
        assert!(text.contains(r"secret 'it'\''s'"), "{text}");
        assert_eq!(shell_word("my-mock-plugin"), "my-mock-plugin");
        assert_eq!(shell_word(""), "''");
    }
}
