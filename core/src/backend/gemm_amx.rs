//! Wrapping 64-bit matrix products on Intel AMX (Advanced Matrix
//! Extensions), chosen at run time where the CPU and the OS offer it.
//!
//! AMX multiplies 8-bit integers: one `tdpbuud` adds a `16 × 64` by
//! `64 × 16` product of unsigned bytes into `16 × 16` 32-bit sums, 16,384
//! multiply-adds, about as many per cycle as `vpmullq` does 64-bit ones
//! in 200. A ring element is eight bytes, `a = Σ_i a_i·2^{8i}`, so
//!
//! ```text
//! a·b mod 2^64 = Σ_{s=0..7} 2^{8s} · C_s,   C_s = Σ_{i+j=s} a_i·b_j
//! ```
//!
//! (products with `i + j ≥ 8` vanish mod 2^64): 36 byte-matrix products per
//! ring product, each an exact 32-bit sum. `C_s` is needed modulo
//! `2^{64−8s}`; for `s ≥ 4` that is at most 32 bits, where the wrapping
//! 32-bit sum is right, and for `s ≤ 3` the sum is exact as long as
//! `(s+1)·k·255² < 2^32`, which [`KB`] (the depth summed in one go) keeps.
//! So the product is exact for every input: tests compare it bit for bit
//! with the naive product. No lookup or branch depends on the operands.
//!
//! Layout: both operands are split into byte planes and packed into tiles
//! of 16 rows of 64 bytes (1 KiB, 64-byte aligned), indexed `(strip,
//! depth chunk, byte, half)`: `A`'s strips are 32 rows, its tiles 16 rows
//! by 64 columns of the depth; `B`'s strips are 32 columns, its tiles 64
//! rows of the depth in the "VNNI" order `tdpbuud` reads (tile row `g`
//! holds rows `4g..4g+4` of `B`, interleaved by column). A `32 × 32` block
//! of the output keeps four accumulator tiles (2 × 2), two tiles of `A` and
//! two of `B`: all eight tile registers. The loops are depth-major: for one
//! chunk of depth, the block's 32 operand tiles (32 KiB, in L1) serve all
//! 36 byte pairs, and the eight `C_s` are loaded, advanced and stored in
//! turn; ordered byte-major instead, the same tiles came from L2 and the
//! product ran at a third of the speed. Each thread keeps its packing
//! buffers between products (fresh ones cost page faults and zeroing).
//!
//! Unsafe code, with its argument at each use: Rust has no stable AMX
//! intrinsics, so the tile instructions are inline assembly (loads from and
//! stores to tiles this module owns, register-only products); Linux must be
//! asked once per process for the tile state (`arch_prctl`, a `syscall`).
//! The tile registers live across `asm!` blocks: no compiler-generated code
//! uses them (the crate is never built with the AMX target features), and
//! every product configures them first and releases them last.

#![allow(unsafe_code)]

use super::gemm::{Gemm, MatRef, Rows};
use crate::ring::Ring;
use alloc::vec::Vec;
use core::arch::asm;
use core::arch::x86_64::{
    __m512i, _mm512_loadu_si512, _mm512_permutex2var_epi64, _mm512_permutexvar_epi8,
    _mm512_set_epi8, _mm512_set_epi64, _mm512_storeu_si512, _mm512_unpackhi_epi64,
    _mm512_unpacklo_epi64,
};

/// Rows of `A` (and columns of `B`) in one strip: two tiles of 16.
const STRIP: usize = 32;
/// Depth of one tile: 64 bytes of a row of `A`, 64 rows of `B`.
const KT: usize = 64;
/// Depth summed into the 32-bit accumulators before they are folded into
/// 64-bit ones: `4 · KB · 255² < 2^32` (the exactness bound for `s ≤ 3`).
const KB: usize = 1024;
const _: () = assert!(4 * KB * 255 * 255 < 1 << 32);

/// Smallest product worth the byte planes: below this many rows, columns or
/// depth the padding to tiles and the eight passes of folding cost more
/// than the AVX-512 kernel (measured with `hush bench --suite gpu
/// --gemm-cpu` and the ops suite on a Sapphire Rapids core).
pub(super) fn worth_it(m: usize, k: usize, n: usize) -> bool {
    m >= 16 && n >= 16 && k >= 32
}

/// Whether this CPU and OS can run the AMX kernel: AMX-TILE and AMX-INT8,
/// AVX-512F/BW/VBMI (for packing), the tile state enabled in XCR0, and on
/// Linux the permission to use it, asked for once per process. Cached.
pub(super) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

fn detect() -> bool {
    if !(std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("xsave"))
    {
        return false;
    }
    // CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8.
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    if leaf7.edx & (1 << 24) == 0 || leaf7.edx & (1 << 25) == 0 {
        return false;
    }
    // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves tile state.
    let xcr0_lo: u32;
    // SAFETY: `xgetbv` with ECX = 0 only reads XCR0; it faults unless the
    // OS set CR4.OSXSAVE, which `is_x86_feature_detected!("xsave")`
    // checked above (it reports xsave only with OSXSAVE set).
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") xcr0_lo, out("edx") _,
             options(nomem, nostack, preserves_flags));
    }
    if xcr0_lo & (0b11 << 17) != 0b11 << 17 {
        return false;
    }
    request_tile_permission()
}

/// Linux gives a process the (8 KiB) tile state only when asked:
/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`. Without it the
/// first tile instruction raises SIGILL.
#[cfg(target_os = "linux")]
fn request_tile_permission() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the `arch_prctl` system call with these arguments only widens
    // the set of extended states this process may use; it reads and writes
    // no memory of ours. The kernel clobbers RCX and R11, declared here.
    unsafe {
        asm!("syscall",
             inlateout("rax") SYS_ARCH_PRCTL => ret,
             in("rdi") ARCH_REQ_XCOMP_PERM,
             in("rsi") XFEATURE_XTILEDATA,
             lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    ret == 0
}

/// Elsewhere the permission call is not known: AMX is not used.
#[cfg(not(target_os = "linux"))]
fn request_tile_permission() -> bool {
    false
}

/// One tile of an operand: 16 rows of 64 bytes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Tile([u8; 1024]);

impl Tile {
    const ZERO: Tile = Tile([0; 1024]);
}

/// A thread's packed operands, kept between products: fresh buffers cost
/// page faults and zeroing every time (a tenth of a `512³` product).
#[derive(Default)]
struct Packed {
    a: Vec<Tile>,
    b: Vec<Tile>,
}

/// Buffers larger than this (in tiles, 64 MiB) are freed after the product
/// instead of kept for the next one.
const KEEP_TILES: usize = 64 << 10;

impl Packed {
    fn trim(&mut self) {
        for v in [&mut self.a, &mut self.b] {
            if v.capacity() > KEEP_TILES {
                *v = Vec::new();
            }
        }
    }
}

std::thread_local! {
    static PACKED: core::cell::RefCell<Packed> = core::cell::RefCell::new(Packed::default());
}

/// The first `len` tiles of `v`, grown with zero tiles if needed; what a
/// previous product left in them is overwritten by the packing (or zeroed as
/// padding).
fn take_tiles(v: &mut Vec<Tile>, len: usize) -> &mut [Tile] {
    if v.len() < len {
        v.resize(len, Tile::ZERO);
    }
    &mut v[..len]
}

/// One accumulator tile: 16 rows of 16 sums.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct SumTile([[u32; 16]; 16]);

/// The tile configuration `ldtilecfg` reads: palette 1, eight tiles of 16
/// rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// `rows = a · b` on AMX. Only call where [`available`] said yes.
pub(super) fn gemm(g: Gemm<'_>, rows: Rows<'_, '_>) {
    assert!(available(), "gemm_amx::gemm without AMX");
    let Gemm { m, k, n, a, b } = g;
    // SAFETY: `available` found AVX-512F/BW/VBMI and AMX-TILE/INT8 on this
    // CPU, the tile state enabled by the OS and granted to this process.
    unsafe { multiply(m, k, n, a, &Dense { b, n }, rows) }
}

/// `rows = a · B` on AMX for the im2col matrix `B` that `view` describes
/// (its columns `view.col0 .. view.col0 + n`), read from the image while it
/// is packed instead of made first. Only call where [`available`] said yes.
pub(crate) fn conv(a: MatRef<'_>, m: usize, view: &Im2col<'_>, n: usize, rows: Rows<'_, '_>) {
    assert!(available(), "gemm_amx::conv without AMX");
    // SAFETY: as in `gemm`.
    unsafe { multiply(m, view.rows(), n, a, &(*view, n), rows) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn multiply<P: Panel>(m: usize, k: usize, n: usize, a: MatRef<'_>, b: &P, rows: Rows<'_, '_>) {
    if m == 0 || n == 0 {
        return;
    }
    let kch = k.div_ceil(KT);
    PACKED.with(|packed| {
        // Not re-entered (nothing below calls back into a product), so the
        // borrow cannot fail; a fresh pair of buffers would do if it did.
        let mut fresh = Packed::default();
        let mut guard = packed.try_borrow_mut();
        let packed = guard.as_deref_mut().unwrap_or(&mut fresh);
        pack_a(m, k, a, kch, &mut packed.a);
        pack_b(b, k, n, kch, &mut packed.b);
        product(m, n, kch, &packed.a, &packed.b, rows);
        packed.trim();
    });
}

/// The tile loops of [`multiply`] on packed operands.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn product(m: usize, n: usize, kch: usize, a: &[Tile], b: &[Tile], rows: Rows<'_, '_>) {
    let chunks_per_block = KB / KT;
    // SAFETY: `CONFIG` is a valid palette-1 configuration, 64 readable
    // bytes; loading it only sets the tile registers' shapes.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
    // The block's eight 32-bit sums `C_0..C_7`, four tiles each, kept in
    // memory between depth steps (the registers hold one `C_s` at a time).
    let mut sums = [[SumTile([[0; 16]; 16]); 4]; 8];
    for cs in 0..n.div_ceil(STRIP) {
        for rs in 0..m.div_ceil(STRIP) {
            for kb in (0..kch.max(1)).step_by(chunks_per_block) {
                let chunks = kb..(kb + chunks_per_block).min(kch);
                // Depth-major: one depth step's 16 + 16 operand tiles are
                // reused by all 36 byte pairs while they sit in L1.
                for kc in chunks.clone() {
                    let at = &a[(rs * kch + kc) * 16..][..16];
                    let bt = &b[(cs * kch + kc) * 16..][..16];
                    for (s, sum) in sums.iter_mut().enumerate() {
                        if kc == chunks.start {
                            zero_sums();
                        } else {
                            load_sums(sum);
                        }
                        for i in 0..=s {
                            let j = s - i;
                            step(&at[i * 2..i * 2 + 2], &bt[j * 2..j * 2 + 2]);
                        }
                        store_sums(sum);
                    }
                }
                let (r0, c0) = (rs * STRIP, cs * STRIP);
                fold(
                    &sums,
                    rows,
                    r0,
                    c0,
                    (m - r0).min(STRIP),
                    (n - c0).min(STRIP),
                    kb == 0,
                );
            }
        }
    }
    // SAFETY: register-only; returns the tile registers to their initial
    // state, so the OS saves nothing for them at the next context switch.
    unsafe { asm!("tilerelease", options(nomem, nostack, preserves_flags)) };
}

/// Zeroes the four accumulator tiles.
#[inline(always)]
fn zero_sums() {
    // SAFETY: register-only, on tiles configured by `gemm_detected`.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Adds one depth step of a `32 × 32` block: `a` holds `A`'s two tiles
/// (rows 0–15, 16–31), `b` `B`'s two (columns 0–15, 16–31).
#[inline(always)]
fn step(a: &[Tile], b: &[Tile]) {
    let (a0, a1, b0, b1) = (&a[0], &a[1], &b[0], &b[1]);
    // SAFETY: each `tileloadd` reads 16 rows of 64 bytes with a stride of
    // 64 from the start of a borrowed `Tile`: exactly its 1,024 bytes. The
    // products read and write tile registers only.
    unsafe {
        asm!(
            "tileloadd tmm4, [{a0} + {stride}*1]",
            "tileloadd tmm6, [{b0} + {stride}*1]",
            "tdpbuud tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b1} + {stride}*1]",
            "tdpbuud tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {stride}*1]",
            "tdpbuud tmm2, tmm5, tmm6",
            "tdpbuud tmm3, tmm5, tmm7",
            a0 = in(reg) a0.0.as_ptr(),
            a1 = in(reg) a1.0.as_ptr(),
            b0 = in(reg) b0.0.as_ptr(),
            b1 = in(reg) b1.0.as_ptr(),
            stride = in(reg) 64usize,
            options(nostack, readonly, preserves_flags)
        )
    };
}

/// Loads the four accumulator tiles.
#[inline(always)]
fn load_sums(sums: &[SumTile; 4]) {
    let [s0, s1, s2, s3] = sums;
    // SAFETY: each `tileloadd` reads 16 rows of 64 bytes with a stride of
    // 64 from the start of a borrowed `SumTile`: exactly its 1,024 bytes.
    unsafe {
        asm!(
            "tileloadd tmm0, [{s0} + {stride}*1]",
            "tileloadd tmm1, [{s1} + {stride}*1]",
            "tileloadd tmm2, [{s2} + {stride}*1]",
            "tileloadd tmm3, [{s3} + {stride}*1]",
            s0 = in(reg) s0.0.as_ptr(),
            s1 = in(reg) s1.0.as_ptr(),
            s2 = in(reg) s2.0.as_ptr(),
            s3 = in(reg) s3.0.as_ptr(),
            stride = in(reg) 64usize,
            options(nostack, readonly, preserves_flags)
        )
    };
}

/// Stores the four accumulator tiles: top left, top right, bottom left,
/// bottom right.
#[inline(always)]
fn store_sums(sums: &mut [SumTile; 4]) {
    let [s0, s1, s2, s3] = sums;
    // SAFETY: each `tilestored` writes 16 rows of 64 bytes with a stride of
    // 64 from the start of a mutably borrowed `SumTile`: exactly its 1,024
    // bytes, any bit pattern of which is a valid `[[u32; 16]; 16]`.
    unsafe {
        asm!(
            "tilestored [{s0} + {stride}*1], tmm0",
            "tilestored [{s1} + {stride}*1], tmm1",
            "tilestored [{s2} + {stride}*1], tmm2",
            "tilestored [{s3} + {stride}*1], tmm3",
            s0 = in(reg) s0.0.as_mut_ptr(),
            s1 = in(reg) s1.0.as_mut_ptr(),
            s2 = in(reg) s2.0.as_mut_ptr(),
            s3 = in(reg) s3.0.as_mut_ptr(),
            stride = in(reg) 64usize,
            options(nostack, preserves_flags)
        )
    };
}

/// Writes (`first`) or adds the block's `Σ_s 2^{8s}·C_s` into the output
/// rows `r0..r0+h`, columns `c0..c0+w`. The sums for `s ≥ 4` only matter mod
/// 2^32, so they are combined in 32 bits and shifted into the top half.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn fold(
    sums: &[[SumTile; 4]; 8],
    rows: Rows<'_, '_>,
    r0: usize,
    c0: usize,
    h: usize,
    w: usize,
    first: bool,
) {
    for r in 0..h {
        for half in 0..2 {
            let (q, c) = ((r / 16) * 2 + half, half * 16);
            if c >= w {
                break;
            }
            let mut v = [0u64; 16];
            for (x, out) in v.iter_mut().enumerate() {
                let part = |s: usize| sums[s][q].0[r % 16][x];
                let lo = u64::from(part(0))
                    .wrapping_add(u64::from(part(1)) << 8)
                    .wrapping_add(u64::from(part(2)) << 16)
                    .wrapping_add(u64::from(part(3)) << 24);
                let hi = part(4)
                    .wrapping_add(part(5) << 8)
                    .wrapping_add(part(6) << 16)
                    .wrapping_add(part(7) << 24);
                *out = lo.wrapping_add(u64::from(hi) << 32);
            }
            let n = 16.min(w - c);
            let dst = &mut rows[r0 + r][c0 + c..c0 + c + n];
            if first {
                dst.copy_from_slice(&v[..n]);
            } else {
                for (d, x) in dst.iter_mut().zip(v) {
                    *d = d.wrapping_add(x);
                }
            }
        }
    }
}

/// `out[j]` lane `q` = `r[q]` lane `j`: the transpose of eight vectors of
/// eight 64-bit lanes, in three rounds of two-source permutes.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn transpose8(r: [__m512i; 8]) -> [__m512i; 8] {
    let idx = |v: [i64; 8]| _mm512_set_epi64(v[7], v[6], v[5], v[4], v[3], v[2], v[1], v[0]);
    let (lo, hi) = (_mm512_unpacklo_epi64, _mm512_unpackhi_epi64);
    // Pairs of rows: columns 0, 2, 4, 6 (lo) and 1, 3, 5, 7 (hi) of each.
    let s = [
        lo(r[0], r[1]),
        hi(r[0], r[1]),
        lo(r[2], r[3]),
        hi(r[2], r[3]),
        lo(r[4], r[5]),
        hi(r[4], r[5]),
        lo(r[6], r[7]),
        hi(r[6], r[7]),
    ];
    // Quads of rows: u[c] (c < 4) holds columns c and c + 4 of rows 0–3,
    // u[4 + c] of rows 4–7.
    let (lo2, hi2) = (
        idx([0, 1, 8, 9, 4, 5, 12, 13]),
        idx([2, 3, 10, 11, 6, 7, 14, 15]),
    );
    let p = _mm512_permutex2var_epi64;
    let u = [
        p(s[0], lo2, s[2]),
        p(s[1], lo2, s[3]),
        p(s[0], hi2, s[2]),
        p(s[1], hi2, s[3]),
        p(s[4], lo2, s[6]),
        p(s[5], lo2, s[7]),
        p(s[4], hi2, s[6]),
        p(s[5], hi2, s[7]),
    ];
    let (lo4, hi4) = (
        idx([0, 1, 2, 3, 8, 9, 10, 11]),
        idx([4, 5, 6, 7, 12, 13, 14, 15]),
    );
    [
        p(u[0], lo4, u[4]),
        p(u[1], lo4, u[5]),
        p(u[2], lo4, u[6]),
        p(u[3], lo4, u[7]),
        p(u[0], hi4, u[4]),
        p(u[1], hi4, u[5]),
        p(u[2], hi4, u[6]),
        p(u[3], hi4, u[7]),
    ]
}

/// Regroups each 64-bit lane's bytes by position: output byte `8j + t` of
/// a vector is its input byte `8t + j` (lane `j` = byte `j` of all eight).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn group_bytes(x: __m512i) -> __m512i {
    let by_byte = _mm512_set_epi8(
        63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13,
        5, 60, 52, 44, 36, 28, 20, 12, 4, 59, 51, 43, 35, 27, 19, 11, 3, 58, 50, 42, 34, 26, 18,
        10, 2, 57, 49, 41, 33, 25, 17, 9, 1, 56, 48, 40, 32, 24, 16, 8, 0,
    );
    _mm512_permutexvar_epi8(by_byte, x)
}

/// Loads eight ring elements.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn load8(v: &[Ring]) -> __m512i {
    let v: &[Ring; 8] = v[..8].try_into().expect("eight values");
    // SAFETY: an unaligned load of a borrowed `[u64; 8]`: 64 bytes.
    unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
}

/// Stores a vector as row `row` of a tile.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn store_row(t: &mut Tile, row: usize, x: __m512i) {
    let dst: &mut [u8; 64] = (&mut t.0[row * 64..row * 64 + 64])
        .try_into()
        .expect("64 bytes");
    // SAFETY: an unaligned store into a mutably borrowed `[u8; 64]`.
    unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), x) };
}

/// `A` as tiles: index `((strip · 8 + byte) · kch + chunk) · 2 + half`,
/// tile row `r` = byte `byte` of row `strip·32 + half·16 + r`, columns
/// `chunk·64 ..+64`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline(never)]
fn pack_a(m: usize, k: usize, a: MatRef<'_>, kch: usize, out: &mut Vec<Tile>) {
    let strips = m.div_ceil(STRIP);
    let out = take_tiles(out, strips * kch * 16);
    // Rows past `m` in the last strip are padding: zero.
    if !m.is_multiple_of(STRIP) {
        out[(strips - 1) * kch * 16..].fill(Tile::ZERO);
    }
    let mut edge = [0u64; 64];
    for r in 0..m {
        let (strip, half, tr) = (r / STRIP, (r % STRIP) / 16, r % 16);
        let row = &a.data[r * a.ld..r * a.ld + k];
        for kc in 0..kch {
            let mut src = &row[kc * KT..(kc * KT + KT).min(k)];
            if src.len() < KT {
                edge[..src.len()].copy_from_slice(src);
                edge[src.len()..].fill(0);
                src = &edge;
            }
            let planes = transpose8([
                group_bytes(load8(src)),
                group_bytes(load8(&src[8..])),
                group_bytes(load8(&src[16..])),
                group_bytes(load8(&src[24..])),
                group_bytes(load8(&src[32..])),
                group_bytes(load8(&src[40..])),
                group_bytes(load8(&src[48..])),
                group_bytes(load8(&src[56..])),
            ]);
            for (byte, plane) in planes.into_iter().enumerate() {
                store_row(
                    &mut out[((strip * kch + kc) * 8 + byte) * 2 + half],
                    tr,
                    plane,
                );
            }
        }
    }
}

/// Where [`pack_b`] reads `B`: sixteen values of a row at a time.
trait Panel {
    /// `B[r][c0 .. c0+16]`, zero past the last column: borrowed where the
    /// values lie together, else gathered into `buf`.
    fn row16<'s>(&'s self, r: usize, c0: usize, buf: &'s mut [Ring; 16]) -> &'s [Ring];
}

/// A row-major `B` with `n` columns.
struct Dense<'a> {
    b: MatRef<'a>,
    n: usize,
}

impl Panel for Dense<'_> {
    #[inline(always)]
    fn row16<'s>(&'s self, r: usize, c0: usize, buf: &'s mut [Ring; 16]) -> &'s [Ring] {
        let row = &self.b.data[r * self.b.ld + c0..];
        if c0 + 16 <= self.n {
            return &row[..16];
        }
        let w = self.n - c0;
        buf[..w].copy_from_slice(&row[..w]);
        buf[w..].fill(0);
        buf
    }
}

/// An im2col matrix described, not made: row `r = (ci·kh + ky)·kw + kx`,
/// column `col0 + c` for the output pixel `(oy, ox) = divmod(col0 + c, ow)`
/// holds input pixel `(ci, oy·s + ky·d − pad, ox·s + kx·d − pad)` of `x`
/// (the image's channels of one group, `h × w` each), zero outside.
#[derive(Clone, Copy)]
pub(crate) struct Im2col<'a> {
    /// The group's input channels, each `h × w`, one after another.
    pub x: &'a [Ring],
    /// Input channels of the group.
    pub channels: usize,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Kernel height and width.
    pub khw: [usize; 2],
    /// Output width (pixels per output row).
    pub ow: usize,
    /// Stride, dilation and the top and left padding, along H and W.
    pub stride: [usize; 2],
    /// Dilation along H and W.
    pub dilation: [usize; 2],
    /// Top and left padding.
    pub pad: [usize; 2],
    /// The first column (output pixel) of the view.
    pub col0: usize,
}

impl Im2col<'_> {
    /// Rows of the matrix: input channels times kernel entries.
    pub fn rows(&self) -> usize {
        self.channels * self.khw[0] * self.khw[1]
    }
}

/// Sixteen zeros, for rows and runs that lie wholly in the padding.
const ZEROS: [Ring; 16] = [0; 16];

impl Panel for (Im2col<'_>, usize) {
    /// `self.1` is the view's width: columns past it are zero.
    #[inline(always)]
    fn row16<'s>(&'s self, r: usize, c0: usize, buf: &'s mut [Ring; 16]) -> &'s [Ring] {
        let (v, n) = (&self.0, self.1);
        let ([h, w], [kh, kw]) = (v.hw, v.khw);
        let (ci, ky, kx) = (r / (kh * kw), (r / kw) % kh, r % kw);
        let plane = &v.x[ci * h * w..][..h * w];
        let c = v.col0 + c0;
        let (mut oy, mut ox) = (c / v.ow, c % v.ow);
        let (dy, dx) = (ky * v.dilation[0], kx * v.dilation[1]);
        let iy_of = |oy: usize| (oy * v.stride[0] + dy).wrapping_sub(v.pad[0]);
        if c0 + 16 <= n && v.stride[1] == 1 && ox + 16 <= v.ow {
            // Sixteen neighbours in one output row: one input row, a run
            // of it, padding either side.
            let iy = iy_of(oy);
            if iy >= h {
                return &ZEROS;
            }
            let row = &plane[iy * w..][..w];
            let ix0 = (ox + dx) as isize - v.pad[1] as isize;
            if ix0 >= 0 && ix0 as usize + 16 <= w {
                return &row[ix0 as usize..][..16];
            }
            let lo = (-ix0).clamp(0, 16) as usize;
            let hi = (w as isize - ix0).clamp(lo as isize, 16) as usize;
            buf[..lo].fill(0);
            buf[hi..].fill(0);
            if lo < hi {
                let first = (ix0 + lo as isize) as usize;
                buf[lo..hi].copy_from_slice(&row[first..first + hi - lo]);
            }
            return buf;
        }
        // Across output rows, strided or past the view's width: pixel by
        // pixel, stepping the output position.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = 0;
            if c0 + i < n {
                let (iy, ix) = (iy_of(oy), (ox * v.stride[1] + dx).wrapping_sub(v.pad[1]));
                if iy < h && ix < w {
                    *b = plane[iy * w + ix];
                }
            }
            ox += 1;
            if ox == v.ow {
                (oy, ox) = (oy + 1, 0);
            }
        }
        buf
    }
}

/// Sixteen values of four rows, each vector's bytes grouped by position.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
fn load_block(r0: &[Ring], r1: &[Ring], r2: &[Ring], r3: &[Ring]) -> [__m512i; 8] {
    [
        group_bytes(load8(r0)),
        group_bytes(load8(&r0[8..])),
        group_bytes(load8(r1)),
        group_bytes(load8(&r1[8..])),
        group_bytes(load8(r2)),
        group_bytes(load8(&r2[8..])),
        group_bytes(load8(r3)),
        group_bytes(load8(&r3[8..])),
    ]
}

/// `B` as tiles: index `((strip · 8 + byte) · kch + chunk) · 2 + half`,
/// tile row `g` = rows `chunk·64 + 4g ..+4` of `B` as 16 columns
/// (`strip·32 + half·16 + c`) of 4 bytes, one from each row (byte
/// `4c + q` is from row `q`).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline(never)]
fn pack_b<P: Panel>(b: &P, k: usize, n: usize, kch: usize, out: &mut Vec<Tile>) {
    let strips = n.div_ceil(STRIP);
    let out = take_tiles(out, strips * kch * 16);
    // Columns past `n` in the last strip and depth past `k` in the last
    // chunk are padding: zero.
    if !n.is_multiple_of(STRIP) {
        out[(strips - 1) * kch * 16..].fill(Tile::ZERO);
    }
    if !k.is_multiple_of(KT) {
        for strip in 0..strips {
            out[(strip * kch + kch - 1) * 16..][..16].fill(Tile::ZERO);
        }
    }
    // After the transpose, byte 16q + c of a plane is column c of row q.
    let interleave = _mm512_set_epi8(
        63, 47, 31, 15, 62, 46, 30, 14, 61, 45, 29, 13, 60, 44, 28, 12, 59, 43, 27, 11, 58, 42, 26,
        10, 57, 41, 25, 9, 56, 40, 24, 8, 55, 39, 23, 7, 54, 38, 22, 6, 53, 37, 21, 5, 52, 36, 20,
        4, 51, 35, 19, 3, 50, 34, 18, 2, 49, 33, 17, 1, 48, 32, 16, 0,
    );
    let [mut e0, mut e1, mut e2, mut e3] = [[0u64; 16]; 4];
    // Four rows of `B` at a time, each read once and in order.
    for group in 0..k.div_ceil(4) {
        let r = 4 * group;
        let (kc, tr) = (group / 16, group % 16);
        for c0 in (0..n).step_by(16) {
            let (strip, half) = (c0 / STRIP, (c0 % STRIP) / 16);
            let x = load_block(
                b.row16(r, c0, &mut e0),
                if r + 1 < k {
                    b.row16(r + 1, c0, &mut e1)
                } else {
                    &[0; 16]
                },
                if r + 2 < k {
                    b.row16(r + 2, c0, &mut e2)
                } else {
                    &[0; 16]
                },
                if r + 3 < k {
                    b.row16(r + 3, c0, &mut e3)
                } else {
                    &[0; 16]
                },
            );
            let planes = transpose8(x);
            for (byte, plane) in planes.into_iter().enumerate() {
                let plane = _mm512_permutexvar_epi8(interleave, plane);
                store_row(
                    &mut out[((strip * kch + kc) * 8 + byte) * 2 + half],
                    tr,
                    plane,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gemm::for_each_case;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn amx_matches_naive_where_the_cpu_has_it() {
        if !available() {
            std::eprintln!("skipped: no AMX here (CPU, OS or permission)");
            return;
        }
        let shapes = [
            (16, 32, 16),
            (32, 64, 32),
            (33, 65, 47),
            (96, 256, 1024),
            (100, 300, 130),
            (64, 576, 1024),
            (17, 2100, 40),
            (40, 5000, 33),
        ];
        for_each_case(11, &shapes, |m, k, n, a, b, want| {
            let g = Gemm::dense(m, k, n, a, b);
            let mut c = vec![7; m * n];
            let mut rows: Vec<&mut [Ring]> = c.chunks_mut(n).collect();
            gemm(g, &mut rows);
            assert_eq!(c, want, "AMX {m}x{k}x{n}");
        });
    }

    #[test]
    fn extreme_bytes_stay_exact() {
        // All bytes 0xff maximize every 32-bit sum: the exactness bound.
        if !available() {
            std::eprintln!("skipped: no AMX here (CPU, OS or permission)");
            return;
        }
        for &(m, k, n) in &[(32, 1024, 32), (32, 3000, 32)] {
            let a = vec![u64::MAX; m * k];
            let b = vec![u64::MAX; k * n];
            let want = crate::backend::gemm::gemm_naive(m, k, n, &a, &b);
            let mut c = vec![0; m * n];
            let mut rows: Vec<&mut [Ring]> = c.chunks_mut(n).collect();
            gemm(Gemm::dense(m, k, n, &a, &b), &mut rows);
            assert_eq!(c, want, "{m}x{k}x{n}");
        }
    }
}
