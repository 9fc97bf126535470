//! The `ops` suite: the products, truncations and nonlinear protocols of
//! the MPC core at the sizes of the CrypTen reference table. Each result is
//! opened after the timed part and compared with a float64 reference.

use super::parties::{Job, Parties};
use super::{Report, barrier, reset_peak_memory};
use hush_core::Result as CoreResult;
use hush_core::backend::Conv2dParams;
use hush_core::bilinear::BilinearOp;
use hush_core::bits::BitShare;
use hush_core::channel::{Channel, CommStats};
use hush_core::plan::{ConvAttrs, Node, Op, Plan, ValueInfo, WeightInfo, Weights};
use hush_core::preprocessing::seeded::draws;
use hush_core::preprocessing::{
    CorrelationRequest, FixedSide, Pregenerated, Preprocessing, Recorder,
};
use hush_core::prg::Prg;
use hush_core::protocol::{
    ApproxConfig, Config, FixedOperand, Party, PreparedFixed, TruncationMode,
};
use hush_core::share::{Arith, BinaryShare};
use hush_core::{ArithShare, FixedPoint, RingTensor};
use hush_gpu::Compute;
use hush_server::model::{BoxError, peak_memory};
use ndarray::{ArrayD, Ix2, IxDyn};
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PARTIES: usize = 2;

/// A named workload and how to measure it.
pub(crate) struct Entry {
    pub name: String,
    pub run: fn(&mut Parties, usize) -> Result<Report, BoxError>,
}

/// What a workload computed, to compare with its reference.
pub(crate) enum Output {
    /// A fixed-point result.
    Fixed(ArithShare),
    /// One bit per element.
    Bits(BitShare),
}

/// The default configuration: exact, dealer-assisted truncation.
const DEALER_TRUNCATION: Config = Config {
    fixed_point: FixedPoint::DEFAULT,
    truncation: TruncationMode::Dealer,
    approx: ApproxConfig::DEFAULT,
};

/// One benchmarked computation: `prepare` (inputs, and a one-time setup
/// timed from where it calls `setup.begin`), then the timed `online` part.
#[allow(async_fn_in_trait)]
pub(crate) trait Workload {
    const NAME: &'static str;
    /// Whether `prepare` is a one-time setup whose cost is reported apart.
    const SETUP: bool = false;
    const CONFIG: Config = DEALER_TRUNCATION;
    type State;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State>;
    /// Untimed and unreported: shares the inputs a setup masked, only so that
    /// the result can be checked.
    async fn enter_checks<C: Channel, P: Preprocessing>(
        _p: &mut Party<C, P, Compute>,
        _s: &mut Self::State,
    ) -> CoreResult<()> {
        Ok(())
    }
    /// Per-query local work that needs no input (timed into the offline figure).
    async fn precompute<C: Channel, P: Preprocessing>(
        _p: &mut Party<C, P, Compute>,
        _s: &mut Self::State,
    ) -> CoreResult<()> {
        Ok(())
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output>;
    /// The shares of the inputs the reference takes, in order.
    fn inputs(s: &Self::State) -> Vec<&ArithShare>;
    /// The float64 result for the opened inputs.
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>>;
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
        entry::<MulMasked>(),
        entry::<MulMaskedLocal>(),
        entry::<MatMulSecret>(),
        entry::<MatMulMasked>(),
        entry::<MatMulMaskedLocal>(),
        entry::<MatMulWeightReuse>(),
        entry::<Conv2dSecret>(),
        entry::<Conv2dMasked>(),
        entry::<Conv2dMaskedLocal>(),
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
    p: &mut Party<C, P, Compute>,
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

/// Where a workload's reported one-time setup begins: after the owners have
/// sampled their plaintext inputs (the benchmark's stand-in for data they
/// already hold), at a barrier, so that one party's sampling is not counted
/// as another's waiting.
pub(crate) struct SetupMark<'a> {
    span: &'a Span,
    before: Mutex<Option<CommStats>>,
}

impl SetupMark<'_> {
    async fn begin<C: Channel, P: Preprocessing>(
        &self,
        p: &mut Party<C, P, Compute>,
    ) -> CoreResult<()> {
        barrier(p).await?;
        *self.before.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.stats());
        self.span.start(Instant::now());
        Ok(())
    }
}

/// The timings of one run, shared by the parties run here.
#[derive(Default)]
struct Spans {
    online: Span,
    setup: Span,
    precompute: Mutex<Duration>,
}

/// One party's run of workload `W`.
struct OpsJob<'a, W> {
    spans: &'a Spans,
    _w: PhantomData<fn() -> W>,
}

/// What one party saw: online and setup traffic, and the largest error.
struct PartyRun {
    comm: CommStats,
    setup: CommStats,
    error: f64,
}

impl<W: Workload, P: Preprocessing> Job<P> for OpsJob<'_, W> {
    type Output = PartyRun;
    async fn run<C: Channel>(&self, ch: C, prep: P) -> CoreResult<(PartyRun, C, P)> {
        let spans = self.spans;
        let mut p = Party::new(ch, prep, super::compute(), W::CONFIG).await?;
        // A workload with a setup meets the other parties at `setup.begin`,
        // after its owners have drawn their inputs.
        let mark = SetupMark {
            span: &spans.setup,
            before: Mutex::new(None),
        };
        let mut state = W::prepare(&mut p, &mark).await?;
        spans.setup.end(Instant::now());
        let begun = *mark.before.lock().unwrap_or_else(|e| e.into_inner());
        let setup = match begun {
            Some(before) => p.stats().since(&before),
            None if W::SETUP => {
                return Err(hush_core::Error::Usage(format!(
                    "{}: a workload with a setup must mark where it begins",
                    W::NAME
                )));
            }
            None => CommStats::default(),
        };
        W::enter_checks(&mut p, &mut state).await?;
        let t = Instant::now();
        W::precompute(&mut p, &mut state).await?;
        let took = t.elapsed();
        {
            let mut pre = spans.precompute.lock().unwrap_or_else(|e| e.into_inner());
            *pre = (*pre).max(took);
        }
        barrier(&mut p).await?;
        spans.online.start(Instant::now());
        let before = p.stats();
        let out = W::online(&mut p, &mut state).await?;
        let comm = p.stats().since(&before);
        spans.online.end(Instant::now());
        let error = check::<W, _, _>(&mut p, &state, out).await?;
        let (ch, prep, _) = p.into_parts();
        Ok((PartyRun { comm, setup, error }, ch, prep))
    }
}

/// Opens the inputs and the result (after the timed part) and returns the
/// largest absolute difference from the float64 reference.
async fn check<W: Workload, C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, Compute>,
    state: &W::State,
    out: Output,
) -> CoreResult<f64> {
    let fp = W::CONFIG.fixed_point;
    let mut xs = Vec::new();
    for s in W::inputs(state) {
        xs.push(fp.decode_tensor(&p.open(s).await?));
    }
    let y = match out {
        Output::Fixed(s) => fp.decode_tensor(&p.open(&s).await?),
        Output::Bits(b) => {
            let words = RingTensor::from_shape_vec(IxDyn(&[b.words().len()]), b.words().to_vec())
                .map_err(|e| hush_core::Error::Usage(e.to_string()))?;
            let opened = p.open(&BinaryShare::from_raw(words)).await?;
            let bits = BitShare::from_words(b.len(), opened.iter().copied().collect());
            ArrayD::from_shape_fn(IxDyn(&[b.len()]), |i| f64::from(u8::from(bits.get(i[0]))))
        }
    };
    let r = W::reference(&xs)?;
    if r.len() != y.len() {
        return Err(hush_core::Error::Usage(format!(
            "{}: {} results, reference has {}",
            W::NAME,
            y.len(),
            r.len()
        )));
    }
    Ok(y.iter()
        .zip(r.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max))
}

struct Run {
    online: Duration,
    precompute: Duration,
    comm: Vec<CommStats>,
    setup: Option<(Duration, Vec<CommStats>)>,
    error: f64,
}

/// Runs the workload once with the given preprocessing (one per party here).
fn run_once<W: Workload, P: Preprocessing + Send>(
    parties: &mut Parties,
    preps: Vec<P>,
) -> Result<(Run, Vec<P>), BoxError> {
    let spans = Spans::default();
    let job = OpsJob::<W> {
        spans: &spans,
        _w: PhantomData,
    };
    let results = parties.run(preps, &job)?;
    let mut comm = Vec::new();
    let mut setup = Vec::new();
    let mut back = Vec::new();
    let mut error: f64 = 0.0;
    for (r, p) in results {
        comm.push(r.comm);
        setup.push(r.setup);
        error = error.max(r.error);
        back.push(p);
    }
    let precompute = *spans.precompute.lock().unwrap_or_else(|e| e.into_inner());
    Ok((
        Run {
            online: spans.online.duration(),
            precompute,
            comm,
            setup: W::SETUP.then(|| (spans.setup.duration(), setup)),
            error,
        },
        back,
    ))
}

fn measure<W: Workload>(parties: &mut Parties, reps: usize) -> Result<Report, BoxError> {
    // Warm-up run that also learns the correlation requests.
    let recorders = parties.preps()?.into_iter().map(Recorder::new).collect();
    let (_, recorders) = run_once::<W, _>(parties, recorders)?;
    let requests = recorders
        .into_iter()
        .next()
        .map(|r| r.into_parts().1)
        .unwrap_or_default();
    let mut report = Report::new(W::NAME, dealer_bytes(&requests));
    reset_peak_memory();
    for _ in 0..reps {
        let preps = parties.preps()?;
        let t = Instant::now();
        let pregen = preps
            .into_iter()
            .map(|mut p| super::ready(Pregenerated::generate(&mut p, &requests)))
            .collect::<CoreResult<Vec<_>>>()?;
        let offline = t.elapsed();
        let (run, _) = run_once::<W, _>(parties, pregen)?;
        report.offline.push(offline + run.precompute);
        report.online.push(run.online);
        report.comm = run.comm;
        report.setup = run.setup;
        report.max_error = Some(report.max_error.unwrap_or(0.0).max(run.error));
    }
    report.peak_memory = peak_memory().into_iter().collect();
    super::gather(parties, &mut report)?;
    Ok(report)
}

struct Mul;
impl Workload for Mul {
    const NAME: &'static str = "mul 1e6";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        Ok((
            input(p, 0, &[1_000_000]).await?,
            input(p, 1, &[1_000_000]).await?,
        ))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.mul(&s.0, &s.1).await.map(Output::Fixed)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![&s.0, &s.1]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        mul_ref(&x[0], &x[1])
    }
}

struct MatMulSecret;
impl Workload for MatMulSecret {
    const NAME: &'static str = "matmul 512x512x512 (both secret)";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        Ok((
            input(p, 0, &[512, 512]).await?,
            input(p, 1, &[512, 512]).await?,
        ))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.matmul(&s.0, &s.1).await.map(Output::Fixed)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![&s.0, &s.1]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        matmul_ref(&x[0], &x[1])
    }
}

fn mul_ref(a: &ArrayD<f64>, b: &ArrayD<f64>) -> CoreResult<ArrayD<f64>> {
    Ok(a * b)
}

fn matmul_ref(a: &ArrayD<f64>, b: &ArrayD<f64>) -> CoreResult<ArrayD<f64>> {
    let shape = |e: ndarray::ShapeError| hush_core::Error::Usage(e.to_string());
    let a = a.view().into_dimensionality::<Ix2>().map_err(shape)?;
    let b = b.view().into_dimensionality::<Ix2>().map_err(shape)?;
    Ok(a.dot(&b).into_dyn())
}

/// The plaintext evaluator's convolution of `x` with kernel `k`.
fn conv_ref(x: &ArrayD<f64>, k: &ArrayD<f64>) -> CoreResult<ArrayD<f64>> {
    let (s, ks) = (x.shape().to_vec(), k.shape().to_vec());
    let out = vec![s[0], ks[0], s[2], s[3]];
    let plan = Plan {
        name: "conv".into(),
        frac_bits: 16,
        values: vec![
            ValueInfo {
                name: "x".into(),
                shape: s,
            },
            ValueInfo {
                name: "y".into(),
                shape: out,
            },
        ],
        inputs: vec![0],
        outputs: vec![1],
        weights: vec![WeightInfo {
            name: "k".into(),
            shape: ks,
        }],
        nodes: vec![Node {
            name: "conv".into(),
            op: Op::Conv {
                weight: 0,
                attrs: ConvAttrs {
                    stride: CONV_P.stride,
                    padding: CONV_P.padding,
                    dilation: CONV_P.dilation,
                    groups: CONV_P.groups,
                },
            },
            inputs: vec![0],
            output: 1,
        }],
        commitment: [0; 32],
    };
    let weights = Weights {
        tensors: vec![k.clone()],
    };
    let mut y = hush_core::plan::plain::evaluate(&plan, &weights, std::slice::from_ref(x))?;
    Ok(y.remove(0))
}

/// A product with the server's weights: the mask is opened once (setup),
/// `op(B, E)` is folded in before the query (offline), and the query opens
/// only the activation.
struct Reuse {
    x: ArithShare,
    w: FixedOperand,
    /// The weights, at their owner, until they are entered for the check.
    plain: Option<RingTensor>,
    /// The same weights secret-shared, only to check the result.
    w_check: Option<ArithShare>,
    prepared: Option<PreparedFixed>,
}

async fn reuse_prepare<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, Compute>,
    setup: &SetupMark<'_>,
    x_shape: &[usize],
    w_shape: &[usize],
) -> CoreResult<Reuse> {
    let owner = PARTIES - 1;
    let values = if p.id() == owner {
        Some(values(w_shape)?)
    } else {
        None
    };
    setup.begin(p).await?;
    let w = p.fix_operand(owner, values.as_ref(), w_shape).await?;
    let x = input(p, 0, x_shape).await?;
    Ok(Reuse {
        x,
        w,
        plain: values,
        w_check: None,
        prepared: None,
    })
}

/// Shares a masked operand again, only to check a result (outside the setup).
async fn enter_check<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, Compute>,
    w: &FixedOperand,
    plain: &mut Option<RingTensor>,
) -> CoreResult<ArithShare> {
    let v = plain.take();
    p.input::<Arith>(w.owner(), v.as_ref(), w.shape()).await
}

/// The check copies of workloads with masked operands, in the order the
/// reference takes them.
fn checks<'a>(
    first: Option<&'a ArithShare>,
    rest: &'a [Option<ArithShare>],
) -> Vec<&'a ArithShare> {
    first.into_iter().chain(rest.iter().flatten()).collect()
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
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        Ok((input(p, 0, &CONV_IN).await?, input(p, 1, &CONV_K).await?))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.conv2d(&s.0, &s.1, &CONV_P).await.map(Output::Fixed)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![&s.0, &s.1]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        conv_ref(&x[0], &x[1])
    }
}

fn matmul_1x1024() -> BilinearOp {
    BilinearOp::MatMul {
        lhs: vec![1, 1024],
        rhs: vec![1024, 1024],
    }
}

/// Defines a product of party 0's activation with party 1's weights under
/// `op` (weights on the right).
macro_rules! reuse_workload {
    ($ty:ident, $name:expr, $op:expr, $reference:expr) => {
        struct $ty;
        impl Workload for $ty {
            const NAME: &'static str = $name;
            const SETUP: bool = true;
            type State = Reuse;
            async fn prepare<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                setup: &SetupMark<'_>,
            ) -> CoreResult<Self::State> {
                let op = $op;
                reuse_prepare(p, setup, op.lhs_shape(), op.rhs_shape()).await
            }
            async fn precompute<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                s: &mut Self::State,
            ) -> CoreResult<()> {
                s.prepared = Some(p.prepare_fixed(&$op, FixedSide::Rhs, &s.w).await?);
                Ok(())
            }
            async fn online<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                s: &mut Self::State,
            ) -> CoreResult<Output> {
                let prepared = s
                    .prepared
                    .take()
                    .ok_or_else(|| hush_core::Error::Usage("precompute did not run".into()))?;
                p.bilinear_fixed_prepared(prepared, &s.w, &s.x)
                    .await
                    .map(Output::Fixed)
            }
            async fn enter_checks<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                s: &mut Self::State,
            ) -> CoreResult<()> {
                s.w_check = Some(enter_check(p, &s.w, &mut s.plain).await?);
                Ok(())
            }
            fn inputs(s: &Self::State) -> Vec<&ArithShare> {
                checks(Some(&s.x), core::slice::from_ref(&s.w_check))
            }
            fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
                $reference(&x[0], &x[1])
            }
        }
    };
}

reuse_workload!(
    MatMulWeightReuse,
    "matmul 1x1024 . 1024x1024 (weights)",
    matmul_1x1024(),
    matmul_ref
);
reuse_workload!(
    Conv2dWeightReuse,
    "conv2d 1x64x32x32 * 64x3x3 (weights)",
    conv_op(),
    conv_ref
);

/// A product of two private inputs, each masked once by its owner when it
/// is entered (party 0's `x`, party 1's `y`; the setup, reported apart like
/// the weights' masking): the query opens only the truncation.
struct Masked {
    x: FixedOperand,
    y: FixedOperand,
    /// The inputs, at their owners, until they are entered for the check.
    plain: [Option<RingTensor>; 2],
    /// The same inputs secret-shared, only to check the result.
    check: [Option<ArithShare>; 2],
}

async fn masked_prepare<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, Compute>,
    setup: &SetupMark<'_>,
    op: &BilinearOp,
) -> CoreResult<Masked> {
    let me = p.id();
    let mut plain = [None, None];
    for (owner, shape) in [(0, op.lhs_shape()), (1, op.rhs_shape())] {
        if me == owner {
            plain[owner] = Some(values(shape)?);
        }
    }
    setup.begin(p).await?;
    // Both inputs in one round: each party sends its own at once.
    let mut fixed = p
        .fix_operands_of(&[
            (0, plain[0].as_ref(), op.lhs_shape()),
            (1, plain[1].as_ref(), op.rhs_shape()),
        ])
        .await?;
    let (Some(y), Some(x)) = (fixed.pop(), fixed.pop()) else {
        return Err(hush_core::Error::Usage("two operands entered".into()));
    };
    Ok(Masked {
        x,
        y,
        plain,
        check: [None, None],
    })
}

fn hadamard_1e6() -> BilinearOp {
    BilinearOp::Hadamard {
        shape: vec![1_000_000],
    }
}

fn matmul_512() -> BilinearOp {
    BilinearOp::MatMul {
        lhs: vec![512, 512],
        rhs: vec![512, 512],
    }
}

fn conv_op() -> BilinearOp {
    BilinearOp::Conv2d {
        input: CONV_IN,
        kernel: CONV_K,
        params: CONV_P,
    }
}

/// The configuration of the workloads that truncate as CrypTen does with
/// two parties: each party divides its own share (SecureML), no message, an
/// error of one unit in the last place, and a large one with probability
/// about `|z|/2^63` per element.
const LOCAL_TRUNCATION: Config = Config {
    fixed_point: FixedPoint::DEFAULT,
    truncation: TruncationMode::Local,
    approx: ApproxConfig::DEFAULT,
};

/// Defines a product of two masked inputs under `op` (with dealer-assisted
/// truncation unless a configuration is given).
macro_rules! masked_workload {
    ($ty:ident, $name:expr, $op:expr, $reference:expr) => {
        masked_workload!($ty, $name, $op, $reference, DEALER_TRUNCATION);
    };
    ($ty:ident, $name:expr, $op:expr, $reference:expr, $config:expr) => {
        struct $ty;
        impl Workload for $ty {
            const NAME: &'static str = $name;
            const SETUP: bool = true;
            const CONFIG: Config = $config;
            type State = Masked;
            async fn prepare<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                setup: &SetupMark<'_>,
            ) -> CoreResult<Self::State> {
                masked_prepare(p, setup, &$op).await
            }
            async fn online<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                s: &mut Self::State,
            ) -> CoreResult<Output> {
                p.bilinear_fixed_pair(&$op, &s.x, &s.y)
                    .await
                    .map(Output::Fixed)
            }
            async fn enter_checks<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                s: &mut Self::State,
            ) -> CoreResult<()> {
                let [px, py] = &mut s.plain;
                s.check = [
                    Some(enter_check(p, &s.x, px).await?),
                    Some(enter_check(p, &s.y, py).await?),
                ];
                Ok(())
            }
            fn inputs(s: &Self::State) -> Vec<&ArithShare> {
                checks(None, &s.check)
            }
            fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
                $reference(&x[0], &x[1])
            }
        }
    };
}

masked_workload!(
    MulMasked,
    "mul 1e6 (masked inputs)",
    hadamard_1e6(),
    mul_ref
);
masked_workload!(
    MatMulMasked,
    "matmul 512x512x512 (masked inputs)",
    matmul_512(),
    matmul_ref
);
masked_workload!(
    Conv2dMasked,
    "conv2d 1x64x32x32 * 64x3x3 (masked inputs)",
    conv_op(),
    conv_ref
);

masked_workload!(
    MulMaskedLocal,
    "mul 1e6 (masked inputs, local truncation)",
    hadamard_1e6(),
    mul_ref,
    LOCAL_TRUNCATION
);
masked_workload!(
    MatMulMaskedLocal,
    "matmul 512x512x512 (masked inputs, local truncation)",
    matmul_512(),
    matmul_ref,
    LOCAL_TRUNCATION
);
masked_workload!(
    Conv2dMaskedLocal,
    "conv2d 1x64x32x32 * 64x3x3 (masked inputs, local truncation)",
    conv_op(),
    conv_ref,
    LOCAL_TRUNCATION
);

struct TruncDealer;
impl Workload for TruncDealer {
    const NAME: &'static str = "truncation 1e6 (dealer)";
    type State = ArithShare;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        input(p, 0, &[1_000_000]).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.truncate(s).await.map(Output::Fixed)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![s]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        let scale = FixedPoint::DEFAULT.frac_bits();
        Ok(x[0].mapv(|v| v / f64::from(1u32 << scale)))
    }
}

struct TruncLocal;
impl Workload for TruncLocal {
    const NAME: &'static str = "truncation 1e6 (local, SecureML)";
    const CONFIG: Config = LOCAL_TRUNCATION;
    type State = ArithShare;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        input(p, 0, &[1_000_000]).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.truncate(s).await.map(Output::Fixed)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![s]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        let scale = FixedPoint::DEFAULT.frac_bits();
        Ok(x[0].mapv(|v| v / f64::from(1u32 << scale)))
    }
}

struct Relu;
impl Workload for Relu {
    const NAME: &'static str = "relu 1e6";
    type State = ArithShare;
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        input(p, 0, &[1_000_000]).await
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.relu(s).await.map(Output::Fixed)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![s]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        Ok(x[0].mapv(|v| v.max(0.0)))
    }
}

struct Lt;
impl Workload for Lt {
    const NAME: &'static str = "lt 1e6";
    type State = (ArithShare, ArithShare);
    async fn prepare<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        _setup: &SetupMark<'_>,
    ) -> CoreResult<Self::State> {
        Ok((
            input(p, 0, &[1_000_000]).await?,
            input(p, 1, &[1_000_000]).await?,
        ))
    }
    async fn online<C: Channel, P: Preprocessing>(
        p: &mut Party<C, P, Compute>,
        s: &mut Self::State,
    ) -> CoreResult<Output> {
        p.lt(&s.0, &s.1).await.map(Output::Bits)
    }
    fn inputs(s: &Self::State) -> Vec<&ArithShare> {
        vec![&s.0, &s.1]
    }
    fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
        Ok(ndarray::Zip::from(&x[0])
            .and(&x[1])
            .map_collect(|a, b| f64::from(u8::from(a < b))))
    }
}

/// Fixed-point values uniform in [lo, hi), as party 0's input.
async fn input_in<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, Compute>,
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
    ($ty:ident, $name:expr, $shape:expr, $lo:expr, $hi:expr, $method:ident, $reference:expr) => {
        struct $ty;
        impl Workload for $ty {
            const NAME: &'static str = $name;
            type State = ArithShare;
            async fn prepare<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                _setup: &SetupMark<'_>,
            ) -> CoreResult<Self::State> {
                input_in(p, &$shape, $lo, $hi).await
            }
            async fn online<C: Channel, P: Preprocessing>(
                p: &mut Party<C, P, Compute>,
                s: &mut Self::State,
            ) -> CoreResult<Output> {
                p.$method(s).await.map(Output::Fixed)
            }
            fn inputs(s: &Self::State) -> Vec<&ArithShare> {
                vec![s]
            }
            fn reference(x: &[ArrayD<f64>]) -> CoreResult<ArrayD<f64>> {
                let f: fn(&ArrayD<f64>) -> ArrayD<f64> = $reference;
                Ok(f(&x[0]))
            }
        }
    };
}

unary_workload!(Exp, "exp 1e5", [100_000], -8.0, 8.0, exp, |x| x
    .mapv(f64::exp));
unary_workload!(
    Reciprocal,
    "reciprocal 1e5",
    [100_000],
    0.1,
    100.0,
    reciprocal,
    |x| x.mapv(f64::recip)
);
unary_workload!(Sigmoid, "sigmoid 1e5", [100_000], -8.0, 8.0, sigmoid, |x| x
    .mapv(|v| 1.0 / (1.0 + (-v).exp())));
unary_workload!(Sqrt, "sqrt 1e5", [100_000], 0.01, 100.0, sqrt, |x| x
    .mapv(f64::sqrt));
unary_workload!(
    Softmax,
    "softmax 1000x100",
    [1000, 100],
    -9.0,
    9.0,
    softmax,
    softmax_ref
);

/// Softmax along the last axis.
fn softmax_ref(x: &ArrayD<f64>) -> ArrayD<f64> {
    let mut y = x.clone();
    let last = y.ndim() - 1;
    for mut row in y.lanes_mut(ndarray::Axis(last)) {
        let m = row.fold(f64::MIN, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    y
}
