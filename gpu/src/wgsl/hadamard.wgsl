// out = x ⊙ y (or out += x ⊙ y), elementwise over Z_2^64.
struct Params {
    len: u32,
    accumulate: u32,
    x_off: u32,
    y_off: u32,
    out_off: u32,
    row: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<R>;
@group(0) @binding(2) var<storage, read> y: array<R>;
@group(0) @binding(3) var<storage, read_write> out: array<R>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    // Dispatches wider than 65535 workgroups fold into rows of `row` invocations.
    let i = gid.y * p.row + gid.x;
    if (i >= p.len) {
        return;
    }
    let v = r_mul(x[p.x_off + i], y[p.y_off + i]);
    let o = p.out_off + i;
    if (p.accumulate != 0u) {
        out[o] = r_add(out[o], v);
    } else {
        out[o] = v;
    }
}
