//! Every protocol against an f64 plaintext reference, for 2 and 3 parties.
//!
//! Tolerances: references are computed on the fixed-point grid (inputs
//! encoded then decoded), so the stated bound is the protocol's own error:
//! one unit in the last place (2^-16) per truncation or public division,
//! plus f64 rounding.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hush_core::backend::Conv2dParams;
use hush_core::bilinear::BilinearOp;
use hush_core::preprocessing::{Divisor, FixedSide};
use hush_core::protocol::{AvgPool2dParams, Config, TruncationMode};
use hush_core::share::{Arith, Binary};
use hush_core::{ArithShare, Error, FixedPoint, RingTensor};
use ndarray::{ArrayD, IxDyn};

const PARTIES: [usize; 2] = [2, 3];

fn fp() -> FixedPoint {
    FixedPoint::default()
}

fn enc(x: &ArrayD<f64>) -> RingTensor {
    fp().encode_tensor(x).unwrap()
}

fn dec(x: &RingTensor) -> ArrayD<f64> {
    fp().decode_tensor(x)
}

/// Shares `value` from `owner` and returns each party's result of `f`.
macro_rules! with_input {
    ($n:expr, $seed:expr, $owner:expr, $value:expr, |$p:ident, $x:ident| $body:expr) => {{
        let value: RingTensor = $value;
        let shape = value.shape().to_vec();
        run_mpc($n, Config::default(), $seed, |mut $p| {
            let value = &value;
            let shape = &shape;
            async move {
                let me = $p.id();
                let $x: ArithShare = $p
                    .input::<Arith>($owner, held(me, $owner, value), shape)
                    .await?;
                $body
            }
        })
    }};
}

#[test]
fn input_then_open_or_reveal_returns_the_input_for_every_owner_and_target() {
    for n in PARTIES {
        let mut prg = data_prg(1);
        let x = prg.tensor(&[3, 4]);
        for owner in 0..n {
            let outs = run_mpc(n, Config::default(), 1, |mut p| {
                let x = &x;
                async move {
                    let me = p.id();
                    let a = p.input::<Arith>(owner, held(me, owner, x), &[3, 4]).await?;
                    let b = p
                        .input::<Binary>(owner, held(me, owner, x), &[3, 4])
                        .await?;
                    let opened = (p.open(&a).await?, p.open(&b).await?);
                    let target = (owner + 1) % n;
                    let revealed = p.reveal_to(&a, target).await?;
                    Ok((opened, revealed, target))
                }
            });
            for (i, ((oa, ob), rev, target)) in outs.into_iter().enumerate() {
                assert_eq!(oa, x);
                assert_eq!(ob, x);
                assert_eq!(rev.is_some(), i == target);
                if let Some(r) = rev {
                    assert_eq!(r, x);
                }
            }
        }
    }
}

#[test]
fn input_costs_no_communication_after_setup() {
    let x = data_prg(2).tensor(&[1000]);
    let outs = run_mpc(2, Config::default(), 2, |mut p| {
        let x = &x;
        async move {
            let before = p.stats();
            let me = p.id();
            let _ = p.input::<Arith>(0, held(me, 0, x), &[1000]).await?;
            Ok(p.stats().since(&before))
        }
    });
    for s in outs {
        assert_eq!((s.bytes_sent, s.bytes_received, s.rounds), (0, 0, 0));
    }
}

#[test]
fn linear_operations_are_exact() {
    for n in PARTIES {
        let mut prg = data_prg(3);
        let xv = uniform(&mut prg, &[5, 6], 100.0);
        let yv = uniform(&mut prg, &[5, 6], 100.0);
        let (xe, ye) = (enc(&xv), enc(&yv));
        let c = enc(&uniform(&mut prg, &[6], 5.0));
        let k = RingTensor::from_shape_fn(IxDyn(&[1, 6]), |ix| (ix[1] as u64).wrapping_sub(3));
        let outs = run_mpc(n, Config::default(), 3, |mut p| {
            let (xe, ye, c, k) = (&xe, &ye, &c, &k);
            async move {
                let me = p.id();
                let x = p.input::<Arith>(0, held(me, 0, xe), &[5, 6]).await?;
                let y = p
                    .input::<Arith>(n - 1, held(me, n - 1, ye), &[5, 6])
                    .await?;
                let s = p.add(&x, &y)?;
                let d = p.sub(&x, &y)?;
                let ng = p.neg(&x);
                let ap = p.add_public(&x, c)?;
                let mp = p.mul_public_int(&x, k)?;
                let sm = p.sum(&x, &[0], false)?;
                let before = p.stats();
                let out = p.open_many(&[&s, &d, &ng, &ap, &mp, &sm]).await?;
                assert_eq!(p.stats().since(&before).rounds, 1, "open_many is one round");
                Ok(out)
            }
        });
        let w = |f: fn(u64, u64) -> u64, a: &RingTensor, b: &RingTensor| {
            ndarray::Zip::from(a).and(b).map_collect(|&x, &y| f(x, y))
        };
        let expect = [
            w(u64::wrapping_add, &xe, &ye),
            w(u64::wrapping_sub, &xe, &ye),
            xe.mapv(u64::wrapping_neg),
            w(
                u64::wrapping_add,
                &xe,
                &c.broadcast(IxDyn(&[5, 6])).unwrap().to_owned(),
            ),
            w(
                u64::wrapping_mul,
                &xe,
                &k.broadcast(IxDyn(&[5, 6])).unwrap().to_owned(),
            ),
            xe.fold_axis(ndarray::Axis(0), 0u64, |a, &v| a.wrapping_add(v)),
        ];
        for out in outs {
            assert_eq!(out, expect);
        }
        // And the decoded sum agrees with f64 to the encoding error.
        let sum = dec(&expect[0]);
        assert!(max_abs_err(&sum, &(&xv + &yv)) <= ulp(fp()));
    }
}

/// Runs a secret-secret bilinear op and compares with `reference` (f64 on the grid).
fn check_bilinear(
    n: usize,
    seed: u8,
    op: BilinearOp,
    bound: f64,
    reference: impl Fn(&ArrayD<f64>, &ArrayD<f64>) -> ArrayD<f64>,
    mode: TruncationMode,
) {
    let mut prg = data_prg(seed);
    let xv = quantize(fp(), &uniform(&mut prg, op.lhs_shape(), bound));
    let yv = quantize(fp(), &uniform(&mut prg, op.rhs_shape(), bound));
    let (xe, ye) = (enc(&xv), enc(&yv));
    let config = Config {
        truncation: mode,
        ..Config::default()
    };
    let outs = run_mpc(n, config, seed, |mut p| {
        let (xe, ye, op) = (&xe, &ye, &op);
        async move {
            let me = p.id();
            let x = p.input::<Arith>(0, held(me, 0, xe), op.lhs_shape()).await?;
            let y = p
                .input::<Arith>(n - 1, held(me, n - 1, ye), op.rhs_shape())
                .await?;
            let before = p.stats();
            let z = p.bilinear(op, &x, &y).await?;
            let rounds = p.stats().since(&before).rounds;
            Ok((p.open(&z).await?, rounds))
        }
    });
    let expect = reference(&xv, &yv);
    let tol = ulp(fp()) * 1.01;
    for (z, rounds) in outs {
        let err = max_abs_err(&dec(&z), &expect);
        assert!(err <= tol, "{op:?} with {n} parties: error {err} > {tol}");
        let want_rounds = if mode == TruncationMode::Local { 1 } else { 2 };
        assert_eq!(rounds, want_rounds, "{op:?}");
    }
}

fn matmul_ref(x: &ArrayD<f64>, y: &ArrayD<f64>) -> ArrayD<f64> {
    // Broadcast batch dims by materialising both operands.
    let (xs, ys) = (x.shape(), y.shape());
    let (m, k, nn) = (xs[xs.len() - 2], xs[xs.len() - 1], ys[ys.len() - 1]);
    let (xb, yb) = (&xs[..xs.len() - 2], &ys[..ys.len() - 2]);
    let rank = xb.len().max(yb.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    let batch: Vec<usize> = (0..rank).map(|i| dim(xb, i).max(dim(yb, i))).collect();
    let xfull = x
        .broadcast(IxDyn(&[&batch[..], &[m, k]].concat()))
        .unwrap()
        .to_owned();
    let yfull = y
        .broadcast(IxDyn(&[&batch[..], &[k, nn]].concat()))
        .unwrap()
        .to_owned();
    let count: usize = batch.iter().product();
    let xf = xfull.into_shape_with_order(IxDyn(&[count, m, k])).unwrap();
    let yf = yfull.into_shape_with_order(IxDyn(&[count, k, nn])).unwrap();
    let mut out = ArrayD::zeros(IxDyn(&[count, m, nn]));
    for b in 0..count {
        for i in 0..m {
            for j in 0..nn {
                out[[b, i, j]] = (0..k).map(|p| xf[[b, i, p]] * yf[[b, p, j]]).sum();
            }
        }
    }
    out.into_shape_with_order(IxDyn(&[&batch[..], &[m, nn]].concat()))
        .unwrap()
}

fn conv_ref(x: &ArrayD<f64>, w: &ArrayD<f64>, p: &Conv2dParams) -> ArrayD<f64> {
    let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (o, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    let og = o / p.groups;
    let oh = (h + p.padding[0] + p.padding[2] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    let ow = (wd + p.padding[1] + p.padding[3] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    let _ = c;
    ArrayD::from_shape_fn(IxDyn(&[n, o, oh, ow]), |ix| {
        let (b, oc, oy, ox) = (ix[0], ix[1], ix[2], ix[3]);
        let g = oc / og;
        let mut acc = 0.0;
        for ci in 0..cg {
            for ky in 0..kh {
                for kx in 0..kw {
                    let iy =
                        (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.padding[0] as isize;
                    let ixx =
                        (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.padding[1] as isize;
                    if iy >= 0 && ixx >= 0 && (iy as usize) < h && (ixx as usize) < wd {
                        acc += x[[b, g * cg + ci, iy as usize, ixx as usize]] * w[[oc, ci, ky, kx]];
                    }
                }
            }
        }
        acc
    })
}

#[test]
fn mul_matches_plaintext_within_one_ulp() {
    for n in PARTIES {
        let op = BilinearOp::Hadamard { shape: vec![257] };
        check_bilinear(n, 4, op, 50.0, |x, y| x * y, TruncationMode::Dealer);
    }
}

#[test]
fn fused_mul_equals_product_then_truncation_bit_for_bit() {
    for n in PARTIES {
        let mut prg = data_prg(14);
        let (xe, ye) = (
            enc(&uniform(&mut prg, &[999], 30.0)),
            enc(&uniform(&mut prg, &[999], 30.0)),
        );
        let ye = &ye;
        let run = |fused: bool| {
            with_input!(n, 14, 0, xe.clone(), |p, x| {
                let me = p.id();
                let y = p.input::<Arith>(n - 1, held(me, n - 1, ye), &[999]).await?;
                let z = if fused {
                    p.mul(&x, &y).await?
                } else {
                    let op = BilinearOp::Hadamard { shape: vec![999] };
                    let z = p.bilinear_ring(&op, &x, &y).await?;
                    p.truncate(&z).await?
                };
                p.open(&z).await
            })
        };
        assert_eq!(run(true), run(false));
    }
}

#[test]
fn matmul_with_batch_dims_matches_plaintext() {
    for n in PARTIES {
        for (l, r) in [
            (vec![7, 13], vec![13, 5]),
            (vec![2, 3, 9], vec![9, 4]),
            (vec![2, 1, 3, 9], vec![3, 9, 2]),
        ] {
            let op = BilinearOp::MatMul { lhs: l, rhs: r };
            check_bilinear(n, 5, op, 4.0, matmul_ref, TruncationMode::Dealer);
        }
    }
}

#[test]
fn conv2d_with_stride_padding_dilation_groups_matches_plaintext() {
    let cases = [
        (
            [1, 3, 8, 8],
            [4, 3, 3, 3],
            Conv2dParams {
                padding: [1; 4],
                ..Default::default()
            },
        ),
        (
            [2, 4, 9, 7],
            [6, 2, 3, 2],
            Conv2dParams {
                stride: [2, 1],
                padding: [1, 0, 2, 1],
                dilation: [1, 2],
                groups: 2,
            },
        ),
        (
            [1, 4, 6, 6],
            [4, 1, 3, 3],
            Conv2dParams {
                padding: [1; 4],
                groups: 4,
                ..Default::default()
            },
        ),
    ];
    for n in PARTIES {
        for (input, kernel, params) in cases {
            let op = BilinearOp::Conv2d {
                input,
                kernel,
                params,
            };
            check_bilinear(
                n,
                6,
                op,
                3.0,
                |x, w| conv_ref(x, w, &params),
                TruncationMode::Dealer,
            );
        }
    }
}

#[test]
fn local_truncation_works_for_two_parties_and_refuses_three() {
    let op = BilinearOp::MatMul {
        lhs: vec![4, 8],
        rhs: vec![8, 3],
    };
    check_bilinear(2, 7, op, 4.0, matmul_ref, TruncationMode::Local);
    let config = Config {
        truncation: TruncationMode::Local,
        ..Config::default()
    };
    let outs = run_mpc(3, config, 7, |p| async move {
        let x = ArithShare::from_raw(RingTensor::zeros(IxDyn(&[2])));
        Ok(p.truncate_local(&x, 16))
    });
    for o in outs {
        assert!(matches!(o, Err(Error::Unsupported(_))));
    }
}

#[test]
fn square_matches_plaintext_and_opens_one_tensor() {
    for n in PARTIES {
        let mut prg = data_prg(8);
        let xv = quantize(fp(), &uniform(&mut prg, &[100], 30.0));
        let outs = with_input!(n, 8, 0, enc(&xv), |p, x| {
            let before = p.stats();
            let z = p.square_ring(&x).await?;
            let sent = p.stats().since(&before).bytes_sent;
            let z = p.truncate(&z).await?;
            Ok((p.open(&z).await?, sent))
        });
        for (z, sent) in outs {
            assert!(max_abs_err(&dec(&z), &xv.mapv(|v| v * v)) <= ulp(fp()) * 1.01);
            assert_eq!(sent, 100 * 8 * (n as u64 - 1));
        }
    }
}

#[test]
fn division_mean_and_pooling_match_plaintext() {
    for n in PARTIES {
        let mut prg = data_prg(9);
        let xv = quantize(fp(), &uniform(&mut prg, &[2, 3, 5, 4], 20.0));
        let divs: Vec<u64> = (0..120).map(|i| 1 + (i % 7) as u64 * 13).collect();
        let pool = AvgPool2dParams {
            kernel: [3, 2],
            stride: [2, 2],
            padding: [1, 1, 1, 0],
            count_include_pad: false,
        };
        let pool_incl = AvgPool2dParams {
            count_include_pad: true,
            ..pool
        };
        let divs = &divs;
        let outs = with_input!(n, 9, n - 1, enc(&xv), |p, x| {
            let dv = p.div_public(&x, &Divisor::PerElement(divs.clone())).await?;
            let mean = p.mean(&x, &[1, 3], true).await?;
            let pooled = p.avg_pool2d(&x, &pool).await?;
            let pooled_incl = p.avg_pool2d(&x, &pool_incl).await?;
            p.open_many(&[&dv, &mean, &pooled, &pooled_incl]).await
        });
        let flat: Vec<f64> = xv.iter().copied().collect();
        let dv_ref = ArrayD::from_shape_vec(
            IxDyn(&[2, 3, 5, 4]),
            flat.iter().zip(divs).map(|(x, &d)| x / d as f64).collect(),
        )
        .unwrap();
        let mean_ref = xv
            .sum_axis(ndarray::Axis(3))
            .sum_axis(ndarray::Axis(1))
            .mapv(|v| v / 12.0)
            .into_shape_with_order(IxDyn(&[2, 1, 5, 1]))
            .unwrap();
        let pool_ref = |incl: bool| {
            // Output 3x2 for H=5, W=4, kernel 3x2, stride 2, padding (1,1,1,0).
            ArrayD::from_shape_fn(IxDyn(&[2, 3, 3, 2]), |ix| {
                let (mut s, mut cnt) = (0.0, 0);
                for ky in 0..3 {
                    for kx in 0..2 {
                        let iy = (ix[2] * 2 + ky) as isize - 1;
                        let ixx = (ix[3] * 2 + kx) as isize - 1;
                        if iy >= 0 && ixx >= 0 && iy < 5 && ixx < 4 {
                            s += xv[[ix[0], ix[1], iy as usize, ixx as usize]];
                            cnt += 1;
                        }
                    }
                }
                s / if incl { 6.0 } else { cnt as f64 }
            })
        };
        for out in outs {
            // Non-power-of-two divisors: within 2 units.
            assert!(max_abs_err(&dec(&out[0]), &dv_ref) <= 2.0 * ulp(fp()));
            assert!(max_abs_err(&dec(&out[1]), &mean_ref) <= 2.0 * ulp(fp()));
            assert!(max_abs_err(&dec(&out[2]), &pool_ref(false)) <= 2.0 * ulp(fp()));
            assert!(max_abs_err(&dec(&out[3]), &pool_ref(true)) <= 2.0 * ulp(fp()));
        }
    }
}

#[test]
fn public_real_scaling_matches_plaintext() {
    for n in PARTIES {
        let mut prg = data_prg(10);
        let xv = quantize(fp(), &uniform(&mut prg, &[4, 3], 10.0));
        let cv = &quantize(fp(), &uniform(&mut prg, &[3], 2.0));
        let outs = with_input!(n, 10, 0, enc(&xv), |p, x| {
            let y = p.mul_public(&x, cv).await?;
            p.open(&y).await
        });
        for z in outs {
            assert!(max_abs_err(&dec(&z), &(&xv * cv)) <= ulp(fp()) * 1.01);
        }
    }
}

#[test]
fn public_integer_scaling_is_exact_and_local() {
    for n in PARTIES {
        let mut prg = data_prg(12);
        let xv = quantize(fp(), &uniform(&mut prg, &[4, 3], 10.0));
        // −1 (a negation), a doubling and a large factor; the product stays
        // within the ring's range.
        let cv = &ArrayD::from_shape_vec(IxDyn(&[3]), vec![-1.0, 2.0, 40_000.0]).unwrap();
        let outs = with_input!(n, 12, 0, enc(&xv), |p, x| {
            let before = p.stats();
            let y = p.mul_public(&x, cv).await?;
            let cost = p.stats().since(&before);
            assert_eq!((cost.bytes_sent, cost.rounds), (0, 0), "no message");
            p.open(&y).await
        });
        for z in outs {
            // Exact: no truncation.
            assert_eq!(dec(&z), &xv * cv);
        }
    }
}

#[test]
fn weight_reuse_opens_the_weights_once_and_only_the_activation_per_query() {
    for n in PARTIES {
        let owner = n - 1;
        let mut prg = data_prg(11);
        let wv = quantize(fp(), &uniform(&mut prg, &[64, 32], 1.0));
        let queries: Vec<ArrayD<f64>> = (0..3)
            .map(|_| quantize(fp(), &uniform(&mut prg, &[2, 64], 4.0)))
            .collect();
        let lhs_w = quantize(fp(), &uniform(&mut prg, &[5, 2], 1.0));
        let (we, lwe) = (enc(&wv), enc(&lhs_w));
        let outs = run_mpc(n, Config::default(), 11, |mut p| {
            let (we, lwe, queries) = (&we, &lwe, &queries);
            async move {
                let me = p.id();
                let before = p.stats();
                let w = p.fix_operand(owner, held(me, owner, we), &[64, 32]).await?;
                let lw = p.fix_operand(owner, held(me, owner, lwe), &[5, 2]).await?;
                let setup = p.stats().since(&before);
                let mut results = Vec::new();
                for q in queries {
                    let xe = enc(q);
                    let x = p.input::<Arith>(0, held(me, 0, &xe), &[2, 64]).await?;
                    let before = p.stats();
                    let op = BilinearOp::MatMul {
                        lhs: vec![2, 64],
                        rhs: vec![64, 32],
                    };
                    let y = p.bilinear_fixed(&op, FixedSide::Rhs, &w, &x).await?;
                    let per_query = p.stats().since(&before);
                    let op2 = BilinearOp::MatMul {
                        lhs: vec![5, 2],
                        rhs: vec![2, 32],
                    };
                    let z = p.bilinear_fixed(&op2, FixedSide::Lhs, &lw, &y).await?;
                    results.push((p.open(&y).await?, p.open(&z).await?, per_query));
                }
                Ok((me, setup, results))
            }
        });
        for (me, setup, results) in outs {
            // The owner sends E = W − A for both operands to every other
            // party, one way, one round; the others send nothing.
            let e_bytes = (64 * 32 + 10) * 8;
            if me == owner {
                assert_eq!(setup.bytes_sent, e_bytes * (n as u64 - 1));
                assert_eq!(setup.bytes_received, 0);
            } else {
                assert_eq!(setup.bytes_sent, 0);
                assert_eq!(setup.bytes_received, e_bytes);
            }
            assert_eq!(setup.rounds, 1);
            for (q, (y, z, per_query)) in queries.iter().zip(results) {
                let yref = matmul_ref(q, &wv);
                assert!(max_abs_err(&dec(&y), &yref) <= ulp(fp()) * 1.01);
                let zref = matmul_ref(&lhs_w, &quantize(fp(), &dec(&y)));
                assert!(max_abs_err(&dec(&z), &zref) <= ulp(fp()) * 1.01);
                // Per query, to the owner only: each other party's pieces of
                // the activation (2x64) and of the output's truncation (2x32);
                // back: the sign bits of the output (64 bits, one word).
                let (to_owner, back) = ((2 * 64 + 2 * 32) * 8, 8);
                let others = n as u64 - 1;
                if me == owner {
                    assert_eq!(per_query.bytes_sent, back * others);
                    assert_eq!(per_query.bytes_received, to_owner * others);
                } else {
                    assert_eq!(per_query.bytes_sent, to_owner);
                    assert_eq!(per_query.bytes_received, back);
                }
                // At most two latencies (there and back). Rounds are a
                // Lamport clock of the critical path, and the one-way first
                // message depends on nothing received, so where the parties'
                // clocks differ it overlaps the previous step and counts 1.
                assert!((1..=2).contains(&per_query.rounds), "{per_query:?}");
            }
        }
    }
}

#[test]
fn products_of_two_masked_operands_open_only_their_truncation() {
    // Each operand is masked once by its owner (`fix_operand`); their product
    // is local given the dealer's op(A, B), and only the truncation goes on
    // the wire: every party but the left owner sends its piece of c (8 bytes
    // per output element) to that owner, which returns msb(c) (one bit).
    let conv = Conv2dParams {
        stride: [1, 1],
        padding: [1; 4],
        dilation: [1, 1],
        groups: 1,
    };
    let cases: Vec<(BilinearOp, f64)> = vec![
        (BilinearOp::Hadamard { shape: vec![3, 70] }, 8.0),
        (
            BilinearOp::MatMul {
                lhs: vec![2, 4, 6],
                rhs: vec![6, 3],
            },
            4.0,
        ),
        (
            BilinearOp::Conv2d {
                input: [1, 2, 5, 5],
                kernel: [3, 2, 3, 3],
                params: conv,
            },
            2.0,
        ),
    ];
    for n in PARTIES {
        for (lo, ro) in [(0, 1), (n - 1, 0), (1, 1)] {
            for (i, (op, range)) in cases.iter().enumerate() {
                let seed = 30 + i as u8;
                let mut prg = data_prg(seed);
                let xv = quantize(fp(), &uniform(&mut prg, op.lhs_shape(), *range));
                let yv = quantize(fp(), &uniform(&mut prg, op.rhs_shape(), *range));
                let (xe, ye) = (enc(&xv), enc(&yv));
                let outs = run_mpc(n, Config::default(), seed, |mut p| {
                    let (xe, ye, op) = (&xe, &ye, op);
                    async move {
                        let me = p.id();
                        // Both entered at once: one round, each owner
                        // sending its E to every other party.
                        let start = p.stats();
                        let mut fixed = p
                            .fix_operands_of(&[
                                (lo, held(me, lo, xe), op.lhs_shape()),
                                (ro, held(me, ro, ye), op.rhs_shape()),
                            ])
                            .await?;
                        let entry = p.stats().since(&start);
                        let (y, x) = (fixed.pop().unwrap(), fixed.pop().unwrap());
                        let before = p.stats();
                        let z = p.bilinear_fixed_pair(op, &x, &y).await?;
                        let cost = p.stats().since(&before);
                        let again = p.bilinear_fixed_pair(op, &x, &y).await?;
                        Ok((me, p.open(&z).await?, p.open(&again).await?, entry, cost))
                    }
                });
                let expect = match op {
                    BilinearOp::Hadamard { .. } => &xv * &yv,
                    BilinearOp::MatMul { .. } => matmul_ref(&xv, &yv),
                    BilinearOp::Conv2d { params, .. } => conv_ref(&xv, &yv, params),
                };
                let nz = expect.len() as u64;
                let (to_lead, back) = (nz * 8, nz.div_ceil(64) * 8);
                let others = n as u64 - 1;
                let (nx, ny) = (xv.len() as u64 * 8, yv.len() as u64 * 8);
                for (me, z, again, entry, cost) in outs {
                    let owned = [(lo, nx), (ro, ny)];
                    let sent: u64 = owned.iter().filter(|o| o.0 == me).map(|o| o.1).sum();
                    let received: u64 = owned.iter().filter(|o| o.0 != me).map(|o| o.1).sum();
                    assert_eq!(entry.bytes_sent, sent * others);
                    assert_eq!(entry.bytes_received, received);
                    assert_eq!(entry.rounds, 1, "{entry:?}");
                    // One truncation: one unit (stochastic rounding).
                    for got in [&z, &again] {
                        let err = max_abs_err(&dec(got), &expect);
                        assert!(err <= ulp(fp()) * 1.01, "{op:?} owners {lo},{ro}: {err}");
                    }
                    if me == lo {
                        assert_eq!(cost.bytes_sent, back * others);
                        assert_eq!(cost.bytes_received, to_lead * others);
                    } else {
                        assert_eq!(cost.bytes_sent, to_lead);
                        assert_eq!(cost.bytes_received, back);
                    }
                    assert!((1..=2).contains(&cost.rounds), "{cost:?}");
                }
            }
        }
    }
}

#[test]
fn operands_of_several_owners_are_fixed_in_one_round() {
    // Three operands, two owned by the same party and not adjacent: each
    // owner's E's travel in one message and are split back in order.
    let shape = [5, 7];
    let op = BilinearOp::Hadamard {
        shape: shape.to_vec(),
    };
    let mut prg = data_prg(34);
    let vals: Vec<ArrayD<f64>> = (0..3)
        .map(|_| quantize(fp(), &uniform(&mut prg, &shape, 4.0)))
        .collect();
    let encs: Vec<RingTensor> = vals.iter().map(enc).collect();
    for n in PARTIES {
        let owners = [0, n - 1, 0];
        let outs = run_mpc(n, Config::default(), 34, |mut p| {
            let (encs, op) = (&encs, &op);
            async move {
                let me = p.id();
                let entries: Vec<_> = (0..3)
                    .map(|i| (owners[i], held(me, owners[i], &encs[i]), &shape[..]))
                    .collect();
                let start = p.stats();
                let fixed = p.fix_operands_of(&entries).await?;
                let entry = p.stats().since(&start);
                assert_eq!(entry.rounds, 1, "{entry:?}");
                let ab = p.bilinear_fixed_pair(op, &fixed[0], &fixed[1]).await?;
                let cb = p.bilinear_fixed_pair(op, &fixed[2], &fixed[1]).await?;
                Ok((p.open(&ab).await?, p.open(&cb).await?))
            }
        });
        for (ab, cb) in outs {
            for (got, expect) in [(&ab, &vals[0] * &vals[1]), (&cb, &vals[2] * &vals[1])] {
                let err = max_abs_err(&dec(got), &expect);
                assert!(err <= ulp(fp()) * 1.01, "{n} parties: {err}");
            }
        }
    }
}

#[test]
fn masked_operand_products_check_shapes_and_support_local_truncation() {
    let config = Config {
        truncation: TruncationMode::Local,
        ..Config::default()
    };
    let mut prg = data_prg(33);
    let xv = quantize(fp(), &uniform(&mut prg, &[3, 16], 4.0));
    let yv = quantize(fp(), &uniform(&mut prg, &[16, 8], 1.0));
    let (xe, ye) = (enc(&xv), enc(&yv));
    let outs = run_mpc(2, config, 33, |mut p| {
        let (xe, ye) = (&xe, &ye);
        async move {
            let me = p.id();
            let x = p.fix_operand(0, held(me, 0, xe), &[3, 16]).await?;
            let y = p.fix_operand(1, held(me, 1, ye), &[16, 8]).await?;
            let swapped = BilinearOp::MatMul {
                lhs: vec![16, 8],
                rhs: vec![3, 16],
            };
            let wrong = p.bilinear_fixed_pair(&swapped, &x, &y).await;
            assert!(matches!(wrong, Err(Error::Shape(_))), "{wrong:?}");
            let op = BilinearOp::MatMul {
                lhs: vec![3, 16],
                rhs: vec![16, 8],
            };
            let z = p.bilinear_fixed_pair(&op, &x, &y).await?;
            p.open(&z).await
        }
    });
    for z in outs {
        // Local truncation: one unit, unless it failed (probability ~2^-40 here).
        assert!(max_abs_err(&dec(&z), &matmul_ref(&xv, &yv)) <= ulp(fp()) * 1.01);
    }
}

#[test]
fn fixed_products_with_local_truncation_match_the_plaintext() {
    // The fused division applies to dealer-assisted truncation only; with
    // local truncation the owner's product is truncated locally.
    let config = Config {
        truncation: TruncationMode::Local,
        ..Config::default()
    };
    let mut prg = data_prg(14);
    let wv = quantize(fp(), &uniform(&mut prg, &[16, 8], 1.0));
    let xv = quantize(fp(), &uniform(&mut prg, &[3, 16], 4.0));
    let (we, xe) = (enc(&wv), enc(&xv));
    let outs = run_mpc(2, config, 14, |mut p| {
        let (we, xe) = (&we, &xe);
        async move {
            let me = p.id();
            let w = p.fix_operand(1, held(me, 1, we), &[16, 8]).await?;
            let x = p.input::<Arith>(0, held(me, 0, xe), &[3, 16]).await?;
            let op = BilinearOp::MatMul {
                lhs: vec![3, 16],
                rhs: vec![16, 8],
            };
            let y = p.bilinear_fixed(&op, FixedSide::Rhs, &w, &x).await?;
            p.open(&y).await
        }
    });
    for y in outs {
        // Local truncation: one unit, unless it failed (probability ~2^-40 here).
        assert!(max_abs_err(&dec(&y), &matmul_ref(&xv, &wv)) <= ulp(fp()) * 1.01);
    }
}

#[test]
fn truncated_or_wrong_length_peer_messages_are_typed_errors() {
    use hush_core::backend::CpuBackend;
    use hush_core::channel::Channel;
    use hush_core::channel::memory::run_parties;
    use hush_core::error::PeerError;
    use hush_core::preprocessing::seeded::in_process;
    use hush_core::protocol::Party;
    // Party 1 follows the protocol until its answer is due, then sends a
    // message of the wrong length; party 0 must fail with a typed error, not
    // panic. Two answers: a Beaver opening of two elements (32 bytes), and
    // the owner's sign bits after a fixed product of two outputs (8 bytes).
    for (fixed, expected, cuts) in [(false, 32, [0usize, 1, 7, 15]), (true, 8, [0, 7, 9, 16])] {
        for cut in cuts {
            let mut preps = in_process(&seeds(2, 12), CpuBackend).into_iter();
            let results = run_parties(2, |ch| {
                let prep = preps.next().unwrap();
                async move {
                    let mut p = Party::new(ch, prep, CpuBackend, Config::default()).await?;
                    let me = p.id();
                    let w = if fixed {
                        let we = RingTensor::zeros(IxDyn(&[4, 2]));
                        Some(p.fix_operand(1, held(me, 1, &we), &[4, 2]).await?)
                    } else {
                        None
                    };
                    if me == 1 {
                        let (mut ch, _, _) = p.into_parts();
                        let _ = ch.recv(0).await?;
                        ch.send(0, vec![0u8; cut]).await?;
                        return Ok(());
                    }
                    match &w {
                        Some(w) => {
                            let x = ArithShare::from_raw(RingTensor::zeros(IxDyn(&[1, 4])));
                            let op = BilinearOp::MatMul {
                                lhs: vec![1, 4],
                                rhs: vec![4, 2],
                            };
                            p.bilinear_fixed(&op, FixedSide::Rhs, w, &x)
                                .await
                                .map(|_| ())
                        }
                        None => {
                            let x = ArithShare::from_raw(RingTensor::zeros(IxDyn(&[2])));
                            p.mul(&x, &x).await.map(|_| ())
                        }
                    }
                }
            });
            assert!(results[1].is_ok());
            assert_eq!(
                results[0],
                Err(Error::Peer(PeerError::WrongLength { expected, got: cut })),
                "fixed product: {fixed}"
            );
        }
    }
}

#[test]
fn a_masked_operand_of_the_wrong_length_is_a_typed_error() {
    use hush_core::backend::CpuBackend;
    use hush_core::channel::Channel;
    use hush_core::channel::memory::run_parties;
    use hush_core::error::PeerError;
    use hush_core::preprocessing::seeded::in_process;
    use hush_core::protocol::Party;
    // The owner (party 1) sends E = W − A for a 4x2 operand: 64 bytes.
    for cut in [0usize, 8, 63, 65, 128] {
        let mut preps = in_process(&seeds(2, 15), CpuBackend).into_iter();
        let results = run_parties(2, |ch| {
            let prep = preps.next().unwrap();
            async move {
                let mut p = Party::new(ch, prep, CpuBackend, Config::default()).await?;
                if p.id() == 1 {
                    let (mut ch, _, _) = p.into_parts();
                    ch.send(0, vec![0u8; cut]).await?;
                    return Ok(());
                }
                p.fix_operand(1, None, &[4, 2]).await.map(|_| ())
            }
        });
        assert!(results[1].is_ok());
        assert_eq!(
            results[0],
            Err(Error::Peer(PeerError::WrongLength {
                expected: 64,
                got: cut
            }))
        );
    }
}

#[test]
fn a_party_that_vanishes_gives_its_peers_a_closed_channel_error() {
    let outs = hush_core::channel::memory::run_parties(3, |ch| {
        let mut preps = hush_core::preprocessing::seeded::in_process(
            &seeds(3, 13),
            hush_core::backend::CpuBackend,
        );
        let prep = preps.remove(ch.party_id());
        async move {
            let mut p = hush_core::protocol::Party::new(
                ch,
                prep,
                hush_core::backend::CpuBackend,
                Config::default(),
            )
            .await?;
            if p.id() == 2 {
                return Ok(());
            }
            let x = ArithShare::from_raw(RingTensor::zeros(IxDyn(&[2])));
            p.open(&x).await.map(|_| ())
        }
    });
    assert!(outs[2].is_ok());
    for o in &outs[..2] {
        assert!(matches!(o, Err(Error::Channel(_))), "{o:?}");
    }
}

trait PartyId {
    fn party_id(&self) -> usize;
}
impl PartyId for hush_core::channel::memory::MemoryChannel {
    fn party_id(&self) -> usize {
        hush_core::channel::Channel::party(self)
    }
}
