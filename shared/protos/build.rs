//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and generates the tonic code.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "abdoseg/common/v1/common.proto",
    "abdoseg/preprocessing/v1/preprocessing.proto",
    "abdoseg/training/v1/training.proto",
    "abdoseg/inference/v1/inference.proto",
    "abdoseg/metrics/v1/metrics.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    // tonic-prost-build does not emit rerun-if-changed itself.
    for proto in PROTOS {
        println!(
            "cargo:rerun-if-changed={}",
            proto_root.join(proto).display()
        );
    }

    let descriptors = protox::compile(PROTOS, [&proto_root])?;
    // Served by gRPC reflection so that outside clients can discover the contracts.
    fs::write(
        out_dir.join("abdoseg_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
