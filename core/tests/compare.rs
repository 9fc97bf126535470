//! The binary layer, conversions, comparisons and selection against plaintext,
//! for 2 and 3 parties. Comparisons are exact (tolerance 0 on bits); ReLU,
//! max, clip and friends are exact on the fixed-point grid (no truncation).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hush_core::bits::BitShare;
use hush_core::protocol::Config;
use hush_core::share::{Arith, Binary};
use hush_core::{ArithShare, Error, FixedPoint, RingTensor};
use ndarray::{ArrayD, IxDyn};

const PARTIES: [usize; 2] = [2, 3];

fn fp() -> FixedPoint {
    FixedPoint::default()
}

/// Values that stress comparisons: zero, ±1 unit, large magnitudes, random.
fn tricky(n_random: usize, seed: u8) -> ArrayD<f64> {
    let u = 1.0 / 65536.0;
    let mut v = vec![
        0.0,
        u,
        -u,
        2.0 * u,
        -2.0 * u,
        1.0,
        -1.0,
        1e9,
        -1e9,
        123.456,
        -123.456,
    ];
    let mut prg = data_prg(seed);
    v.extend(
        uniform(&mut prg, &[n_random], 1000.0)
            .iter()
            .map(|x| (x * 65536.0).round() / 65536.0),
    );
    let n = v.len();
    quantize(fp(), &ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap())
}

fn bits_of(opened: &[u64], n: usize) -> Vec<bool> {
    (0..n)
        .map(|j| (opened[j / 64] >> (j % 64)) & 1 == 1)
        .collect()
}

/// Opens shared bits (as their packed words) to everyone.
async fn open_bits(p: &mut TestParty, b: &BitShare) -> hush_core::Result<Vec<bool>> {
    let n = b.len();
    let w = hush_core::BinaryShare::from_raw(
        RingTensor::from_shape_vec(IxDyn(&[b.words().len()]), b.words().to_vec()).unwrap(),
    );
    let opened = p.open(&w).await?;
    Ok(bits_of(opened.as_slice().unwrap(), n))
}

#[test]
fn comparisons_match_plaintext_exactly() {
    for n in PARTIES {
        let x = tricky(300, 1);
        let y = x
            .mapv(|v| if v.abs() < 2.0 { 0.0 } else { v / 2.0 })
            .mapv(|v| (v * 65536.0).round() / 65536.0);
        let (xe, ye) = (
            fp().encode_tensor(&x).unwrap(),
            fp().encode_tensor(&y).unwrap(),
        );
        let len = x.len();
        let outs = run_mpc(n, Config::default(), 1, |mut p| {
            let (xe, ye) = (&xe, &ye);
            async move {
                let me = p.id();
                let xs = p.input::<Arith>(0, held(me, 0, xe), &[len]).await?;
                let ys = p.input::<Arith>(n - 1, held(me, n - 1, ye), &[len]).await?;
                let before = p.stats();
                let neg = p.msb(&xs).await?;
                let msb_rounds = p.stats().since(&before).rounds;
                let lt = p.lt(&xs, &ys).await?;
                let gt = p.gt(&xs, &ys).await?;
                let le = p.le(&xs, &ys).await?;
                let ge = p.ge(&xs, &ys).await?;
                let eq = p.eq(&xs, &ys).await?;
                let mut out = Vec::new();
                for b in [&neg, &lt, &gt, &le, &ge, &eq] {
                    out.push(open_bits(&mut p, b).await?);
                }
                Ok((out, msb_rounds))
            }
        });
        for (out, rounds) in outs {
            assert_eq!(
                rounds,
                if n == 2 { 7 } else { 8 },
                "msb rounds with {n} parties"
            );
            for j in 0..len {
                let (a, b) = (x[j], y[j]);
                assert_eq!(out[0][j], a < 0.0, "msb({a})");
                assert_eq!(out[1][j], a < b, "{a} < {b}");
                assert_eq!(out[2][j], a > b, "{a} > {b}");
                assert_eq!(out[3][j], a <= b, "{a} <= {b}");
                assert_eq!(out[4][j], a >= b, "{a} >= {b}");
                assert_eq!(out[5][j], a == b, "{a} == {b}");
            }
        }
    }
}

#[test]
fn relu_and_friends_match_plaintext() {
    for n in PARTIES {
        let x = tricky(200, 2);
        let y = x
            .mapv(|v| -v / 4.0)
            .mapv(|v| (v * 65536.0).round() / 65536.0);
        let (xe, ye) = (
            fp().encode_tensor(&x).unwrap(),
            fp().encode_tensor(&y).unwrap(),
        );
        let len = x.len();
        let outs = run_mpc(n, Config::default(), 2, |mut p| {
            let (xe, ye) = (&xe, &ye);
            async move {
                let me = p.id();
                let xs = p.input::<Arith>(0, held(me, 0, xe), &[len]).await?;
                let ys = p.input::<Arith>(n - 1, held(me, n - 1, ye), &[len]).await?;
                let before = p.stats();
                let relu = p.relu(&xs).await?;
                let relu_rounds = p.stats().since(&before).rounds;
                let abs = p.abs(&xs).await?;
                let sign = p.sign(&xs).await?;
                let is_negative = p.is_negative(&xs).await?;
                let max = p.max(&xs, &ys).await?;
                let min = p.min(&xs, &ys).await?;
                let clip = p.clip(&xs, 0.0, 6.0).await?;
                let hardtanh = p.clip(&xs, -1.0, 1.0).await?;
                let opened = p
                    .open_many(&[
                        &relu,
                        &abs,
                        &sign,
                        &is_negative,
                        &max,
                        &min,
                        &clip,
                        &hardtanh,
                    ])
                    .await?;
                Ok((opened, relu_rounds))
            }
        });
        let f = |g: fn(f64, f64) -> f64| {
            ArrayD::from_shape_fn(IxDyn(&[len]), |ix| g(x[ix.clone()], y[ix]))
        };
        let expect = [
            f(|a, _| a.max(0.0)),
            f(|a, _| a.abs()),
            f(|a, _| if a < 0.0 { -1.0 } else { 1.0 }),
            f(|a, _| if a < 0.0 { 1.0 } else { 0.0 }),
            f(f64::max),
            f(f64::min),
            f(|a, _| a.clamp(0.0, 6.0)),
            f(|a, _| a.clamp(-1.0, 1.0)),
        ];
        for (opened, rounds) in outs {
            assert_eq!(rounds, if n == 2 { 8 } else { 9 }, "relu rounds");
            for (got, want) in opened.iter().zip(&expect) {
                assert_eq!(fp().decode_tensor(got), *want);
            }
        }
    }
}

#[test]
fn conversions_round_trip_and_binary_gates_match_plaintext() {
    for n in PARTIES {
        let mut prg = data_prg(3);
        let x = prg.tensor(&[130]);
        let y = prg.tensor(&[130]);
        let outs = run_mpc(n, Config::default(), 3, |mut p| {
            let (x, y) = (&x, &y);
            async move {
                let me = p.id();
                let xa = p.input::<Arith>(0, held(me, 0, x), &[130]).await?;
                let xb = p.a2b(&xa).await?;
                let back = p.b2a(&xb).await?;
                let yb = p.input::<Binary>(n - 1, held(me, n - 1, y), &[130]).await?;
                let and = p.and_binary(&xb, &yb).await?;
                let xor = p.xor_binary(&xb, &yb)?;
                let not = p.not_binary(&xb);
                let shl = p.shl_binary(&xb, 7);
                let shr = p.shr_binary(&xb, 63);
                let bit = p.bit_binary(&xb, 5)?;
                let bit_arith = p.b2a_bits(&bit).await?;
                let opened_b = p.open_many(&[&xb, &and, &xor, &not, &shl, &shr]).await?;
                let opened_a = p.open_many(&[&back, &bit_arith]).await?;
                Ok((opened_b, opened_a))
            }
        });
        let w =
            |f: fn(u64, u64) -> u64| ndarray::Zip::from(&x).and(&y).map_collect(|&a, &b| f(a, b));
        for (ob, oa) in outs {
            assert_eq!(ob[0], x, "a2b");
            assert_eq!(ob[1], w(|a, b| a & b));
            assert_eq!(ob[2], w(|a, b| a ^ b));
            assert_eq!(ob[3], x.mapv(|a| !a));
            assert_eq!(ob[4], x.mapv(|a| a << 7));
            assert_eq!(ob[5], x.mapv(|a| a >> 63));
            assert_eq!(oa[0], x, "b2a(a2b(x))");
            assert_eq!(oa[1], x.mapv(|a| (a >> 5) & 1));
        }
    }
}

#[test]
fn select_multiplies_by_a_shared_bit_in_one_round() {
    for n in PARTIES {
        let mut prg = data_prg(4);
        let x = prg.tensor(&[77]);
        let bits: Vec<u64> = {
            let mut w = vec![0u64; 2];
            prg.fill(&mut w);
            w
        };
        let bt = RingTensor::from_shape_vec(IxDyn(&[2]), bits.clone()).unwrap();
        let outs = run_mpc(n, Config::default(), 4, |mut p| {
            let (x, bt) = (&x, &bt);
            async move {
                let me = p.id();
                let xs = p.input::<Arith>(0, held(me, 0, x), &[77]).await?;
                let bw = p.input::<Binary>(n - 1, held(me, n - 1, bt), &[2]).await?;
                let b = BitShare::from_words(77, bw.as_raw().as_slice().unwrap().to_vec());
                let before = p.stats();
                let s = p.select(&b, &xs).await?;
                let rounds = p.stats().since(&before).rounds;
                let w = p
                    .where_(
                        &b,
                        &xs,
                        &ArithShare::from_raw(RingTensor::zeros(IxDyn(&[77]))),
                    )
                    .await?;
                Ok((p.open_many(&[&s, &w]).await?, rounds))
            }
        });
        let bit = |j: usize| (bits[j / 64] >> (j % 64)) & 1;
        for (o, rounds) in outs {
            assert_eq!(rounds, 1);
            for j in 0..77 {
                assert_eq!(o[0][[j]], x[[j]].wrapping_mul(bit(j)));
                assert_eq!(o[1][[j]], x[[j]].wrapping_mul(bit(j)));
            }
        }
    }
}

#[test]
fn pooling_windows_past_the_limits_are_shape_errors_before_any_allocation() {
    // Found by libFuzzer on the plan target: a small input, a window of
    // 2^17 × 2^17 and as much padding made max pooling reserve 2^34 ring
    // elements (128 GiB). Sizes from a plan are now checked first.
    use hush_core::protocol::{AvgPool2dParams, MaxPool2dParams};
    let big = 1usize << 17;
    let outs = run_mpc(2, Config::default(), 6, |mut p| async move {
        let me = p.id();
        let zero = fp().encode_tensor(&ArrayD::zeros(IxDyn(&[1, 1, 2, 2])))?;
        let xs = p
            .input::<Arith>(0, held(me, 0, &zero), &[1, 1, 2, 2])
            .await?;
        let max = MaxPool2dParams {
            kernel: [big, big],
            stride: [1, 1],
            padding: [big; 4],
            dilation: [1, 1],
            ceil_mode: false,
        };
        let overflow = MaxPool2dParams {
            padding: [usize::MAX, 0, 1, 0],
            ..max
        };
        let avg = AvgPool2dParams {
            kernel: [1, 1],
            stride: [1, 1],
            padding: [big; 4],
            count_include_pad: true,
        };
        Ok([
            p.max_pool2d(&xs, &max).await.err(),
            p.max_pool2d(&xs, &overflow).await.err(),
            p.avg_pool2d(&xs, &avg).await.err(),
        ])
    });
    for errs in outs {
        for e in errs {
            assert!(matches!(e, Some(Error::Shape(_))), "{e:?}");
        }
    }
}

#[test]
fn max_argmax_pooling_and_leaky_relu_match_plaintext() {
    use hush_core::protocol::MaxPool2dParams;
    for n in PARTIES {
        let mut prg = data_prg(5);
        // Values on a coarse grid so ties happen.
        let x = uniform(&mut prg, &[2, 3, 5, 7], 4.0).mapv(|v| v.round());
        let xe = fp().encode_tensor(&x).unwrap();
        let pool = MaxPool2dParams {
            kernel: [3, 2],
            stride: [2, 2],
            padding: [1, 0, 1, 1],
            dilation: [1, 2],
            ceil_mode: true,
        };
        let outs = run_mpc(n, Config::default(), 5, |mut p| {
            let xe = &xe;
            async move {
                let me = p.id();
                let xs = p.input::<Arith>(0, held(me, 0, xe), &[2, 3, 5, 7]).await?;
                let m3 = p.max_axis(&xs, 3).await?;
                let m1 = p.max_axis(&xs, 1).await?;
                let a3 = p.argmax_axis(&xs, 3).await?;
                let pooled = p.max_pool2d(&xs, &pool).await?;
                let leaky = p.leaky_relu(&xs, 0.1).await?;
                p.open_many(&[&m3, &m1, &a3, &pooled, &leaky]).await
            }
        });
        let m3 = x.map_axis(ndarray::Axis(3), |r| {
            r.iter().copied().fold(f64::MIN, f64::max)
        });
        let m1 = x.map_axis(ndarray::Axis(1), |r| {
            r.iter().copied().fold(f64::MIN, f64::max)
        });
        let a3 = x.map_axis(ndarray::Axis(3), |r| {
            let m = r.iter().copied().fold(f64::MIN, f64::max);
            r.iter().position(|&v| v == m).unwrap() as f64
        });
        // Pooling reference: output size by the ceil rule, padded cells never win.
        let (h, w) = (5usize, 7usize);
        let oh = (h + 2 - 3).div_ceil(2) + 1;
        let ow = (w + 1 - 3).div_ceil(2) + 1;
        let pad_top = 1;
        let oh = if (oh - 1) * 2 >= h + pad_top {
            oh - 1
        } else {
            oh
        };
        let ow = if (ow - 1) * 2 >= w { ow - 1 } else { ow };
        let pooled = ArrayD::from_shape_fn(IxDyn(&[2, 3, oh, ow]), |ix| {
            let mut m = f64::MIN;
            for ky in 0..3 {
                for kx in 0..2 {
                    let iy = (ix[2] * 2 + ky) as isize - 1;
                    let ixx = (ix[3] * 2 + kx * 2) as isize;
                    if iy >= 0 && ixx >= 0 && (iy as usize) < h && (ixx as usize) < w {
                        m = m.max(x[[ix[0], ix[1], iy as usize, ixx as usize]]);
                    }
                }
            }
            m
        });
        let leaky = x.mapv(|v| if v >= 0.0 { v } else { 0.1 * v });
        for o in outs {
            let d: Vec<ArrayD<f64>> = o.iter().map(|t| fp().decode_tensor(t)).collect();
            assert_eq!(d[0], m3);
            assert_eq!(d[1], m1);
            assert_eq!(d[2], a3);
            assert_eq!(d[3], pooled);
            assert!(max_abs_err(&d[4], &leaky) <= 2.0 * ulp(fp()));
        }
    }
}
