//! `hush run` and `hush inspect`: a model under MPC with every party in this
//! process, and a model's plan in words.

use clap::Args;
use hush_core::FixedPoint;
use hush_core::backend::CpuBackend;
use hush_core::channel::CommStats;
use hush_core::channel::threaded::run_parties_threaded;
use hush_core::plan::{Plan, Weights, plain, secure};
use hush_core::preprocessing::seeded::{SeededDealer, in_process};
use hush_core::protocol::{Config, Party};
use hush_gpu::Compute;
use hush_server::compute::BackendArgs;
use hush_server::inputs::{InputArg, arrange, parse_input, save_and_print};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

use hush_server::model::{BoxError, hex, io_names, load, peak_memory};

/// Options of `hush run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// ONNX model (default: the embedded digits CNN).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Input tensor (.npy), once per model input: `PATH` in the model's
    /// input order (`hush inspect` lists them) or `NAME=PATH`. Its shape
    /// overrides the model's input shape.
    #[arg(long, required = true, value_parser = parse_input)]
    input: Vec<InputArg>,
    /// Where to write an output (.npy, float32), once per output to keep,
    /// in the model's output order.
    #[arg(long)]
    output: Vec<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Evaluate in plaintext (f64) instead of under MPC.
    #[arg(long)]
    plaintext: bool,
    /// Where both parties' products run (the dealer stays on the CPU).
    #[command(flatten)]
    compute: BackendArgs,
}

/// Options of `hush inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// ONNX model (default: the embedded digits CNN).
    model: Option<PathBuf>,
}

/// Runs `hush inspect`.
pub fn inspect(args: InspectArgs) -> Result<(), BoxError> {
    let m = load(&args.model, &[])?;
    let p = &m.plan;
    println!("model       {}", p.name);
    println!("fixed point {} fractional bits", p.frac_bits);
    for &i in &p.inputs {
        println!("input       {} {:?}", p.values[i].name, p.values[i].shape);
    }
    for &o in &p.outputs {
        println!("output      {} {:?}", p.values[o].name, p.values[o].shape);
    }
    println!("parameters  {}", p.parameter_count());
    println!("commitment  sha256:{}", hex(&p.commitment));
    println!("plan        {} bytes serialized", p.to_bytes()?.len());
    println!("nodes:");
    for n in &p.nodes {
        println!(
            "  {:<18} {:<28} -> {:?}",
            n.op.name(),
            n.name,
            p.values[n.output].shape
        );
    }
    Ok(())
}

struct SecureRun {
    outputs: Vec<ndarray::ArrayD<f64>>,
    setup: Vec<CommStats>,
    online: Vec<CommStats>,
    setup_s: f64,
    online_s: f64,
}

fn run_secure(
    plan: &Plan,
    weights: &Weights,
    inputs: &[ndarray::ArrayD<f64>],
    compute: &Compute,
) -> Result<SecureRun, BoxError> {
    let config = Config {
        fixed_point: FixedPoint::new(plan.frac_bits)?,
        ..Config::default()
    };
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let seeds = SeededDealer::<CpuBackend>::random_seeds(2)?;
    let preps = in_process(&seeds, CpuBackend);
    let results = run_parties_threaded(preps, |ch, prep| {
        let inputs = inputs.to_vec();
        async move {
            let mut p = Party::new(ch, prep, compute.clone(), config).await?;
            let me = p.id();
            let t = Instant::now();
            let s0 = p.stats();
            let session =
                secure::setup(&mut p, plan, roles, (me == roles.owner).then_some(weights)).await?;
            let setup = (p.stats().since(&s0), t.elapsed().as_secs_f64());
            let t = Instant::now();
            let s1 = p.stats();
            let out = secure::evaluate(
                &mut p,
                plan,
                roles,
                &session,
                (me == roles.client).then_some(&inputs[..]),
            )
            .await?;
            Ok((
                out,
                setup,
                (p.stats().since(&s1), t.elapsed().as_secs_f64()),
            ))
        }
    });
    let mut run = SecureRun {
        outputs: Vec::new(),
        setup: Vec::new(),
        online: Vec::new(),
        setup_s: 0.0,
        online_s: 0.0,
    };
    for r in results {
        let (out, (sc, st), (oc, ot)) = r?;
        if let Some(o) = out {
            run.outputs = o;
        }
        run.setup.push(sc);
        run.online.push(oc);
        run.setup_s = run.setup_s.max(st);
        run.online_s = run.online_s.max(ot);
    }
    Ok(run)
}

/// Runs `hush run`.
pub fn run(args: RunArgs) -> Result<(), BoxError> {
    let m = load(&args.model, &[])?;
    let (input_names, _) = io_names(&m.plan);
    let xs = arrange(&args.input, &input_names)?;
    // The files' shapes replace the model's (symbolic dimensions included):
    // imported again only where they differ.
    let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape().to_vec()).collect();
    let same = m
        .plan
        .inputs
        .iter()
        .map(|&i| &m.plan.values[i].shape)
        .eq(&shapes);
    let m = if same { m } else { load(&args.model, &shapes)? };
    let (_, output_names) = io_names(&m.plan);
    let start = Instant::now();
    let (outputs, report) = if args.plaintext {
        let y = plain::evaluate(&m.plan, &m.weights, &xs)?;
        let secs = start.elapsed().as_secs_f64();
        (y, json!({ "mode": "plaintext", "time_s": secs }))
    } else {
        let compute = args.compute.open()?;
        let r = run_secure(&m.plan, &m.weights, &xs, &compute)?;
        let per_party = |c: &[CommStats]| {
            c.iter()
                .map(|s| json!({ "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received }))
                .collect::<Vec<_>>()
        };
        let rounds = |c: &[CommStats]| c.iter().map(|s| s.rounds).max().unwrap_or(0);
        let report = json!({
            "mode": "mpc simulation: both parties and the dealer in this process (not a secure deployment)",
            "time_s": start.elapsed().as_secs_f64(),
            "backend": compute.describe(),
            "online": { "time_s": r.online_s, "rounds": rounds(&r.online), "parties": per_party(&r.online) },
            "weight_setup": { "time_s": r.setup_s, "rounds": rounds(&r.setup), "parties": per_party(&r.setup) },
        });
        (r.outputs, report)
    };
    let mut report = report;
    report["model"] = json!(m.plan.name);
    report["commitment"] = json!(format!("sha256:{}", hex(&m.plan.commitment)));
    report["peak_memory_bytes"] = json!(peak_memory());
    let y = outputs.first().ok_or("the model has no output")?;
    report["output_shape"] = json!(y.shape());
    report["outputs"] = outputs
        .iter()
        .zip(&output_names)
        .map(|(y, name)| json!({ "name": name, "shape": y.shape() }))
        .collect();
    if args.json {
        hush_server::inputs::save(&outputs, &args.output)?;
        println!("{report}");
    } else {
        println!(
            "model      {} ({})",
            m.plan.name,
            report["commitment"].as_str().unwrap_or("")
        );
        println!("mode       {}", report["mode"].as_str().unwrap_or(""));
        if let Some(b) = report.get("backend").and_then(|b| b.as_str()) {
            println!("backend    {b}");
        }
        println!(
            "time       {:.3} s",
            report["time_s"].as_f64().unwrap_or(0.0)
        );
        if let Some(o) = report.get("online") {
            println!(
                "online     {:.3} s, {} rounds",
                o["time_s"].as_f64().unwrap_or(0.0),
                o["rounds"]
            );
            for (i, p) in o["parties"].as_array().into_iter().flatten().enumerate() {
                println!(
                    "  party {i}  sent {} B, received {} B",
                    p["bytes_sent"], p["bytes_received"]
                );
            }
            let s = &report["weight_setup"];
            println!(
                "weights    {:.3} s, {} rounds (once per session)",
                s["time_s"].as_f64().unwrap_or(0.0),
                s["rounds"]
            );
            for (i, p) in s["parties"].as_array().into_iter().flatten().enumerate() {
                println!("  party {i}  sent {} B", p["bytes_sent"]);
            }
        }
        if let Some(pm) = report["peak_memory_bytes"].as_u64() {
            println!("peak mem   {:.1} MB", pm as f64 / 1e6);
        }
        save_and_print(&outputs, &output_names, &args.output)?;
    }
    Ok(())
}
