// 2-D convolution (ONNX Conv, cross-correlation) as an implicit GEMM: for
// image `img` and group `g` (z = img * groups + g), C[o, p] = Σ_q K[o, q] X[q, p]
// with q = (channel, ky, kx) and p = (oy, ox); X is read from the input on the
// fly, zero outside the padding, so no im2col matrix is ever stored.
struct Params {
    og: u32,
    kdim: u32,
    cols: u32,
    accumulate: u32,
    c: u32,
    h: u32,
    w: u32,
    cg: u32,
    kh: u32,
    kw: u32,
    oh: u32,
    ow: u32,
    stride_y: u32,
    stride_x: u32,
    pad_top: u32,
    pad_left: u32,
    dil_y: u32,
    dil_x: u32,
    groups: u32,
    o: u32,
    x_off: u32,
    k_off: u32,
    out_off: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> kernel: array<R>;
@group(0) @binding(2) var<storage, read> x: array<R>;
@group(0) @binding(3) var<storage, read_write> out: array<R>;

fn dims(z: u32) -> vec3<u32> {
    return vec3<u32>(p.og, p.kdim, p.cols);
}

fn load_a(z: u32, row: u32, q: u32) -> R {
    let g = z % p.groups;
    return kernel[p.k_off + (g * p.og + row) * p.kdim + q];
}

fn load_b(z: u32, q: u32, col: u32) -> R {
    let img = z / p.groups;
    let g = z % p.groups;
    let area = p.kh * p.kw;
    let ci = q / area;
    let ky = (q % area) / p.kw;
    let kx = q % p.kw;
    let oy = col / p.ow;
    let ox = col % p.ow;
    // Unsigned arithmetic: a position above or left of the padding wraps to a
    // huge value and fails the bounds test below.
    let iy = oy * p.stride_y + ky * p.dil_y - p.pad_top;
    let ix = ox * p.stride_x + kx * p.dil_x - p.pad_left;
    if (oy * p.stride_y + ky * p.dil_y < p.pad_top || ox * p.stride_x + kx * p.dil_x < p.pad_left || iy >= p.h || ix >= p.w) {
        return r_zero();
    }
    return x[p.x_off + ((img * p.c + g * p.cg + ci) * p.h + iy) * p.w + ix];
}

fn store_c(z: u32, row: u32, col: u32, v: R) {
    let img = z / p.groups;
    let g = z % p.groups;
    let i = p.out_off + ((img * p.o + g * p.og + row) * p.cols) + col;
    if (p.accumulate != 0u) {
        out[i] = r_add(out[i], v);
    } else {
        out[i] = v;
    }
}
