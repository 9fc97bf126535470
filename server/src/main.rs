//! `hush`: the Hush command-line tool.
//!
//! `hush serve` (the model server, party P1), `hush dealer` (the dealer
//! service), `hush infer` (the native client, party P0), `hush run` (a model
//! under MPC with every party in this process), `hush inspect` (a model's
//! plan), `hush bench` and `hush accuracy`.

mod accuracy;
mod bench;
mod run;

/// mimalloc keeps freed pages for reuse: the protocols allocate tensors of
/// many megabytes per layer, and glibc's allocator returns them to the OS and
/// pays page faults to get them back (measured: most of a 1e6-element mul).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its index in `mi_option_t`, the same in
/// mimalloc 2 and 3; `libmimalloc-sys` names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process before it goes back to the
/// OS. mimalloc's default (1 s, and sooner when a thread exits) gave the
/// pages of one query back before the next could reuse them: a fifth of the
/// online CPU time of a sigmoid over 1e5 values went to page faults. Ten
/// seconds keeps them across back-to-back queries and still returns them
/// when the server idles. `MIMALLOC_PURGE_DELAY` (milliseconds) overrides.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores a value in mimalloc's option table
    // (atomically; it may be called at any time, from any thread), and any
    // value is valid for `purge_delay`.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
    }
}

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hush",
    version,
    about = "Private neural-network inference by secure two-party computation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a model to clients over WebSockets (party P1).
    Serve(hush_server::net::serve::ServeArgs),
    /// Run the dealer service that supplies correlated randomness.
    Dealer(hush_server::net::dealer::DealerArgs),
    /// Evaluate a served model privately on a local input (party P0).
    Infer(hush_server::net::infer::InferArgs),
    /// Benchmarks: time, bytes per party and rounds of the core protocols.
    Bench(bench::BenchArgs),
    /// Accuracy of the non-linear functions against f64 (docs/ACCURACY.md).
    Accuracy(accuracy::AccuracyArgs),
    /// Run a model on an input with every party and the dealer in this process.
    Run(run::RunArgs),
    /// Print a model's plan: ops, shapes, parameter count, commitment.
    Inspect(run::InspectArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => hush_server::net::serve::run(args),
        Command::Dealer(args) => hush_server::net::dealer::run(args),
        Command::Infer(args) => hush_server::net::infer::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Accuracy(args) => accuracy::run(args),
        Command::Run(args) => run::run(args),
        Command::Inspect(args) => run::inspect(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hush: {e}");
            ExitCode::FAILURE
        }
    }
}
