//! The `models` suite: whole networks under MPC, one thread per party.
//! The one-time weight setup (masks opened once per session) is reported
//! apart from the per-query online phase; offline is the correlation
//! generation of one query (setup and inference) by the dealer and parties.

use super::Report;
use hush_core::FixedPoint;
use hush_core::backend::CpuBackend;
use hush_core::channel::CommStats;
use hush_core::channel::threaded::run_parties_threaded;
use hush_core::plan::{Plan, Weights, secure};
use hush_core::preprocessing::seeded::{SeededDealer, draws, in_process};
use hush_core::preprocessing::{Pregenerated, Preprocessing, Recorder};
use hush_core::protocol::{Config, Party};
use hush_onnx::{ImportOptions, import};
use hush_server::npy;
use ndarray::ArrayD;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hush_server::model::BoxError;

/// A model workload: the plan, the owner's weights, one input and, when
/// known, onnxruntime's output for it.
pub(crate) struct ModelCase {
    pub name: &'static str,
    pub source: Source,
}

/// Where a benchmark model comes from.
pub(crate) enum Source {
    /// An ONNX file, an input, and onnxruntime's output when known.
    Onnx {
        onnx: &'static [u8],
        input: &'static [u8],
        reference: Option<&'static [u8]>,
    },
    /// A plan built in code (large models), compared with the plaintext
    /// evaluator.
    Built(fn() -> (Plan, Weights, ArrayD<f64>)),
}

pub(crate) fn cases() -> Vec<ModelCase> {
    vec![
        ModelCase {
            name: "digits CNN 1x1x8x8",
            source: Source::Onnx {
                onnx: include_bytes!("../../../models/digits/digits.onnx"),
                input: include_bytes!("../../../models/test/digit7.npy"),
                reference: None,
            },
        },
        ModelCase {
            name: "LeNet-5 1x1x28x28",
            source: Source::Onnx {
                onnx: include_bytes!("../../../models/test/lenet5.onnx"),
                input: include_bytes!("../../../models/test/lenet5.input.npy"),
                reference: Some(include_bytes!("../../../models/test/lenet5.ort.npy")),
            },
        },
        ModelCase {
            name: "ResNet-style (small) 1x3x32x32",
            source: Source::Onnx {
                onnx: include_bytes!("../../../models/test/resnet_small.onnx"),
                input: include_bytes!("../../../models/test/resnet_small.input.npy"),
                reference: Some(include_bytes!("../../../models/test/resnet_small.ort.npy")),
            },
        },
        ModelCase {
            name: "transformer encoder 1x8x16",
            source: Source::Onnx {
                onnx: include_bytes!("../../../models/test/transformer.onnx"),
                input: include_bytes!("../../../models/test/transformer.input.npy"),
                reference: Some(include_bytes!("../../../models/test/transformer.ort.npy")),
            },
        },
        ModelCase {
            name: "ResNet-18 1x3x32x32",
            source: Source::Built(|| hush_server::resnet::resnet18(32)),
        },
        ModelCase {
            name: "ResNet-18 1x3x224x224",
            source: Source::Built(|| hush_server::resnet::resnet18(224)),
        },
    ]
}

pub(crate) struct Once {
    pub online: Duration,
    setup: Duration,
    comm: Vec<CommStats>,
    setup_comm: Vec<CommStats>,
    output: Option<ArrayD<f64>>,
}

pub(crate) fn run_once<P: Preprocessing + Send>(
    plan: &Plan,
    weights: &Weights,
    x: &ArrayD<f64>,
    preps: Vec<P>,
) -> Result<(Once, Vec<P>), BoxError> {
    let config = Config {
        fixed_point: FixedPoint::new(plan.frac_bits)?,
        ..Config::default()
    };
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let times = Mutex::new((Duration::ZERO, Duration::ZERO));
    let results = run_parties_threaded(preps, |ch, prep| {
        let times = &times;
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, config).await?;
            let me = p.id();
            let (t0, s0) = (Instant::now(), p.stats());
            let session = secure::setup(&mut p, plan, roles, (me == 1).then_some(weights)).await?;
            let (setup_t, setup_c) = (t0.elapsed(), p.stats().since(&s0));
            let (t1, s1) = (Instant::now(), p.stats());
            let inputs = [x.clone()];
            let out = secure::evaluate(
                &mut p,
                plan,
                roles,
                &session,
                (me == 0).then_some(&inputs[..]),
            )
            .await?;
            let (online_t, online_c) = (t1.elapsed(), p.stats().since(&s1));
            {
                let mut g = times.lock().unwrap_or_else(|e| e.into_inner());
                g.0 = g.0.max(setup_t);
                g.1 = g.1.max(online_t);
            }
            let (_, prep, _) = p.into_parts();
            Ok((out, setup_c, online_c, prep))
        }
    });
    let (setup, online) = *times.lock().unwrap_or_else(|e| e.into_inner());
    let mut once = Once {
        online,
        setup,
        comm: Vec::new(),
        setup_comm: Vec::new(),
        output: None,
    };
    let mut back = Vec::new();
    for r in results {
        let (out, sc, oc, prep) = r?;
        if let Some(mut o) = out {
            once.output = o.drain(..).next();
        }
        once.setup_comm.push(sc);
        once.comm.push(oc);
        back.push(prep);
    }
    Ok((once, back))
}

/// A case's plan, weights, input, reference output and what made it.
type Loaded = (
    Plan,
    Weights,
    ArrayD<f64>,
    Option<ArrayD<f64>>,
    &'static str,
);

/// Materializes a case.
pub(crate) fn load(case: &ModelCase) -> Result<Loaded, BoxError> {
    Ok(match &case.source {
        Source::Onnx {
            onnx,
            input,
            reference,
        } => {
            let m = import(onnx, &ImportOptions::default())?;
            let r = reference.map(npy::read).transpose()?;
            (m.plan, m.weights, npy::read(input)?, r, "onnxruntime")
        }
        Source::Built(build) => {
            let (p, w, x) = build();
            let r = hush_core::plan::plain::evaluate(&p, &w, std::slice::from_ref(&x))?.remove(0);
            (p, w, x, Some(r), "the plaintext evaluator")
        }
    })
}

/// Measures one model.
pub(crate) fn measure(case: &ModelCase, reps: usize) -> Result<Report, BoxError> {
    let (plan, weights, x, reference, compared_with) = load(case)?;
    struct M {
        plan: Plan,
        weights: Weights,
    }
    let m = M { plan, weights };
    let seeds = SeededDealer::<CpuBackend>::random_seeds(2)?;
    let recorders: Vec<_> = in_process(&seeds, CpuBackend)
        .into_iter()
        .map(Recorder::new)
        .collect();
    let (_, recs) = run_once(&m.plan, &m.weights, &x, recorders)?;
    let requests = recs
        .into_iter()
        .next()
        .map(|r| r.into_parts().1)
        .unwrap_or_default();
    let dealer_bytes = requests
        .iter()
        .map(|r| {
            draws(r)
                .map(|d| d.correction_elements() as u64 * 8)
                .unwrap_or(0)
        })
        .sum();
    let mut report = Report {
        name: case.name.to_string(),
        parties: 2,
        online: Vec::new(),
        offline: Vec::new(),
        comm: Vec::new(),
        dealer_bytes,
        setup: None,
        note: String::new(),
    };
    let mut max_err: f64 = 0.0;
    for _ in 0..reps {
        let seeds = SeededDealer::<CpuBackend>::random_seeds(2)?;
        let t = Instant::now();
        let pregen = in_process(&seeds, CpuBackend)
            .into_iter()
            .map(|mut p| super::ready(Pregenerated::generate(&mut p, &requests)))
            .collect::<hush_core::Result<Vec<_>>>()?;
        report.offline.push(t.elapsed());
        let (once, _) = run_once(&m.plan, &m.weights, &x, pregen)?;
        report.online.push(once.online);
        report.comm = once.comm;
        report.setup = Some((once.setup, once.setup_comm));
        if let (Some(y), Some(r)) = (&once.output, &reference) {
            let e = y
                .iter()
                .zip(r.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f64, f64::max);
            max_err = max_err.max(e);
        }
    }
    if reference.is_some() {
        report.note = format!("max |output − {compared_with}| = {max_err:.1e}");
    }
    Ok(report)
}
