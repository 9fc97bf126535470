//! `cargo xtask test`: every check of the project, in the order CI runs them.
//! `cargo xtask wasm`: builds the browser package into `wasm/pkg/`.
//!
//! Each step is an ordinary command printed before it runs, so a failure can
//! be reproduced by copying one line.

mod linkem;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// One check: a label and what it runs.
struct Step {
    label: &'static str,
    run: Run,
}

/// What a step runs: cargo with these arguments, another program, or a
/// task of this file (with the command line that runs it alone).
enum Run {
    Cargo(&'static [&'static str]),
    Program(&'static str, &'static [&'static str]),
    Task(&'static str, fn() -> Result<(), String>),
}

const STEPS: &[Step] = &[
    Step {
        label: "format",
        run: Run::Cargo(&["fmt", "--all", "--check"]),
    },
    Step {
        label: "lints",
        run: Run::Cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    },
    Step {
        label: "lints (core without std)",
        run: Run::Cargo(&[
            "clippy",
            "-p",
            "hush-core",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    },
    Step {
        label: "lints (browser package for wasm32)",
        run: Run::Cargo(&[
            "clippy",
            "-p",
            "hush-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]),
    },
    Step {
        label: "browser package (wasm-bindgen into wasm/pkg)",
        run: Run::Task("cargo xtask wasm", wasm),
    },
    Step {
        label: "core for wasm32 (no_std)",
        run: Run::Cargo(&[
            "build",
            "-p",
            "hush-core",
            "--target",
            "wasm32-unknown-unknown",
            "--no-default-features",
        ]),
    },
    Step {
        label: "tests",
        run: Run::Cargo(&["test", "--workspace"]),
    },
    Step {
        label: "tests (core single-threaded, no std)",
        run: Run::Cargo(&["test", "-p", "hush-core", "--no-default-features"]),
    },
    Step {
        label: "benchmark smoke run",
        run: Run::Cargo(&[
            "run",
            "--release",
            "-p",
            "hush-server",
            "--",
            "bench",
            "--reps",
            "1",
        ]),
    },
    Step {
        label: "benchmark smoke run: models over WebSockets",
        run: Run::Cargo(&[
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
        ]),
    },
    Step {
        label: "benchmark smoke run: GPU backend throughput, both arithmetic variants (lavapipe)",
        run: Run::Cargo(&[
            "run",
            "--release",
            "-p",
            "hush-server",
            "--",
            "bench",
            "--suite",
            "gpu",
            "--gemm-size",
            "256",
            "--reps",
            "1",
            "--gemm-cpu",
        ]),
    },
    Step {
        label: "benchmark report generator (docs/BENCHMARKS.md) tests",
        run: Run::Program("python3", &["-m", "unittest", "bench/test_report.py"]),
    },
    Step {
        label: "benchmark smoke run: two processes over an emulated WAN (skipped without namespaces)",
        run: Run::Program(
            "bash",
            &[
                "bench/net.sh",
                "wan10",
                "--suite",
                "models",
                "--filter",
                "digits",
                "--reps",
                "1",
            ],
        ),
    },
    Step {
        label: "benchmark smoke run: dealer, server and client processes end to end",
        run: Run::Program(
            "bash",
            &["bench/net.sh", "loopback", "--e2e", "--repeat", "1"],
        ),
    },
    Step {
        label: "browser package tests in headless Chromium (wasm-bindgen-test)",
        run: Run::Task("cargo xtask wasm-test", wasm_test),
    },
    Step {
        label: "browser test dependencies (playwright-core, typescript)",
        run: Run::Program(
            "npm",
            &["ci", "--prefix", "tests/browser", "--no-audit", "--no-fund"],
        ),
    },
    Step {
        label: "browser tests (headless Chromium against real dealer and server)",
        run: Run::Task("node tests/browser/e2e.mjs", browser_e2e),
    },
];

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask test    run every check CI runs");
    eprintln!("       cargo xtask wasm    build the browser package into wasm/pkg/");
    eprintln!("       cargo xtask wasm-test  the wasm crate's tests in headless Chromium");
    eprintln!(
        "       cargo xtask linkem --listen A --to B --delay-ms D --rate-mbit R   userspace WAN relay (bench/net.sh)"
    );
    ExitCode::from(2)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The environment every step runs in: the GPU backend's tests must run (on
/// lavapipe where there is no GPU; .ci/run installs it), not skip; and wgpu
/// wants a private runtime directory.
fn step_env(cmd: &mut Command) -> &mut Command {
    cmd.env("HUSH_GPU_TESTS", "require");
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hush-xdg-runtime");
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            cmd.env("XDG_RUNTIME_DIR", &dir);
        }
    }
    cmd
}

/// " (N GiB free on disk)" for the build directory, or nothing where `df`
/// cannot tell.
fn disk_free() -> String {
    let dir = target_dir();
    let dir = if dir.exists() {
        dir
    } else {
        PathBuf::from(".")
    };
    let avail_kib = Command::new("df")
        .arg("-Pk")
        .arg(&dir)
        .output()
        .ok()
        .and_then(|o| {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.lines()
                .nth(1)?
                .split_whitespace()
                .nth(3)?
                .parse::<u64>()
                .ok()
        });
    match avail_kib {
        Some(k) => format!(" ({:.1} GiB free on disk)", k as f64 / (1024.0 * 1024.0)),
        None => String::new(),
    }
}

fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let cmd = step_env(cmd);
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{shown} failed ({s})")),
        Err(e) => Err(format!("could not run {shown}: {e}")),
    }
}

/// The wasm-bindgen version pinned in Cargo.lock.
fn pinned_wasm_bindgen() -> Result<String, String> {
    let lock = std::fs::read_to_string("Cargo.lock").map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_string());
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

/// Debian's Chromium, which the browser tests drive.
fn chromium() -> Result<String, String> {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&path).exists() {
        Ok(path)
    } else {
        Err(format!(
            "the browser tests need Chromium at {path}: apt-get install chromium chromium-driver \
             (.ci/run does it), or set CHROMIUM"
        ))
    }
}

/// The browser end-to-end tests (Node, playwright-core, Chromium).
fn browser_e2e() -> Result<(), String> {
    chromium()?;
    run_checked(Command::new("node").arg("tests/browser/e2e.mjs"))
}

/// Runs the wasm crate's tests in headless Chromium: wasm-bindgen-test-runner
/// drives Debian's Chromium through chromedriver (`wasm/webdriver.json`).
fn wasm_test() -> Result<(), String> {
    chromium()?;
    run_checked(
        Command::new(cargo())
            .current_dir("wasm")
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                "wasm-bindgen-test-runner",
            )
            // The WebGPU tests run on SwiftShader (a CPU): longer than the
            // runner's default 20 s per test on a small machine.
            .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
            .env(
                "CHROMEDRIVER",
                std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
            )
            .args([
                "test",
                "-p",
                "hush-wasm",
                "--target",
                "wasm32-unknown-unknown",
            ]),
    )
}

/// Builds `hush-wasm` for the browser and runs wasm-bindgen into
/// `wasm/pkg/`, with the package's own files from `wasm/js/`.
fn wasm() -> Result<(), String> {
    let want = pinned_wasm_bindgen()?;
    let have = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if have != format!("wasm-bindgen {want}") {
        // Its version must equal the crate's; no --locked against the
        // registry mirror (shared/ENVIRONMENT.md).
        println!("installing wasm-bindgen-cli {want} (found {have:?})");
        run_checked(Command::new(cargo()).args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &want,
        ]))?;
    }
    run_checked(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    run_checked(Command::new(cargo()).args([
        "build",
        "-p",
        "hush-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm",
    ]))?;
    let wasm = target_dir().join("wasm32-unknown-unknown/wasm/hush_wasm.wasm");
    let pkg = Path::new("wasm/pkg");
    run_checked(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--out-dir"])
            .arg(pkg)
            .arg(&wasm),
    )?;
    for f in ["hush.js", "hush.d.ts", "package.json", "README.md"] {
        std::fs::copy(Path::new("wasm/js").join(f), pkg.join(f))
            .map_err(|e| format!("wasm/js/{f}: {e}"))?;
    }
    let changed = Command::new("git")
        .args(["status", "--porcelain", "--", "wasm/pkg"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if changed {
        println!("note: wasm/pkg/ differs from the commit; hush serve embeds it, so commit it");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") if args.len() == 1 => test(),
        Some("wasm-test") if args.len() == 1 => task("wasm-test", wasm_test),
        Some("wasm") if args.len() == 1 => task("wasm", wasm),
        Some("linkem") => match linkem::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask linkem: {e}");
                ExitCode::FAILURE
            }
        },
        _ => usage(),
    }
}

/// Runs one task alone, reporting its error.
fn task(name: &str, f: fn() -> Result<(), String>) -> ExitCode {
    match f() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn test() -> ExitCode {
    let start = Instant::now();

    for (i, step) in STEPS.iter().enumerate() {
        let shown = match &step.run {
            Run::Cargo(args) => format!("cargo {}", args.join(" ")),
            Run::Program(p, args) => format!("{p} {}", args.join(" ")),
            Run::Task(line, _) => line.to_string(),
        };
        println!(
            "\n==> [{}/{}] {}: {shown}{}",
            i + 1,
            STEPS.len(),
            step.label,
            disk_free()
        );
        let t = Instant::now();
        let result = match step.run {
            Run::Cargo(args) => run_checked(Command::new(cargo()).args(args)),
            Run::Program(p, args) => run_checked(Command::new(p).args(args)),
            Run::Task(_, f) => f(),
        };
        match result {
            Ok(()) => println!("==> {} ok in {:.0?}", step.label, t.elapsed()),
            Err(e) => {
                // A full disk shows up as a linker crash (SIGBUS), not as
                // "no space left": say how much is free.
                eprintln!("==> {} FAILED{}: {e}", step.label, disk_free());
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
