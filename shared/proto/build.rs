//! Generates the Rust code for every `.proto` under the repository's `proto/` folder with
//! the vendored protoc, plus one file descriptor set for gRPC reflection.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// Messages whose Debug output must not show their `api_key` (or a webhook's `secret`).
const REDACTED: [&str; 3] = [
    "ferry.integration.v1.CreateIntegrationRequest",
    "ferry.integration.v1.RotateCredentialsRequest",
    "ferry.integration.v1.WebhookSubscription",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut protos = Vec::new();
    collect(&root, &mut protos)?;
    protos.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    // Requests that carry an API key get a redacting Debug (in lib.rs), so no log line or
    // error built with `{:?}` can ever hold the key.
    config.skip_debug(REDACTED);
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("ferry_descriptor.bin");
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor).generate_default_stubs(true).compile_with_config(
        config,
        &protos,
        &[root, include],
    )?;
    Ok(())
}
