//! Compiles netlab's .proto files with the protoc shipped in protoc-bin-vendored, so that building
//! needs no system protoc.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/netlab/apiserver/v1/apiserver.proto", "proto/netlab/node/v1/kernel.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Object JSON is shared between every watcher of an event: Bytes makes the copy a refcount.
    config.bytes(["."]);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("netlab_descriptor.bin"))
        .compile_with_config(config, &files, &["proto"])?;
    Ok(())
}
