//! The seeded dealer's correlations are correct for 2 and 3 parties, its wire
//! path gives the same material as the in-process dealer, and malformed
//! dealer traffic gives typed errors.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hush_core::backend::{Backend, Conv2dParams, CpuBackend};
use hush_core::bilinear::BilinearOp;
use hush_core::channel::Channel;
use hush_core::channel::memory::run_parties;
use hush_core::error::PeerError;
use hush_core::preprocessing::seeded::{
    DealerLink, NoCorrections, SeededDealer, SeededPreprocessing, draws, in_process, serve_dealer,
};
use hush_core::preprocessing::wire::{WIRE_VERSION, encode_correction, encode_request};
use hush_core::preprocessing::{
    AndTriple, Correlation, CorrelationRequest, Divisor, FixedSide, PowerMaskShare, Pregenerated,
    Preprocessing, Recorder,
};
use hush_core::protocol::{Config, Party};
use hush_core::share::{Arith, ArithShare, reconstruct};
use hush_core::{Error, RingTensor};
use ndarray::IxDyn;

fn requests() -> Vec<CorrelationRequest> {
    vec![
        CorrelationRequest::Triple(BilinearOp::Hadamard { shape: vec![33] }),
        CorrelationRequest::Triple(BilinearOp::MatMul {
            lhs: vec![2, 5, 7],
            rhs: vec![7, 3],
        }),
        CorrelationRequest::Triple(BilinearOp::Conv2d {
            input: [1, 4, 6, 5],
            kernel: [2, 2, 3, 3],
            params: Conv2dParams {
                padding: [1; 4],
                groups: 2,
                ..Default::default()
            },
        }),
        CorrelationRequest::Square { shape: vec![4, 4] },
        CorrelationRequest::DivPair {
            shape: vec![50],
            divisor: Divisor::Uniform(1 << 16),
        },
        CorrelationRequest::DivPair {
            shape: vec![3],
            divisor: Divisor::PerElement(vec![3, 1, 1000]),
        },
        CorrelationRequest::PowerMask {
            shape: vec![3, 7],
            wide: false,
            shift: 4,
            degree: 5,
            wide_powers: true,
        },
        CorrelationRequest::PowerMask {
            shape: vec![30],
            wide: true,
            shift: 91,
            degree: 4,
            wide_powers: true,
        },
        CorrelationRequest::PowerMask {
            shape: vec![30],
            wide: true,
            shift: 95,
            degree: 2,
            wide_powers: false,
        },
        CorrelationRequest::PowerMask {
            shape: vec![9],
            wide: false,
            shift: 30,
            degree: 2,
            wide_powers: false,
        },
        CorrelationRequest::AndTriple { words: 5 },
        CorrelationRequest::BitPair { len: 70 },
        CorrelationRequest::SelectTriple { len: 9 },
        CorrelationRequest::FixedMask {
            shape: vec![7, 3],
            owner: 1,
        },
        CorrelationRequest::FixedTriple {
            mask: 0,
            op: BilinearOp::MatMul {
                lhs: vec![2, 7],
                rhs: vec![7, 3],
            },
            side: FixedSide::Rhs,
        },
        CorrelationRequest::FixedTriple {
            mask: 0,
            op: BilinearOp::MatMul {
                lhs: vec![7, 3],
                rhs: vec![3, 1],
            },
            side: FixedSide::Lhs,
        },
        CorrelationRequest::FixedMask {
            shape: vec![3, 2],
            owner: 0,
        },
        CorrelationRequest::FixedProduct {
            op: BilinearOp::MatMul {
                lhs: vec![7, 3],
                rhs: vec![3, 2],
            },
            lhs: 0,
            rhs: 1,
        },
    ]
}

fn xor_all<'a>(parts: impl Iterator<Item = &'a RingTensor>) -> RingTensor {
    let shares: Vec<hush_core::BinaryShare> = parts
        .map(|p| hush_core::BinaryShare::from_raw(p.clone()))
        .collect();
    reconstruct::<hush_core::share::Binary>(&shares).unwrap()
}

fn sum(parts: Vec<RingTensor>) -> RingTensor {
    let shares: Vec<ArithShare> = parts.into_iter().map(ArithShare::from_raw).collect();
    reconstruct::<Arith>(&shares).unwrap()
}

#[test]
fn every_correlation_reconstructs_correctly_for_two_and_three_parties() {
    for n in [2, 3] {
        for seed in 0..3u8 {
            let mut preps = in_process(&seeds(n, seed), CpuBackend);
            let mut fixed: Vec<RingTensor> = Vec::new();
            for req in requests() {
                let got: Vec<Correlation> = preps
                    .iter_mut()
                    .map(|p| now(p.next(&req)).unwrap())
                    .collect();
                match &req {
                    CorrelationRequest::Triple(op) => {
                        let t: Vec<_> = got.into_iter().map(|c| c.into_triple().unwrap()).collect();
                        let a = sum(t.iter().map(|t| t.a.clone()).collect());
                        let b = sum(t.iter().map(|t| t.b.clone()).collect());
                        let c = sum(t.iter().map(|t| t.c.clone()).collect());
                        assert_eq!(c, op.apply(&CpuBackend, &a, &b).unwrap(), "{op:?}");
                        assert_ne!(a, RingTensor::zeros(a.raw_dim()));
                    }
                    CorrelationRequest::Square { .. } => {
                        let s: Vec<_> = got.into_iter().map(|c| c.into_square().unwrap()).collect();
                        let a = sum(s.iter().map(|s| s.a.clone()).collect());
                        let aa = sum(s.iter().map(|s| s.aa.clone()).collect());
                        assert_eq!(aa, CpuBackend.hadamard(&a, &a));
                    }
                    CorrelationRequest::DivPair { divisor, .. } => {
                        let d: Vec<_> = got
                            .into_iter()
                            .map(|c| c.into_div_pair().unwrap())
                            .collect();
                        let r = sum(d.iter().map(|d| d.r.clone()).collect());
                        let r_div = sum(d.iter().map(|d| d.r_div.clone()).collect());
                        let msb = sum(d.iter().map(|d| d.r_msb.clone()).collect());
                        for (i, &v) in r.iter().enumerate() {
                            assert_eq!(r_div.as_slice().unwrap()[i], v / divisor.at(i));
                            assert_eq!(msb.as_slice().unwrap()[i], v >> 63);
                        }
                    }
                    CorrelationRequest::PowerMask {
                        shape,
                        wide,
                        shift,
                        degree,
                        wide_powers,
                    } => {
                        let m: Vec<_> = got
                            .into_iter()
                            .map(|c| c.into_power_mask().unwrap())
                            .collect();
                        let len: usize = shape.iter().product();
                        let deg = *degree as usize;
                        // 128-bit sums of the parties' word pairs.
                        let total = |f: fn(&PowerMaskShare) -> &RingTensor, i: usize| {
                            m.iter().fold(0u128, |acc, s| {
                                let w = f(s).as_slice().unwrap();
                                acc.wrapping_add((w[2 * i + 1] as u128) << 64 | w[2 * i] as u128)
                            })
                        };
                        let bits = if *wide { 128 } else { 64 };
                        for e in 0..len {
                            let r = if *wide {
                                total(|s| &s.r, e)
                            } else {
                                m.iter()
                                    .fold(0u64, |a, s| a.wrapping_add(s.r.as_slice().unwrap()[e]))
                                    as u128
                            };
                            let s0 = (r >> shift).wrapping_neg();
                            let s1 = s0.wrapping_add((r >> (bits - 1)) << (bits - shift));
                            for (c, s) in [s0, s1].into_iter().enumerate() {
                                for j in 1..=deg {
                                    let at = e * 2 * deg + c * deg + j - 1;
                                    let want = (0..j).fold(1u128, |p, _| p.wrapping_mul(s));
                                    if *wide_powers {
                                        assert_eq!(total(|s| &s.powers, at), want, "S_{c}^{j}");
                                    } else {
                                        let got = m.iter().fold(0u64, |a, s| {
                                            a.wrapping_add(s.powers.as_slice().unwrap()[at])
                                        });
                                        assert_eq!(got, want as u64, "S_{c}^{j} mod 2^64");
                                    }
                                }
                            }
                        }
                        let words = if *wide_powers { 4 } else { 2 };
                        assert!(m.iter().all(|s| s.powers.shape() == [len, words * deg]));
                    }
                    CorrelationRequest::AndTriple { .. } => {
                        let t: Vec<_> = got.into_iter().map(|c| c.into_and().unwrap()).collect();
                        let x = |f: fn(&AndTriple) -> &RingTensor| xor_all(t.iter().map(f));
                        let (a, b, c) = (x(|t| &t.a), x(|t| &t.b), x(|t| &t.c));
                        assert_eq!(
                            c,
                            ndarray::Zip::from(&a).and(&b).map_collect(|&a, &b| a & b)
                        );
                    }
                    CorrelationRequest::BitPair { len } => {
                        let t: Vec<_> = got.into_iter().map(|c| c.into_bit().unwrap()).collect();
                        let r = xor_all(t.iter().map(|t| &t.r));
                        let ra = sum(t.iter().map(|t| t.r_arith.clone()).collect());
                        let rs = r.as_slice().unwrap();
                        for j in 0..*len {
                            assert_eq!(ra[[j]], (rs[j / 64] >> (j % 64)) & 1);
                        }
                    }
                    CorrelationRequest::SelectTriple { len } => {
                        let t: Vec<_> = got.into_iter().map(|c| c.into_select().unwrap()).collect();
                        let r = xor_all(t.iter().map(|t| &t.bits.r));
                        let ra = sum(t.iter().map(|t| t.bits.r_arith.clone()).collect());
                        let a = sum(t.iter().map(|t| t.a.clone()).collect());
                        let ar = sum(t.iter().map(|t| t.ar.clone()).collect());
                        let rs = r.as_slice().unwrap();
                        for j in 0..*len {
                            let bit = (rs[j / 64] >> (j % 64)) & 1;
                            assert_eq!(ra[[j]], bit);
                            assert_eq!(ar[[j]], a[[j]].wrapping_mul(bit));
                        }
                    }
                    CorrelationRequest::FixedMask { owner, .. } => {
                        let m: Vec<_> = got
                            .into_iter()
                            .map(|c| c.into_fixed_mask().unwrap())
                            .collect();
                        assert!(m.iter().all(|m| m.id == fixed.len() as u64));
                        // The owner holds all of A; the others' pieces are zero.
                        for (i, m) in m.iter().enumerate() {
                            let zero = m.a.iter().all(|&v| v == 0);
                            assert_eq!(zero, i != *owner, "party {i}, owner {owner}");
                        }
                        fixed.push(sum(m.into_iter().map(|m| m.a).collect()));
                    }
                    CorrelationRequest::FixedProduct { op, lhs, rhs } => {
                        let t: Vec<_> = got
                            .into_iter()
                            .map(|c| c.into_fixed_product().unwrap())
                            .collect();
                        let c = sum(t.into_iter().map(|t| t.c).collect());
                        let (a, b) = (&fixed[*lhs as usize], &fixed[*rhs as usize]);
                        assert_eq!(c, op.apply(&CpuBackend, a, b).unwrap());
                    }
                    CorrelationRequest::FixedTriple { mask, op, side } => {
                        let t: Vec<_> = got
                            .into_iter()
                            .map(|c| c.into_fixed_triple().unwrap())
                            .collect();
                        let b = sum(t.iter().map(|t| t.b.clone()).collect());
                        let c = sum(t.iter().map(|t| t.c.clone()).collect());
                        let a = &fixed[*mask as usize];
                        let expect = match side {
                            FixedSide::Lhs => op.apply(&CpuBackend, a, &b).unwrap(),
                            FixedSide::Rhs => op.apply(&CpuBackend, &b, a).unwrap(),
                        };
                        assert_eq!(c, expect);
                    }
                    _ => unreachable!(),
                }
            }
        }
    }
}

#[test]
fn the_client_needs_only_its_seed_and_same_seeds_give_same_material() {
    // Party 0 (the client) derives everything from its seed: no dealer source.
    let s = seeds(2, 40);
    let mut client = SeededPreprocessing::new(0, 2, &s[0], NoCorrections);
    let mut again = SeededPreprocessing::new(0, 2, &s[0], NoCorrections);
    for req in requests() {
        let a = now(client.next(&req)).unwrap();
        let b = now(again.next(&req)).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        if let (Correlation::Triple(x), Correlation::Triple(y)) = (&a, &b) {
            assert_eq!((&x.a, &x.b, &x.c), (&y.a, &y.b, &y.c));
        }
        assert!(
            !format!("{a:?}").contains(char::is_numeric),
            "Debug leaks values"
        );
    }
    // The server cannot proceed without corrections.
    let mut server = SeededPreprocessing::new(1, 2, &s[1], NoCorrections);
    assert!(matches!(
        now(server.next(&requests()[0])),
        Err(Error::Usage(_))
    ));
}

#[test]
fn dealer_over_a_channel_serves_the_same_corrections_as_in_process() {
    let s = seeds(2, 41);
    // Reference: the in-process last party.
    let mut reference = in_process(&s, CpuBackend).pop().unwrap();
    let expected: Vec<String> = requests()
        .iter()
        .map(|r| match now(reference.next(r)).unwrap() {
            Correlation::Triple(t) => format!("{:?}", t.c.iter().take(4).collect::<Vec<_>>()),
            other => format!("{:?}", core::mem::discriminant(&other)),
        })
        .collect();
    let s2 = s.clone();
    let results = run_parties(2, move |ch| {
        let s = s2.clone();
        async move {
            if ch.party() == 0 {
                // The server (last MPC party) talks to the dealer at index 1.
                let mut prep = SeededPreprocessing::new(1, 2, &s[1], DealerLink::new(ch, 1));
                let mut out = Vec::new();
                for r in requests() {
                    out.push(match prep.next(&r).await? {
                        Correlation::Triple(t) => {
                            format!("{:?}", t.c.iter().take(4).collect::<Vec<_>>())
                        }
                        other => format!("{:?}", core::mem::discriminant(&other)),
                    });
                }
                Ok((out, 0))
            } else {
                let mut ch = ch;
                let mut dealer = SeededDealer::new(&s, CpuBackend);
                let served = serve_dealer(&mut ch, 0, &mut dealer).await?;
                Ok((Vec::new(), served))
            }
        }
    });
    let (got, _) = results[0].clone().unwrap();
    assert_eq!(got, expected);
    assert_eq!(results[1].clone().unwrap().1, requests().len() as u64);
}

#[test]
fn a_dealer_that_answers_badly_gives_a_typed_error() {
    let req = requests()[0].clone();
    let good = encode_correction(&req, &[RingTensor::zeros(IxDyn(&[33]))]);
    let mut wrong_version = good.clone();
    wrong_version[0] = WIRE_VERSION + 1;
    let other = encode_correction(&requests()[3], &[RingTensor::zeros(IxDyn(&[4, 4]))]);
    let short_tensor = encode_correction(&req, &[RingTensor::zeros(IxDyn(&[32]))]);
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (good[..good.len() - 1].to_vec(), |e| {
            matches!(e, Error::Peer(PeerError::Truncated))
        }),
        (wrong_version, |e| {
            matches!(e, Error::Peer(PeerError::Version { .. }))
        }),
        (other, |e| {
            matches!(e, Error::Peer(PeerError::Unexpected(_)))
        }),
        (short_tensor, |e| {
            matches!(e, Error::Peer(PeerError::Malformed(_)))
        }),
        (vec![], |e| matches!(e, Error::Peer(PeerError::Truncated))),
    ];
    for (reply, check) in cases {
        let s = seeds(2, 42);
        let req = req.clone();
        let results = run_parties(2, move |mut ch| {
            let (s, req, reply) = (s.clone(), req.clone(), reply.clone());
            async move {
                if ch.party() == 0 {
                    let mut prep = SeededPreprocessing::new(1, 2, &s[1], DealerLink::new(ch, 1));
                    prep.next(&req).await.map(|_| ())
                } else {
                    let _ = ch.recv(0).await?;
                    ch.send(0, reply).await
                }
            }
        });
        let err = results[0].clone().unwrap_err();
        assert!(check(&err), "{err:?}");
    }
}

#[test]
fn a_dealer_that_receives_garbage_refuses_with_a_typed_error() {
    let s = seeds(2, 43);
    let mut bad_mask = encode_request(&CorrelationRequest::FixedTriple {
        mask: 5,
        op: BilinearOp::MatMul {
            lhs: vec![1, 2],
            rhs: vec![2, 2],
        },
        side: FixedSide::Rhs,
    });
    let unknown_product = encode_request(&CorrelationRequest::FixedProduct {
        op: BilinearOp::Hadamard { shape: vec![2] },
        lhs: 0,
        rhs: 7,
    });
    let garbage: Vec<Vec<u8>> = vec![
        vec![1, 2, 3],
        vec![],
        core::mem::take(&mut bad_mask),
        unknown_product,
    ];
    for g in garbage {
        let s = s.clone();
        let results = run_parties(2, move |mut ch| {
            let (s, g) = (s.clone(), g.clone());
            async move {
                if ch.party() == 0 {
                    ch.send(1, g).await?;
                    Ok(0)
                } else {
                    let mut dealer = SeededDealer::new(&s, CpuBackend);
                    serve_dealer(&mut ch, 0, &mut dealer).await
                }
            }
        });
        assert!(
            matches!(results[1], Err(Error::Peer(_))),
            "{:?}",
            results[1]
        );
    }
}

/// x² then x²·xᵀ, with the given preprocessing per party.
fn program<P: Preprocessing>(
    x: &RingTensor,
    preps: Vec<P>,
) -> Vec<hush_core::Result<(P, RingTensor)>> {
    let mut preps = preps.into_iter();
    run_parties(2, move |ch| {
        let prep = preps.next().unwrap();
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, Config::default()).await?;
            let me = p.id();
            let xs = p.input::<Arith>(0, (me == 0).then_some(x), &[3, 4]).await?;
            let y = p.square(&xs).await?;
            let xt = ArithShare::from_raw(xs.as_raw().t().as_standard_layout().into_owned());
            let w = p.matmul(&y, &xt).await?;
            let w = p.open(&w).await?;
            let (_, prep, _) = p.into_parts();
            Ok((prep, w))
        }
    })
}

#[test]
fn recorded_requests_pregenerate_an_identical_online_run() {
    let mut prg = data_prg(44);
    let x = prg.tensor(&[3, 4]);
    let fp = hush_core::FixedPoint::default();
    let x = fp
        .encode_tensor(&fp.decode_tensor(&x).mapv(|v| v % 100.0))
        .unwrap();
    // Learn the request sequence once.
    let recorders: Vec<_> = in_process(&seeds(2, 44), CpuBackend)
        .into_iter()
        .map(Recorder::new)
        .collect();
    let learned: Vec<Vec<CorrelationRequest>> = program(&x, recorders)
        .into_iter()
        .map(|r| r.unwrap().0.into_parts().1)
        .collect();
    assert_eq!(learned[0], learned[1]);
    assert_eq!(
        learned[0].len(),
        4,
        "square, truncation, matmul triple, truncation"
    );
    // Offline: pregenerate; online: run from the queue.
    let pregen: Vec<Pregenerated> = in_process(&seeds(2, 45), CpuBackend)
        .into_iter()
        .map(|mut p| now(Pregenerated::generate(&mut p, &learned[0])).unwrap())
        .collect();
    let out = program(&x, pregen);
    let mut opened = Vec::new();
    for r in out {
        let (prep, w) = r.unwrap();
        assert_eq!(prep.remaining(), 0);
        assert_eq!(w.shape(), &[3, 3]);
        opened.push(w);
    }
    // Same result as plaintext (x² · xᵀ), within the two truncations' error.
    let xf = fp.decode_tensor(&x);
    let x2 = xf.mapv(|v| v * v);
    let expect = ndarray::Array2::from_shape_fn((3, 3), |(i, j)| {
        (0..4).map(|k| x2[[i, k]] * xf[[j, k]]).sum::<f64>()
    })
    .into_dyn();
    let got = fp.decode_tensor(&opened[0]);
    let tol = 4.0 * 100.0 / 65536.0 + 1.0 / 65536.0;
    assert!(
        max_abs_err(&got, &expect) <= tol,
        "{}",
        max_abs_err(&got, &expect)
    );
    // Out of order is an error, not silent misuse.
    let mut p = now(Pregenerated::generate(
        &mut in_process(&seeds(2, 46), CpuBackend)[0],
        &learned[0],
    ))
    .unwrap();
    assert!(matches!(now(p.next(&learned[0][2])), Err(Error::Usage(_))));
}

#[test]
fn one_sided_and_correlations_are_correct_and_two_party_only() {
    use hush_core::preprocessing::seeded::SeededDealer;
    let req = CorrelationRequest::OneSidedAnd { words: 7 };
    let mut preps = in_process(&seeds(2, 50), CpuBackend);
    let got: Vec<_> = preps
        .iter_mut()
        .map(|p| now(p.next(&req)).unwrap().into_one_sided().unwrap())
        .collect();
    let (a, b) = (&got[0].mask, &got[1].mask);
    let z = xor_all([&got[0].z, &got[1].z].into_iter());
    assert_eq!(z, ndarray::Zip::from(a).and(b).map_collect(|&x, &y| x & y));
    let mut three = SeededDealer::new(&seeds(3, 51), CpuBackend);
    assert!(matches!(three.generate(&req), Err(Error::Unsupported(_))));
}

#[test]
fn a_request_counts_the_elements_it_draws() {
    // A [2,3]·[3,4] triple draws A (6), B (12) and C (8).
    let req = CorrelationRequest::Triple(BilinearOp::MatMul {
        lhs: vec![2, 3],
        rhs: vec![3, 4],
    });
    assert_eq!(draws(&req).unwrap().elements(), Some(26));
    // Shapes whose product overflows (never validated) count as None.
    let huge = CorrelationRequest::Square {
        shape: vec![usize::MAX, 2],
    };
    assert_eq!(draws(&huge).unwrap().elements(), None);
}
