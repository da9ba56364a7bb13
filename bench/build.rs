//! Generates the echo service the `load` bench compares against (vendored protoc: no
//! system protoc needed, as in `shared/proto`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &["proto/echo.proto"], &["proto"])?;
    Ok(())
}
