//! Build script of chatgate: embeds the browser bundle of the real npm
//! `socket.io-client` for the demo chat page (`src/api/demo.rs`).
//!
//! The bundle comes from `demo/node_modules/socket.io-client/dist/`, pinned by
//! `demo/package.json` and `demo/package-lock.json`. When it is missing and
//! `npm` is on the PATH, this script runs `npm ci --prefix demo` once (set
//! `CHATGATE_SKIP_NPM=1` to never run npm). Without it the build still
//! succeeds, and the demo page explains how to install the client.

use std::path::{Path, PathBuf};
use std::process::Command;

const BUNDLE: &str = "node_modules/socket.io-client/dist/socket.io.min.js";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The whole folder (scanned recursively): a later `npm ci` is noticed.
    println!("cargo:rerun-if-changed=demo");
    println!("cargo:rerun-if-env-changed=CHATGATE_SKIP_NPM");

    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        println!("cargo:warning=CARGO_MANIFEST_DIR is not set");
        return;
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        println!("cargo:warning=OUT_DIR is not set");
        return;
    };
    let demo = manifest_dir.join("demo");
    let bundle = demo.join(BUNDLE);
    if !bundle.is_file() && std::env::var_os("CHATGATE_SKIP_NPM").is_none() {
        install(&demo);
    }
    let contents = match std::fs::read_to_string(&bundle) {
        Ok(contents) => contents,
        Err(_) => {
            println!(
                "cargo:warning=demo page: socket.io-client is not installed ({}); run \
                 `npm ci --prefix demo` and rebuild to get a working demo page",
                bundle.display()
            );
            String::new()
        }
    };
    let target = out_dir.join("socket.io.min.js");
    if let Err(err) = std::fs::write(&target, contents) {
        println!("cargo:warning=cannot write {}: {err}", target.display());
    }
}

/// Runs `npm ci` in `demo/`; failures become build warnings, not errors.
fn install(demo: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(demo)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => println!("cargo:warning=`npm ci --prefix demo` failed ({status})"),
        Err(err) => println!("cargo:warning=npm is not available ({err})"),
    }
}
