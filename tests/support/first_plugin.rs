//! The first plugin of `docs/sdk.md` as a crate of its own, outside the workspace: the four
//! files the page shows (found by their `<!-- first-plugin: PATH -->` markers), with the
//! dependency on the published SDK replaced by a path dependency on this checkout. The
//! out-of-tree test runs its tests; the benchmark times its start-up beside the mock's.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;

/// The page, and the marker before each file's fenced block.
pub const PAGE: &str = "docs/sdk.md";
const MARKER: &str = "<!-- first-plugin: ";

/// The binary's name, as its manifest names the package.
pub const BINARY: &str = "counters";

/// The files of the first plugin, by path, as `page` shows them.
pub fn files(page: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(MARKER) else {
            continue;
        };
        let path = rest
            .strip_suffix(" -->")
            .unwrap_or_else(|| panic!("unterminated marker: {line}"));
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "{path}: the marker must be followed by a fenced block, not {fence:?}"
        );
        let mut body = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        files.push((path.to_owned(), body));
    }
    files
}

/// `manifest` with the published dependency replaced by the checkout at `root`.
pub fn with_path_dependency(manifest: &str, root: &Path) -> String {
    let path = format!("path = {:?}", root.display().to_string());
    let published = "vault-plugin-sdk = \"0.1\"";
    let with_testing = "vault-plugin-sdk = { version = \"0.1\", features = [\"testing\"] }";
    assert!(
        manifest.contains(published) && manifest.contains(with_testing),
        "the page's manifest no longer has the dependency lines this rewrites:\n{manifest}"
    );
    manifest
        .replace(published, &format!("vault-plugin-sdk = {{ {path} }}"))
        .replace(
            with_testing,
            &format!("vault-plugin-sdk = {{ {path}, features = [\"testing\"] }}"),
        )
}

/// The crate written into `dir` (which must not hold another), with the lock file of this
/// checkout, so it builds with the versions the SDK is tested with.
pub fn write_crate(dir: &Path) {
    let root = common::project_root();
    let page = fs::read_to_string(root.join(PAGE)).expect("docs/sdk.md");
    for (path, body) in files(&page) {
        let body = if path == "Cargo.toml" {
            with_path_dependency(&body, &root)
        } else {
            body
        };
        let file = dir.join(&path);
        fs::create_dir_all(file.parent().expect("a folder")).expect("mkdir");
        fs::write(&file, body).expect("write");
    }
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("Cargo.lock");
}

/// Where its builds go: a target directory of its own, kept between runs, so that a second
/// run only rebuilds the crate itself.
pub fn target_dir() -> PathBuf {
    common::project_root().join("target/out-of-tree")
}

/// Runs cargo with `args` in the crate at `dir`, as its author would: nothing of this
/// repository's `.cargo/config.toml` reaches the build (what it sets is removed from the
/// environment), so the crate's own configuration must do it.
pub fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo: OsString = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("BAO_BIN", common::bao_bin())
        .env_remove("AWS_LC_SYS_NO_JITTER_ENTROPY")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo")
}

/// Builds the plugin with `cargo build --release` and returns its binary. The crate is
/// written outside the repository, as the out-of-tree test writes it: inside, cargo would take
/// it for a member of this workspace and read this repository's `.cargo/config.toml`.
pub fn build_release() -> PathBuf {
    let dir = common::fresh_temp_dir("first-plugin-release");
    write_crate(&dir);
    let output = cargo(&dir, &["build", "--release", "--quiet"]);
    let _ = fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "cargo build --release of the first plugin failed:\n{}",
        common::lossy(&output.stderr)
    );
    target_dir().join("release").join(BINARY)
}
