//! Generates the tfplugin6 and go-plugin gRPC code with a vendored `protoc`,
//! so building needs no system protobuf compiler.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let include: PathBuf = protoc_bin_vendored::include_path()?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_with_config(
        config,
        &[
            PathBuf::from("proto/tfplugin6.8.proto"),
            PathBuf::from("proto/grpc_controller.proto"),
            PathBuf::from("proto/grpc_stdio.proto"),
        ],
        &[PathBuf::from("proto"), include],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
