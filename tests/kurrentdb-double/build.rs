//! Compiles the copied KurrentDB protocol files into server stubs, with protox
//! (a protobuf compiler in Rust: no protoc on the machine) and tonic-build.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = Path::new("protos");
    println!("cargo:rerun-if-changed=protos");
    let files = protox::compile(["streams.proto", "serverfeatures.proto"], [protos])?;
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // Event payloads are shared between the log and every reader without copies.
        .bytes(["."])
        // Methods the double does not implement (BatchAppend) answer UNIMPLEMENTED.
        .generate_default_stubs(true)
        .compile_fds(files)?;
    Ok(())
}
