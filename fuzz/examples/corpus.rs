//! Writes the seed corpus of every fuzz target under a folder (default
//! `fuzz/libfuzzer/corpus`), one file per seed:
//!
//!     cargo run -p hush-fuzz --example corpus [-- DIR]

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/libfuzzer/corpus").into());
    for (name, _, seeds) in hush_fuzz::seeds::all() {
        let d = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&d)?;
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), s)?;
        }
        println!("{name}: {} seeds in {}", seeds.len(), d.display());
    }
    Ok(())
}
