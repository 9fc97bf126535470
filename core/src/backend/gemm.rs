//! Cache-tiled wrapping `u64` matrix product.
//!
//! The classic Goto/BLIS structure: `C` is cut into `MC × NC` blocks, the
//! `K` dimension into `KC` slices; each slice of `B` is packed into panels
//! `NR` columns wide and each slice of `A` into panels `MR` rows tall, both
//! contiguous in the order the micro-kernel reads them, so the kernel streams
//! from L1 while its `MR × NR` accumulators stay in registers. Edges are padded
//! with zeros in the packed copies, so any shape (empty included) works.
//!
//! The output is a list of row slices ([`Rows`]), not necessarily one
//! contiguous matrix: a thread's share of a product split by columns is a
//! piece of every row, written in place.
//!
//! The driver is generic over the micro-kernel: a portable `4 × 4` one here,
//! and on x86-64 with `std` an `8 × 8` AVX-512 one or the portable one built
//! for AVX2 (`super::gemm_x86`), picked at run time by what the CPU has.

use crate::ring::Ring;
use alloc::vec;
use alloc::vec::Vec;

/// Rows of the portable micro-kernel.
const MR: usize = 4;
/// Products with fewer rows than this take the vector-times-matrix path.
const FEW_ROWS: usize = 4;
/// Columns of the portable micro-kernel.
const NR: usize = 4;
/// Row blocks a caller splitting `C` between threads should align to: a
/// multiple of every micro-kernel's `MR` and `NR`.
#[cfg(feature = "std")]
pub(crate) const SPLIT_ALIGN: usize = 8;
const KC: usize = 256;
const MC: usize = 96;
const NC: usize = 1024;

/// Row-major matrix view with a leading dimension (row stride).
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [Ring],
    pub ld: usize,
}

/// The operands of one product `a · b`: `a` is `m × k`, `b` is `k × n`.
#[derive(Clone, Copy)]
pub(crate) struct Gemm<'a> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a: MatRef<'a>,
    pub b: MatRef<'a>,
}

impl<'a> Gemm<'a> {
    /// Contiguous row-major operands.
    pub fn dense(m: usize, k: usize, n: usize, a: &'a [Ring], b: &'a [Ring]) -> Self {
        Gemm {
            m,
            k,
            n,
            a: MatRef { data: a, ld: k },
            b: MatRef { data: b, ld: n },
        }
    }

    /// Rows `r0..r0 + h` of the product.
    #[cfg(feature = "std")]
    pub fn rows(self, r0: usize, h: usize) -> Self {
        let a = MatRef {
            data: &self.a.data[r0 * self.a.ld..],
            ld: self.a.ld,
        };
        Gemm { m: h, a, ..self }
    }

    /// Columns `j0..j0 + w` of the product.
    #[cfg(feature = "std")]
    pub fn cols(self, j0: usize, w: usize) -> Self {
        let b = MatRef {
            data: &self.b.data[j0..],
            ld: self.b.ld,
        };
        Gemm { n: w, b, ..self }
    }
}

/// Rows of an output: each a mutable slice of at least `n` values, not
/// necessarily contiguous with the next.
pub(crate) type Rows<'r, 'c> = &'r mut [&'c mut [Ring]];

/// `c[m×n] (leading dimension ldc) = a · b`, single-threaded.
pub(crate) fn gemm_serial(g: Gemm<'_>, c: &mut [Ring], ldc: usize) {
    if g.m == 0 || g.n == 0 {
        return;
    }
    let mut rows: Vec<&mut [Ring]> = c.chunks_mut(ldc).take(g.m).collect();
    gemm_rows(g, &mut rows)
}

/// `rows[i][..n] = (a · b)[i]` for every row `i < m`, single-threaded.
pub(crate) fn gemm_rows(g: Gemm<'_>, rows: Rows<'_, '_>) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if super::gemm_x86::try_gemm(g, rows) {
        return;
    }
    gemm_with::<MR, NR>(g, rows, micro_kernel)
}

/// `rows = a · b` with an `MR × NR` micro-kernel: a few rows stream `b`
/// ([`gemm_few_rows`]), more are tiled ([`gemm_tiled`]). Always inlined, so
/// that an instantiation inside a `#[target_feature]` function is compiled
/// for those features.
#[inline(always)]
pub(super) fn gemm_with<const MR: usize, const NR: usize>(
    g: Gemm<'_>,
    rows: Rows<'_, '_>,
    kernel: impl Fn(&[Ring], &[Ring]) -> [[Ring; NR]; MR],
) {
    for row in rows.iter_mut().take(g.m) {
        row[..g.n].fill(0);
    }
    if g.m < FEW_ROWS {
        gemm_few_rows(g, rows)
    } else {
        gemm_tiled::<MR, NR>(g, rows, kernel)
    }
}

/// Adds `a · b` into the zeroed `rows` for products with fewer rows than a
/// micro-kernel (a vector times a matrix):
/// packing would cost as much as the product and pad the rows to `MR`, so
/// stream `b` once, row by row, into the `m` output rows. Zero entries of
/// `a` are multiplied like any other, so the time does not depend on them
/// (`a` may be the owner's weights).
#[inline(always)]
fn gemm_few_rows(g: Gemm<'_>, rows: Rows<'_, '_>) {
    let Gemm { m, k, n, a, b } = g;
    for p in 0..k {
        let brow = &b.data[p * b.ld..p * b.ld + n];
        for (i, row) in rows.iter_mut().enumerate().take(m) {
            let av = a.data[i * a.ld + p];
            for (cv, &bv) in row[..n].iter_mut().zip(brow) {
                *cv = cv.wrapping_add(av.wrapping_mul(bv));
            }
        }
    }
}

/// Adds `a · b` into the zeroed `rows`: the packed, cache-tiled product with
/// an `MR × NR` micro-kernel, which maps a packed `A` panel (`kc` columns of
/// `MR`) and `B` panel (`kc` rows of `NR`) to their product.
#[inline(always)]
fn gemm_tiled<const MR: usize, const NR: usize>(
    g: Gemm<'_>,
    rows: Rows<'_, '_>,
    kernel: impl Fn(&[Ring], &[Ring]) -> [[Ring; NR]; MR],
) {
    let Gemm { m, k, n, a, b } = g;
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let mut bpack = vec![0u64; KC * NC.min(n.next_multiple_of(NR))];
    let mut apack = vec![0u64; MC.next_multiple_of(MR) * KC];
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b::<NR>(b, pc, kc, jc, nc, &mut bpack);
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a::<MR>(a, ic, mc, pc, kc, &mut apack);
                let tile = Tile { mc, nc, kc, ic, jc };
                macro_kernel(tile, &apack, &bpack, rows, &kernel);
            }
        }
    }
}

/// Packs `b[pc..pc+kc, jc..jc+nc]` into panels of `NR` columns, each panel
/// stored as `kc` rows of `NR` contiguous values (zero-padded).
///
/// The source is read row by row, each row once and in order, and its `NR`
/// wide pieces dealt to the panels: reading a panel at a time instead walks
/// `b` down a column with a stride of a whole row (a page or more for wide
/// operands), which the prefetchers do not follow — that packing cost as much
/// as a sixth of a `512³` product.
#[inline(always)]
fn pack_b<const NR: usize>(
    b: MatRef<'_>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    out: &mut [Ring],
) {
    let whole = nc / NR;
    let panel_len = kc * NR;
    for p in 0..kc {
        let row = &b.data[(pc + p) * b.ld + jc..][..nc];
        let (body, tail) = row.split_at(whole * NR);
        for (panel, piece) in body.chunks_exact(NR).enumerate() {
            // A fixed-size copy the compiler inlines (a `memcpy` call per
            // 64 bytes cost more than the kernel).
            let (d, piece): (&mut [Ring; NR], &[Ring; NR]) = (
                (&mut out[panel * panel_len + p * NR..][..NR])
                    .try_into()
                    .expect("NR values"),
                piece.try_into().expect("chunks of NR"),
            );
            *d = *piece;
        }
        if !tail.is_empty() {
            let d = &mut out[whole * panel_len + p * NR..][..NR];
            d[..tail.len()].copy_from_slice(tail);
            d[tail.len()..].fill(0);
        }
    }
}

/// Packs `a[ic..ic+mc, pc..pc+kc]` into panels of `MR` rows, each panel stored
/// as `kc` columns of `MR` contiguous values (zero-padded).
#[inline(always)]
fn pack_a<const MR: usize>(
    a: MatRef<'_>,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    out: &mut [Ring],
) {
    for (panel, i0) in (0..mc).step_by(MR).enumerate() {
        let h = MR.min(mc - i0);
        let dst = &mut out[panel * kc * MR..(panel + 1) * kc * MR];
        for p in 0..kc {
            let d = &mut dst[p * MR..p * MR + MR];
            for (r, slot) in d.iter_mut().enumerate() {
                *slot = if r < h {
                    a.data[(ic + i0 + r) * a.ld + pc + p]
                } else {
                    0
                };
            }
        }
    }
}

/// Where a macro-kernel's block lies: `mc × nc` outputs from row `ic`,
/// column `jc` of the product, `kc` deep.
#[derive(Clone, Copy)]
struct Tile {
    mc: usize,
    nc: usize,
    kc: usize,
    ic: usize,
    jc: usize,
}

#[inline(always)]
fn macro_kernel<const MR: usize, const NR: usize>(
    tile: Tile,
    apack: &[Ring],
    bpack: &[Ring],
    rows: Rows<'_, '_>,
    kernel: &impl Fn(&[Ring], &[Ring]) -> [[Ring; NR]; MR],
) {
    let Tile { mc, nc, kc, ic, jc } = tile;
    for (jp, j0) in (0..nc).step_by(NR).enumerate() {
        let bp = &bpack[jp * kc * NR..(jp + 1) * kc * NR];
        let w = NR.min(nc - j0);
        for (ip, i0) in (0..mc).step_by(MR).enumerate() {
            let ap = &apack[ip * kc * MR..(ip + 1) * kc * MR];
            let acc = kernel(ap, bp);
            let h = MR.min(mc - i0);
            for (r, acc_row) in acc.iter().enumerate().take(h) {
                let crow = &mut rows[ic + i0 + r][jc + j0..][..w];
                for (cv, &v) in crow.iter_mut().zip(acc_row) {
                    *cv = cv.wrapping_add(v);
                }
            }
        }
    }
}

/// The portable micro-kernel (scalar; the compiler may vectorize it).
#[inline(always)]
pub(super) fn micro_kernel(ap: &[Ring], bp: &[Ring]) -> [[Ring; NR]; MR] {
    let mut acc = [[0u64; NR]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = acc[i][j].wrapping_add(a[i].wrapping_mul(b[j]));
            }
        }
    }
    acc
}

/// Reference triple loop, for tests.
#[cfg(test)]
pub(crate) fn gemm_naive(m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring]) -> Vec<Ring> {
    let mut c = vec![0u64; m * n];
    for i in 0..m {
        for p in 0..k {
            for j in 0..n {
                c[i * n + j] = c[i * n + j].wrapping_add(a[i * k + p].wrapping_mul(b[p * n + j]));
            }
        }
    }
    c
}

/// Test helper: for each shape, random operands (from `seed`) and their
/// naive product, handed to `check`, which runs a product and compares.
#[cfg(test)]
pub(crate) fn for_each_case(
    seed: u8,
    shapes: &[(usize, usize, usize)],
    mut check: impl FnMut(usize, usize, usize, &[Ring], &[Ring], &[Ring]),
) {
    let mut prg = crate::prg::Prg::new(&crate::prg::Seed::from_bytes([seed; 32]));
    for &(m, k, n) in shapes {
        let mut a = vec![0; m * k];
        let mut b = vec![0; k * n];
        prg.fill(&mut a);
        prg.fill(&mut b);
        let want = gemm_naive(m, k, n, &a, &b);
        check(m, k, n, &a, &b, &want);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiled_gemm_matches_naive_on_awkward_shapes() {
        let shapes = [
            (0, 3, 3),
            (3, 0, 3),
            (3, 3, 0),
            (1, 1, 1),
            (5, 7, 3),
            (17, 300, 9),
            (97, 257, 1030),
            (4, 4, 4),
            (1, 1024, 77),
            (3, 50, 1030),
        ];
        for_each_case(3, &shapes, |m, k, n, a, b, want| {
            let g = Gemm::dense(m, k, n, a, b);
            // The dispatching entry point (AVX-512 where the CPU has it)...
            let mut c = vec![7; m * n];
            gemm_serial(g, &mut c, n);
            assert_eq!(c, want, "{m}x{k}x{n}");
            // ...and the portable kernel on every machine.
            let mut c = vec![7; m * n];
            if n > 0 {
                let mut rows: Vec<&mut [Ring]> = c.chunks_mut(n).collect();
                gemm_with::<MR, NR>(g, &mut rows, micro_kernel);
            }
            assert_eq!(c, want, "portable {m}x{k}x{n}");
        });
    }
}
