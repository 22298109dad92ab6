//! A newcomer's plugin, out of tree: the first plugin of `docs/sdk.md`, exactly as the page
//! shows it (its `Cargo.toml`, `.cargo/config.toml`, `src/main.rs` and `tests/openbao.rs`), is
//! written into a new crate in a temporary directory, built by cargo there, and its own test
//! runs it on OpenBao through the SDK's test kit (`vault_plugin_sdk::testing::OpenBao`): 100
//! concurrent increments of one counter must all count, and an unknown counter answers 404
//! with the plugin's own message.
//!
//! The only change made to the page's files: the dependency on the published crate becomes a
//! path dependency on this checkout. The build gets nothing from this repository's
//! `.cargo/config.toml`, so the fast start-up comes from the crate's own configuration, as the
//! page tells authors to do it.

use std::fs;

use plugin_test_support::{common, first_plugin};

#[test]
fn the_pages_markers_find_the_four_files() {
    let page =
        fs::read_to_string(common::project_root().join(first_plugin::PAGE)).expect("the page");
    let paths: Vec<String> = first_plugin::files(&page)
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        paths,
        [
            "Cargo.toml",
            ".cargo/config.toml",
            "src/main.rs",
            "tests/openbao.rs"
        ]
    );
}

#[test]
fn the_first_plugin_of_the_guide_builds_out_of_tree_and_runs_on_openbao() {
    let dir = common::fresh_temp_dir("first-plugin");
    first_plugin::write_crate(&dir);
    let output = first_plugin::cargo(&dir, &["test"]);
    let stdout = common::lossy(&output.stdout);
    let stderr = common::lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo test of the first plugin failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test a_hundred_concurrent_increments_all_count ... ok"),
        "the plugin's own test did not run:\n{stdout}\n{stderr}"
    );
    let _ = fs::remove_dir_all(&dir);
}
