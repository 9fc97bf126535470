// The tiled GEMM loop shared by the matrix-product and convolution kernels.
// The including kernel defines its bindings and four functions:
//   dims(z) -> vec3<u32>      (m, k, n) of product z
//   load_a(z, row, k) -> R    left operand, only called in bounds
//   load_b(z, k, col) -> R    right operand, only called in bounds
//   store_c(z, row, col, R)   result, only called in bounds
//
// A workgroup of 16x16 invocations computes a 64x64 block of C; each
// invocation keeps a 4x4 register block, rows lid.y + 16i and columns
// lid.x + 16j, so neighbouring invocations touch neighbouring addresses.
// Operand tiles of 64x16 and 16x64 ring elements (16 KiB together) are staged
// in workgroup memory, within every adapter's 16 KiB minimum.

const TILE: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> tile_a: array<R, 1024>;
var<workgroup> tile_b: array<R, 1024>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let z = wg.z;
    let d = dims(z);
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let t = lid.y * 16u + lid.x;
    var acc: array<R, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = r_zero();
    }
    for (var k0 = 0u; k0 < d.y; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let e = t + i * 256u;
            let ra = e / TK;
            let ka = e % TK;
            var va = r_zero();
            if (row0 + ra < d.x && k0 + ka < d.y) {
                va = load_a(z, row0 + ra, k0 + ka);
            }
            tile_a[ka * TILE + ra] = va;
            let kb = e / TILE;
            let cb = e % TILE;
            var vb = r_zero();
            if (k0 + kb < d.y && col0 + cb < d.z) {
                vb = load_b(z, k0 + kb, col0 + cb);
            }
            tile_b[kb * TILE + cb] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<R, 4>;
            var b: array<R, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = tile_a[kk * TILE + lid.y + 16u * i];
                b[i] = tile_b[kk * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = r_add(acc[i * 4u + j], r_mul(a[i], b[j]));
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let r = row0 + lid.y + 16u * i;
            let c = col0 + lid.x + 16u * j;
            if (r < d.x && c < d.z) {
                store_c(z, r, c, acc[i * 4u + j]);
            }
        }
    }
}
