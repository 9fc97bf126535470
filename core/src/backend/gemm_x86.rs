//! x86-64 kernels for the tiled product, chosen at run time: AVX-512, or
//! the portable kernel compiled for AVX2.
//!
//! Wrapping 64-bit products are what every share product is made of, and
//! x86-64 only has a vector instruction for them with AVX-512DQ
//! (`vpmullq`): eight lanes a cycle where the portable kernel does one
//! multiply per cycle. The compiler cannot use it in a portable build, so this
//! module compiles the tiled driver (and the vector-times-matrix loop) once
//! more inside a `#[target_feature(enable = "avx512f,avx512dq")]` function,
//! with an `8 × 8` kernel (eight `zmm` accumulators, one broadcast of `a` and
//! one load of `b` per step), and calls it only after
//! `is_x86_feature_detected!` said the CPU has both features. A CPU without
//! them but with AVX2 gets the portable `4 × 4` kernel compiled for AVX2
//! (the compiler vectorizes it with `vpmuludq` on 32-bit halves: about 1.4×
//! the scalar build; a hand-written AVX2 kernel measured slower).
//!
//! On CPUs with Intel AMX, products large enough go to `super::gemm_amx`
//! instead (three times faster than `vpmullq` there); `HUSH_CPU_GEMM` caps
//! the choice ([`crate::cpu_cap`]).
//!
//! This is one of the core's two islands of `unsafe` (with `gemm_amx`; the
//! crate denies it everywhere else), five uses, each with its argument next
//! to it: the calls into the
//! `#[target_feature]` functions (sound because the features were detected),
//! and the unaligned vector load and store (sound because each touches a
//! whole `[u64; 8]` the borrow checker vouches for). No share data is read
//! differently: the kernel computes exactly the portable kernel's sums
//! (tests compare the two bit for bit).

#![allow(unsafe_code)]

use super::gemm::{Gemm, Rows, gemm_with, micro_kernel as portable_kernel};
use crate::cpu_cap::Capped;
use crate::ring::Ring;
use core::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_loadu_si512, _mm512_mullo_epi64, _mm512_set1_epi64,
    _mm512_setzero_si512, _mm512_storeu_si512,
};

const MR: usize = 8;
const NR: usize = 8;

/// The kernels of this module, fastest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kernel {
    /// AMX (`super::gemm_amx`) for products large enough, the AVX-512
    /// kernel for the rest.
    Amx,
    /// AVX-512F and AVX-512DQ: the `8 × 8` `vpmullq` kernel.
    Avx512,
    /// AVX2: the portable kernel compiled for it.
    Avx2,
    /// None of this module's: the portable kernel as built.
    Portable,
}

impl crate::cpu_cap::Capped for Kernel {
    /// Caps the kernel (`amx`, `avx512`, `avx2` or `portable`): the CPU's
    /// best kernel no faster than it.
    const VAR: &'static str = "HUSH_CPU_GEMM";
    const ALL: &'static [Kernel] = &[Kernel::Amx, Kernel::Avx512, Kernel::Avx2, Kernel::Portable];
    fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "amx",
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }
}

/// The kernel this process uses: the best this CPU can run, capped by
/// `HUSH_CPU_GEMM`. Detected once.
fn detect() -> Kernel {
    static KERNEL: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
    *KERNEL.get_or_init(|| {
        let cap = crate::cpu_cap::from_env::<Kernel>();
        let avx512 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq");
        if avx512 && cap <= Kernel::Amx && super::gemm_amx::available() {
            Kernel::Amx
        } else if avx512 && cap <= Kernel::Avx512 {
            Kernel::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2") && cap <= Kernel::Avx2 {
            Kernel::Avx2
        } else {
            Kernel::Portable
        }
    })
}

/// Whether an `m × k · k × n` product goes to AMX here.
pub(super) fn amx_for(m: usize, k: usize, n: usize) -> bool {
    detect() == Kernel::Amx && super::gemm_amx::worth_it(m, k, n)
}

/// The kernel [`try_gemm`] picks on this CPU, if any of this module's.
pub(super) fn kernel_name() -> Option<&'static str> {
    match detect() {
        Kernel::Portable => None,
        k => Some(k.name()),
    }
}

/// `rows = a · b` with the best kernel this CPU has (and `HUSH_CPU_GEMM`
/// allows): AMX for large products, AVX-512, else the portable one built for
/// AVX2; `false` (and `rows` untouched) if it has none of them.
pub(super) fn try_gemm(g: Gemm<'_>, rows: Rows<'_, '_>) -> bool {
    match detect() {
        Kernel::Amx if super::gemm_amx::worth_it(g.m, g.k, g.n) => super::gemm_amx::gemm(g, rows),
        // SAFETY: `gemm_avx512` needs AVX-512F and AVX-512DQ, which `detect`
        // found on the CPU this runs on (AMX is only chosen with them).
        Kernel::Amx | Kernel::Avx512 => unsafe { gemm_avx512(g, rows) },
        // SAFETY: `gemm_avx2` needs AVX2, which `detect` found.
        Kernel::Avx2 => unsafe { gemm_avx2(g, rows) },
        Kernel::Portable => return false,
    }
    true
}

#[target_feature(enable = "avx2")]
fn gemm_avx2(g: Gemm<'_>, rows: Rows<'_, '_>) {
    gemm_with(g, rows, portable_kernel)
}

#[target_feature(enable = "avx512f,avx512dq")]
fn gemm_avx512(g: Gemm<'_>, rows: Rows<'_, '_>) {
    gemm_with::<MR, NR>(g, rows, |ap, bp| kernel(ap, bp))
}

/// `Σ_p ap[p]ᵀ · bp[p]` for packed panels: `ap` is `kc` columns of 8 rows,
/// `bp` is `kc` rows of 8 columns.
#[target_feature(enable = "avx512f,avx512dq")]
#[inline]
fn kernel(ap: &[Ring], bp: &[Ring]) -> [[Ring; NR]; MR] {
    let mut acc: [__m512i; MR] = [_mm512_setzero_si512(); MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        let b: &[Ring; NR] = b.try_into().expect("chunks_exact yields NR values");
        // SAFETY: `b` is a borrowed `[u64; 8]`, 64 readable bytes; the
        // unaligned load has no alignment requirement.
        let bv = unsafe { _mm512_loadu_si512(b.as_ptr().cast()) };
        for (acc, &av) in acc.iter_mut().zip(a) {
            let prod = _mm512_mullo_epi64(_mm512_set1_epi64(av as i64), bv);
            *acc = _mm512_add_epi64(*acc, prod);
        }
    }
    let mut out = [[0; NR]; MR];
    for (row, v) in out.iter_mut().zip(acc) {
        // SAFETY: `row` is a mutably borrowed `[u64; 8]`, 64 writable bytes;
        // the unaligned store has no alignment requirement.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gemm::for_each_case;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn kernel_caps_are_parsed_by_name() {
        use crate::cpu_cap::parse;
        assert!(parse("avx512") == Some(Kernel::Avx512));
        assert!(parse(" amx\n") == Some(Kernel::Amx));
        assert!(parse("portable") == Some(Kernel::Portable));
        assert!(parse::<Kernel>("AVX-512").is_none() && parse::<Kernel>("").is_none());
    }

    #[test]
    fn x86_kernels_match_naive_where_the_cpu_has_them() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            std::eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let shapes = [
            (1, 1024, 77),
            (3, 50, 1030),
            (8, 1, 8),
            (9, 257, 17),
            (96, 256, 1024),
            (100, 300, 1030),
            (13, 5, 3),
        ];
        for_each_case(9, &shapes, |m, k, n, a, b, want| {
            let g = Gemm::dense(m, k, n, a, b);
            let mut c = vec![7; m * n];
            let mut rows: Vec<&mut [Ring]> = c.chunks_mut(n).collect();
            assert!(try_gemm(g, &mut rows));
            assert_eq!(c, want, "best kernel {m}x{k}x{n}");
            let mut c = vec![7; m * n];
            let mut rows: Vec<&mut [Ring]> = c.chunks_mut(n).collect();
            // SAFETY: AVX2 was detected at the top of the test.
            unsafe { gemm_avx2(g, &mut rows) };
            assert_eq!(c, want, "AVX2 {m}x{k}x{n}");
            // The AVX-512 kernel too where the CPU has it (on an AMX CPU
            // `try_gemm` takes AMX for the larger shapes).
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
            {
                let mut c = vec![7; m * n];
                let mut rows: Vec<&mut [Ring]> = c.chunks_mut(n).collect();
                // SAFETY: AVX-512F and AVX-512DQ were just detected.
                unsafe { gemm_avx512(g, &mut rows) };
                assert_eq!(c, want, "AVX-512 {m}x{k}x{n}");
            }
        });
    }
}
