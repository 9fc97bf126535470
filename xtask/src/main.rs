//! `cargo xtask test`: every check of the project, in the order CI runs them.
//!
//! Each step is an ordinary cargo command printed before it runs, so a
//! failure can be reproduced by copying one line.

use std::process::{Command, ExitCode};
use std::time::Instant;

/// One check: a label and the command line.
struct Step {
    label: &'static str,
    args: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        label: "format",
        args: &["fmt", "--all", "--check"],
    },
    Step {
        label: "lints",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        label: "lints (core without std)",
        args: &[
            "clippy",
            "-p",
            "hush-core",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        label: "core for wasm32 (no_std)",
        args: &[
            "build",
            "-p",
            "hush-core",
            "--target",
            "wasm32-unknown-unknown",
            "--no-default-features",
        ],
    },
    Step {
        label: "tests",
        args: &["test", "--workspace"],
    },
    Step {
        label: "tests (core single-threaded, no std)",
        args: &["test", "-p", "hush-core", "--no-default-features"],
    },
    Step {
        label: "benchmark smoke run",
        args: &[
            "run",
            "--release",
            "-p",
            "hush-server",
            "--",
            "bench",
            "--reps",
            "1",
        ],
    },
    Step {
        label: "benchmark smoke run: models over WebSockets",
        args: &[
            "run",
            "--release",
            "-p",
            "hush-server",
            "--",
            "bench",
            "--suite",
            "net",
            "--reps",
            "1",
        ],
    },
];

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask test    run every check CI runs");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") if args.len() == 1 => test(),
        _ => usage(),
    }
}

fn test() -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let start = Instant::now();
    for (i, step) in STEPS.iter().enumerate() {
        println!(
            "\n==> [{}/{}] {}: cargo {}",
            i + 1,
            STEPS.len(),
            step.label,
            step.args.join(" ")
        );
        let t = Instant::now();
        let status = Command::new(&cargo).args(step.args).status();
        match status {
            Ok(s) if s.success() => println!("==> {} ok in {:.0?}", step.label, t.elapsed()),
            Ok(s) => {
                eprintln!("==> {} FAILED ({s})", step.label);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("==> {}: could not run cargo: {e}", step.label);
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "\nall {} checks passed in {:.0?}",
        STEPS.len(),
        start.elapsed()
    );
    ExitCode::SUCCESS
}
