//! The `core` suite: the products and truncations of the MPC core at the
//! sizes of the CrypTen reference table.

use super::Report;
use hush_core::Result as CoreResult;
use hush_core::backend::{Conv2dParams, CpuBackend};
use hush_core::bilinear::BilinearOp;
use hush_core::channel::threaded::run_parties_threaded;
use hush_core::channel::{Channel, CommStats};
use hush_core::preprocessing::seeded::{SeededDealer, draws, in_process};
use hush_core::preprocessing::{
    CorrelationRequest, FixedSide, Pregenerated, Preprocessing, Recorder,
};
use hush_core::prg::Prg;
use hush_core::protocol::{
    ApproxConfig, Config, FixedOperand, Party, PreparedFixed, TruncationMode,
};
use hush_core::share::Arith;
use hush_core::{ArithShare, FixedPoint, RingTensor};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hush_server::model::BoxError;
const PARTIES: usize = 2;

/// A named workload and how to measure it.
pub(crate) struct Entry {
    pub name: String,
    pub run: fn(usize) -> Result<Report, BoxError>,
}

/// One benchmarked computation: an untimed `prepare` (inputs, one-time
/// setup), then the timed `online` part.
#[allow(async_fn_in_trait)]
pub(crate) trait Workload {
    const NAME: &'static str;
    /// Whether `prepare` is a one-time setup whose cost is reported apart.
    const SETUP: bool = false;
    const CONFIG: Config = Config {
        fixed_point: FixedPoint::DEFAULT,
        truncation: TruncationMode::Dealer,
        approx: ApproxConfig::DEFAULT,
    };
    type State;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State>;
    /// Per-query local work that needs no input (timed into the offline figure).
    async fn precompute<C: Channel, P: Preprocessing>(
        _p: &mut Party<C, P, CpuBackend>,
        _s: &mut Self::State,
    ) -> CoreResult<()> {
        Ok(())
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()>;
}

fn entry<W: Workload>() -> Entry {
    Entry {
        name: W::NAME.to_string(),
        run: measure::<W>,
    }
}

pub(crate) fn workloads() -> Vec<Entry> {
    vec![
        entry::<Mul>(),
        entry::<MatMulSecret>(),
        entry::<MatMulWeightReuse>(),
        entry::<Conv2dSecret>(),
        entry::<Conv2dWeightReuse>(),
        entry::<TruncDealer>(),
        entry::<TruncLocal>(),
        entry::<Relu>(),
        entry::<Lt>(),
        entry::<Exp>(),
        entry::<Reciprocal>(),
        entry::<Sigmoid>(),
        entry::<Sqrt>(),
        entry::<Softmax>(),
    ]
}

/// Fixed-point values uniform in [-1, 1), as the owner's input.
fn values(shape: &[usize]) -> CoreResult<RingTensor> {
    let mut prg = Prg::from_entropy()?;
    let fp = FixedPoint::default();
    Ok(prg
        .tensor(shape)
        .mapv(|v| ((v as i64) >> (63 - fp.frac_bits())) as u64))
}

async fn input<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, CpuBackend>,
    owner: usize,
    shape: &[usize],
) -> CoreResult<ArithShare> {
    let v = if p.id() == owner {
        Some(values(shape)?)
    } else {
        None
    };
    p.input::<Arith>(owner, v.as_ref(), shape).await
}

async fn barrier<C: Channel, P: Preprocessing>(p: &mut Party<C, P, CpuBackend>) -> CoreResult<()> {
    let mut x = ArithShare::from_raw(RingTensor::zeros(ndarray::IxDyn(&[0])));
    x = ArithShare::from_raw(p.open(&x).await?);
    drop(x);
    Ok(())
}

/// Bytes of dealer corrections the last party receives for `requests`.
fn dealer_bytes(requests: &[CorrelationRequest]) -> u64 {
    requests
        .iter()
        .map(|r| {
            draws(r)
                .map(|d| d.correction_elements() as u64 * 8)
                .unwrap_or(0)
        })
        .sum()
}

struct Run {
    online: Duration,
    precompute: Duration,
    comm: Vec<CommStats>,
    setup: Option<(Duration, Vec<CommStats>)>,
}

/// Earliest and latest instants seen by any party.
#[derive(Default)]
struct Span(Mutex<(Option<Instant>, Option<Instant>)>);

impl Span {
    fn start(&self, t: Instant) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = Some(g.0.map_or(t, |s| s.min(t)));
    }
    fn end(&self, t: Instant) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.1 = Some(g.1.map_or(t, |s| s.max(t)));
    }
    fn duration(&self) -> Duration {
        match *self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }
}

/// Runs the workload once, one thread per party, with the given preprocessing.
fn run_once<W: Workload, P: Preprocessing + Send>(
    preps: Vec<P>,
) -> Result<(Run, Vec<P>), BoxError> {
    let (online, setup_span) = (Span::default(), Span::default());
    let precompute = Mutex::new(Duration::ZERO);
    let results = run_parties_threaded(preps, |ch, prep| {
        let (online, setup_span, precompute) = (&online, &setup_span, &precompute);
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, W::CONFIG).await?;
            barrier(&mut p).await?;
            setup_span.start(Instant::now());
            let before_setup = p.stats();
            let mut state = W::prepare(&mut p).await?;
            setup_span.end(Instant::now());
            let setup = p.stats().since(&before_setup);
            let t = Instant::now();
            W::precompute(&mut p, &mut state).await?;
            let took = t.elapsed();
            {
                let mut pre = precompute.lock().unwrap_or_else(|e| e.into_inner());
                *pre = (*pre).max(took);
            }
            barrier(&mut p).await?;
            online.start(Instant::now());
            let before = p.stats();
            W::online(&mut p, &mut state).await?;
            let comm = p.stats().since(&before);
            online.end(Instant::now());
            let (_, prep, _) = p.into_parts();
            Ok((comm, setup, prep))
        }
    });
    let mut comm = Vec::new();
    let mut setup = Vec::new();
    let mut preps_back = Vec::new();
    for r in results {
        let (c, s, p) = r?;
        comm.push(c);
        setup.push(s);
        preps_back.push(p);
    }
    let precompute = *precompute.lock().unwrap_or_else(|e| e.into_inner());
    Ok((
        Run {
            online: online.duration(),
            precompute,
            comm,
            setup: W::SETUP.then(|| (setup_span.duration(), setup)),
        },
        preps_back,
    ))
}

fn measure<W: Workload>(reps: usize) -> Result<Report, BoxError> {
    // Warm-up run that also learns the correlation requests.
    let recorders = in_process(
        &SeededDealer::<CpuBackend>::random_seeds(PARTIES)?,
        CpuBackend,
    )
    .into_iter()
    .map(Recorder::new)
    .collect();
    let (_, recorders) = run_once::<W, _>(recorders)?;
    let requests = recorders
        .into_iter()
        .next()
        .map(|r| r.into_parts().1)
        .unwrap_or_default();
    let mut report = Report {
        name: W::NAME.to_string(),
        parties: PARTIES,
        online: Vec::new(),
        offline: Vec::new(),
        comm: Vec::new(),
        dealer_bytes: dealer_bytes(&requests),
        setup: None,
        note: String::new(),
    };
    for _ in 0..reps {
        let seeds = SeededDealer::<CpuBackend>::random_seeds(PARTIES)?;
        let t = Instant::now();
        let pregen = in_process(&seeds, CpuBackend)
            .into_iter()
            .map(|mut p| super::ready(Pregenerated::generate(&mut p, &requests)))
            .collect::<CoreResult<Vec<_>>>()?;
        let offline = t.elapsed();
        let (run, _) = run_once::<W, _>(pregen)?;
        report.offline.push(offline + run.precompute);
        report.online.push(run.online);
        report.comm = run.comm;
        report.setup = run.setup;
    }
    Ok(report)
}

struct Mul;
impl Workload for Mul {
    const NAME: &'static str = "mul 1e6";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        Ok((
            input(p, 0, &[1_000_000]).await?,
            input(p, 1, &[1_000_000]).await?,
        ))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.mul(&s.0, &s.1).await.map(drop)
    }
}

struct MatMulSecret;
impl Workload for MatMulSecret {
    const NAME: &'static str = "matmul 512x512x512 (both secret)";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        Ok((
            input(p, 0, &[512, 512]).await?,
            input(p, 1, &[512, 512]).await?,
        ))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.matmul(&s.0, &s.1).await.map(drop)
    }
}

async fn fixed<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, CpuBackend>,
    shape: &[usize],
) -> CoreResult<FixedOperand> {
    let owner = PARTIES - 1;
    let w = if p.id() == owner {
        Some(values(shape)?)
    } else {
        None
    };
    p.fix_operand(owner, w.as_ref(), shape).await
}

/// A product with the server's weights: the mask is opened once (setup),
/// `op(B, E)` is folded in before the query (offline), and the query opens
/// only the activation.
struct Reuse {
    x: ArithShare,
    w: FixedOperand,
    prepared: Option<PreparedFixed>,
}

async fn reuse_prepare<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, CpuBackend>,
    x_shape: &[usize],
    w_shape: &[usize],
) -> CoreResult<Reuse> {
    let w = fixed(p, w_shape).await?;
    let x = input(p, 0, x_shape).await?;
    Ok(Reuse {
        x,
        w,
        prepared: None,
    })
}

async fn reuse_precompute<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, CpuBackend>,
    op: &BilinearOp,
    s: &mut Reuse,
) -> CoreResult<()> {
    s.prepared = Some(p.prepare_fixed(op, FixedSide::Rhs, &s.w).await?);
    Ok(())
}

async fn reuse_online<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, CpuBackend>,
    s: &mut Reuse,
) -> CoreResult<()> {
    let prepared = s
        .prepared
        .take()
        .ok_or_else(|| hush_core::Error::Usage("precompute did not run".into()))?;
    p.bilinear_fixed_prepared(prepared, &s.w, &s.x)
        .await
        .map(drop)
}

struct MatMulWeightReuse;
impl Workload for MatMulWeightReuse {
    const NAME: &'static str = "matmul 1x1024 . 1024x1024 (weights)";
    const SETUP: bool = true;
    type State = Reuse;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        reuse_prepare(p, &[1, 1024], &[1024, 1024]).await
    }
    async fn precompute<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        let op = BilinearOp::MatMul {
            lhs: vec![1, 1024],
            rhs: vec![1024, 1024],
        };
        reuse_precompute(p, &op, s).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        reuse_online(p, s).await
    }
}

const CONV_IN: [usize; 4] = [1, 64, 32, 32];
const CONV_K: [usize; 4] = [64, 64, 3, 3];
const CONV_P: Conv2dParams = Conv2dParams {
    stride: [1, 1],
    padding: [1; 4],
    dilation: [1, 1],
    groups: 1,
};

struct Conv2dSecret;
impl Workload for Conv2dSecret {
    const NAME: &'static str = "conv2d 1x64x32x32 * 64x3x3 (secret)";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        Ok((input(p, 0, &CONV_IN).await?, input(p, 1, &CONV_K).await?))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.conv2d(&s.0, &s.1, &CONV_P).await.map(drop)
    }
}

struct Conv2dWeightReuse;
impl Workload for Conv2dWeightReuse {
    const NAME: &'static str = "conv2d 1x64x32x32 * 64x3x3 (weights)";
    const SETUP: bool = true;
    type State = Reuse;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        reuse_prepare(p, &CONV_IN, &CONV_K).await
    }
    async fn precompute<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        let op = BilinearOp::Conv2d {
            input: CONV_IN,
            kernel: CONV_K,
            params: CONV_P,
        };
        reuse_precompute(p, &op, s).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        reuse_online(p, s).await
    }
}

struct TruncDealer;
impl Workload for TruncDealer {
    const NAME: &'static str = "truncation 1e6 (dealer)";
    type State = ArithShare;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        input(p, 0, &[1_000_000]).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.truncate(s).await.map(drop)
    }
}

struct TruncLocal;
impl Workload for TruncLocal {
    const NAME: &'static str = "truncation 1e6 (local, SecureML)";
    const CONFIG: Config = Config {
        fixed_point: FixedPoint::DEFAULT,
        truncation: TruncationMode::Local,
        approx: ApproxConfig::DEFAULT,
    };
    type State = ArithShare;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        input(p, 0, &[1_000_000]).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.truncate(s).await.map(drop)
    }
}

struct Relu;
impl Workload for Relu {
    const NAME: &'static str = "relu 1e6";
    type State = ArithShare;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        input(p, 0, &[1_000_000]).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.relu(s).await.map(drop)
    }
}

struct Lt;
impl Workload for Lt {
    const NAME: &'static str = "lt 1e6";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
    ) -> CoreResult<Self::State> {
        Ok((
            input(p, 0, &[1_000_000]).await?,
            input(p, 1, &[1_000_000]).await?,
        ))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, CpuBackend>,
        s: &mut Self::State,
    ) -> CoreResult<()> {
        p.lt(&s.0, &s.1).await.map(drop)
    }
}

/// Fixed-point values uniform in [lo, hi), as party 0's input.
async fn input_in<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, CpuBackend>,
    shape: &[usize],
    lo: f64,
    hi: f64,
) -> CoreResult<ArithShare> {
    let v = if p.id() == 0 {
        let mut prg = Prg::from_entropy()?;
        let fp = FixedPoint::default();
        let t = prg.tensor(shape);
        let mut out = t.clone();
        for (o, &r) in out.iter_mut().zip(t.iter()) {
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            *o = fp.encode(lo + (hi - lo) * u)?;
        }
        Some(out)
    } else {
        None
    };
    p.input::<Arith>(0, v.as_ref(), shape).await
}

/// A workload applying one unary protocol to inputs in a range.
macro_rules! unary_workload {
    ($ty:ident, $name:expr, $shape:expr, $lo:expr, $hi:expr, $method:ident) => {
        struct $ty;
        impl Workload for $ty {
            const NAME: &'static str = $name;
            type State = ArithShare;
            async fn prepare<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, CpuBackend>,
            ) -> CoreResult<Self::State> {
                input_in(p, &$shape, $lo, $hi).await
            }
            async fn online<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, CpuBackend>,
                s: &mut Self::State,
            ) -> CoreResult<()> {
                p.$method(s).await.map(drop)
            }
        }
    };
}

unary_workload!(Exp, "exp 1e5", [100_000], -8.0, 8.0, exp);
unary_workload!(
    Reciprocal,
    "reciprocal 1e5",
    [100_000],
    0.1,
    100.0,
    reciprocal
);
unary_workload!(Sigmoid, "sigmoid 1e5", [100_000], -8.0, 8.0, sigmoid);
unary_workload!(Sqrt, "sqrt 1e5", [100_000], 0.01, 100.0, sqrt);
unary_workload!(Softmax, "softmax 1000x100", [1000, 100], -9.0, 9.0, softmax);
