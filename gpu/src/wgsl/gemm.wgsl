// C = A · B (or C += A · B) on row-major matrices inside bound buffer ranges.
struct Params {
    m: u32,
    k: u32,
    n: u32,
    accumulate: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<R>;
@group(0) @binding(2) var<storage, read> b: array<R>;
@group(0) @binding(3) var<storage, read_write> c: array<R>;

fn dims(z: u32) -> vec3<u32> {
    return vec3<u32>(p.m, p.k, p.n);
}

fn load_a(z: u32, row: u32, k: u32) -> R {
    return a[p.a_off + row * p.lda + k];
}

fn load_b(z: u32, k: u32, col: u32) -> R {
    return b[p.b_off + k * p.ldb + col];
}

fn store_c(z: u32, row: u32, col: u32, v: R) {
    let i = p.c_off + row * p.ldc + col;
    if (p.accumulate != 0u) {
        c[i] = r_add(c[i], v);
    } else {
        c[i] = v;
    }
}
