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
