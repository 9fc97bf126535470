//! Generates the prost types for ONNX's protobuf schema.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fds = protox::compile([root.join("proto/onnx.proto")], [root.join("proto")])?;
    let out = root.join("src/generated");
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(fds)?;
    println!("wrote {}", out.display());
    Ok(())
}
