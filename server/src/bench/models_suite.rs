//! The `models` suite: whole networks under MPC, one thread per party.
//! The one-time weight setup (masks opened once per session) is reported
//! apart from the per-query online phase; offline is the correlation
//! generation of one query (setup and inference) by the dealer and parties.
//! Each output is compared with onnxruntime's (or, for models built in
//! code, the plaintext evaluator's).

use super::parties::{Job, Parties};
use super::{Report, reset_peak_memory};
use hush_core::FixedPoint;
use hush_core::channel::{Channel, CommStats};
use hush_core::plan::{Plan, Weights, secure};
use hush_core::preprocessing::seeded::draws;
use hush_core::preprocessing::{Pregenerated, Preprocessing, Recorder};
use hush_core::protocol::{Config, Party};
use hush_onnx::{ImportOptions, import};
use hush_server::model::{BoxError, peak_memory};
use hush_server::npy;
use ndarray::ArrayD;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A model workload: the plan, the owner's weights, one input and, when
/// known, onnxruntime's output for it.
pub(crate) struct ModelCase {
    pub name: &'static str,
    pub source: Source,
}

/// The file names bench/crypten/models.py gives each model (`<key>.onnx`).
const KEYS: &[(&str, &str)] = &[
    ("digits CNN 1x1x8x8", "digits"),
    ("LeNet-5 1x1x28x28", "lenet5"),
    ("transformer encoder 1x8x16", "transformer"),
    ("ResNet-18 1x3x32x32", "resnet18-32"),
    ("ResNet-18 1x3x224x224", "resnet18-224"),
    ("ResNet-50 1x3x224x224", "resnet50-224"),
];

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
    /// `<stem>.onnx`, `<stem>.input.npy` and `<stem>.ort.npy`.
    Files(PathBuf),
}

/// The suite's models; with `dir`, those of [`KEYS`] come from its files.
pub(crate) fn cases(dir: Option<&Path>) -> Result<Vec<ModelCase>, BoxError> {
    let mut cases = builtin_cases();
    if let Some(dir) = dir {
        if !dir.is_dir() {
            return Err(format!(
                "--models-dir {}: no such folder (bench/crypten/models.py writes it)",
                dir.display()
            )
            .into());
        }
        for case in &mut cases {
            if let Some((_, key)) = KEYS.iter().find(|(n, _)| *n == case.name) {
                // A missing file is reported when (and only if) the case runs.
                case.source = Source::Files(dir.join(key));
            }
        }
    }
    Ok(cases)
}

pub(crate) fn builtin_cases() -> Vec<ModelCase> {
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
        ModelCase {
            name: "ResNet-50 1x3x224x224",
            source: Source::Built(|| hush_server::resnet::resnet50(224)),
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

/// One party's run of a model: weight setup, then one inference.
struct ModelJob<'a> {
    plan: &'a Plan,
    weights: &'a Weights,
    x: &'a ArrayD<f64>,
    /// Slowest setup and online time of the parties run here.
    times: Mutex<(Duration, Duration)>,
}

/// What one party saw: the output (the client's), setup and online traffic.
type PartyRun = (Option<ArrayD<f64>>, CommStats, CommStats);

impl<P: Preprocessing> Job<P> for ModelJob<'_> {
    type Output = PartyRun;
    async fn run<C: Channel>(&self, ch: C, prep: P) -> hush_core::Result<(PartyRun, C, P)> {
        let config = Config {
            fixed_point: FixedPoint::new(self.plan.frac_bits)?,
            ..Config::default()
        };
        let roles = secure::Roles {
            owner: 1,
            client: 0,
        };
        let mut p = Party::new(ch, prep, super::compute(), config).await?;
        let me = p.id();
        super::barrier(&mut p).await?;
        let (t0, s0) = (Instant::now(), p.stats());
        let session =
            secure::setup(&mut p, self.plan, roles, (me == 1).then_some(self.weights)).await?;
        let (setup_t, setup_c) = (t0.elapsed(), p.stats().since(&s0));
        super::barrier(&mut p).await?;
        let (t1, s1) = (Instant::now(), p.stats());
        let inputs = [self.x.clone()];
        let out = secure::evaluate(
            &mut p,
            self.plan,
            roles,
            &session,
            (me == 0).then_some(&inputs[..]),
        )
        .await?;
        let (online_t, online_c) = (t1.elapsed(), p.stats().since(&s1));
        {
            let mut g = self.times.lock().unwrap_or_else(|e| e.into_inner());
            g.0 = g.0.max(setup_t);
            g.1 = g.1.max(online_t);
        }
        let (ch, prep, _) = p.into_parts();
        let out = out.and_then(|mut o| o.drain(..).next());
        Ok(((out, setup_c, online_c), ch, prep))
    }
}

/// Runs setup and one inference with the given preprocessing (one per
/// party run here).
pub(crate) fn run_once<P: Preprocessing + Send>(
    parties: &mut Parties,
    plan: &Plan,
    weights: &Weights,
    x: &ArrayD<f64>,
    preps: Vec<P>,
) -> Result<(Once, Vec<P>), BoxError> {
    let job = ModelJob {
        plan,
        weights,
        x,
        times: Mutex::new((Duration::ZERO, Duration::ZERO)),
    };
    let results = parties.run(preps, &job)?;
    let (setup, online) = *job.times.lock().unwrap_or_else(|e| e.into_inner());
    let mut once = Once {
        online,
        setup,
        comm: Vec::new(),
        setup_comm: Vec::new(),
        output: None,
    };
    let mut back = Vec::new();
    for ((out, sc, oc), prep) in results {
        if out.is_some() {
            once.output = out;
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
        Source::Files(stem) => {
            let read = |ext: &str| {
                let path = stem.with_extension(ext);
                std::fs::read(&path).map_err(|e| {
                    format!(
                        "{}: {e} (bench/crypten/models.py writes the benchmark models)",
                        path.display()
                    )
                })
            };
            let m = import(&read("onnx")?, &ImportOptions::default())?;
            let x = npy::read(&read("input.npy")?)?;
            let r = npy::read(&read("ort.npy")?)?;
            (m.plan, m.weights, x, Some(r), "onnxruntime")
        }
        Source::Built(build) => {
            let (p, w, x) = build();
            let r = hush_core::plan::plain::evaluate(&p, &w, std::slice::from_ref(&x))?.remove(0);
            (p, w, x, Some(r), "the plaintext evaluator")
        }
    })
}

/// Measures one model.
pub(crate) fn measure(
    parties: &mut Parties,
    case: &ModelCase,
    reps: usize,
) -> Result<Report, BoxError> {
    let (plan, weights, x, reference, compared_with) = load(case)?;
    let recorders: Vec<_> = parties.preps()?.into_iter().map(Recorder::new).collect();
    let (_, recs) = run_once(parties, &plan, &weights, &x, recorders)?;
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
    let mut report = Report::new(case.name, dealer_bytes);
    report.error_against = compared_with;
    reset_peak_memory();
    let mut max_err: Option<f64> = None;
    for _ in 0..reps {
        let preps = parties.preps()?;
        let t = Instant::now();
        let pregen = preps
            .into_iter()
            .map(|mut p| super::ready(Pregenerated::generate(&mut p, &requests)))
            .collect::<hush_core::Result<Vec<_>>>()?;
        report.offline.push(t.elapsed());
        let (once, _) = run_once(parties, &plan, &weights, &x, pregen)?;
        report.online.push(once.online);
        report.comm = once.comm;
        report.setup = Some((once.setup, once.setup_comm));
        if let (Some(y), Some(r)) = (&once.output, &reference) {
            if y.len() != r.len() {
                return Err(format!(
                    "{}: {} outputs, the reference has {}",
                    case.name,
                    y.len(),
                    r.len()
                )
                .into());
            }
            let e = y
                .iter()
                .zip(r.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f64, f64::max);
            max_err = Some(max_err.unwrap_or(0.0).max(e));
        }
    }
    report.peak_memory = peak_memory().into_iter().collect();
    report.max_error = max_err;
    super::gather(parties, &mut report)?;
    if let Some(e) = report.max_error {
        report.note = format!("max |output − {compared_with}| = {e:.1e}");
    }
    Ok(report)
}
