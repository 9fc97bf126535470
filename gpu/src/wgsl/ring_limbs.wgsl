// Z_2^64 as two u32 limbs (x = low, y = high) for adapters without 64-bit
// integers, browsers among them. The bytes of a vec2<u32> are those of a
// little-endian u64, so host buffers are the same for both variants.
alias R = vec2<u32>;

fn r_zero() -> R {
    return vec2<u32>(0u, 0u);
}

fn r_add(a: R, b: R) -> R {
    let lo = a.x + b.x;
    let carry = select(0u, 1u, lo < a.x);
    return vec2<u32>(lo, a.y + b.y + carry);
}

// The full 64-bit product of two u32, from 16-bit halves.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// (a.x + 2^32 a.y)(b.x + 2^32 b.y) mod 2^64: the a.y * b.y term vanishes.
fn r_mul(a: R, b: R) -> R {
    let p = mul_wide(a.x, b.x);
    return vec2<u32>(p.x, p.y + a.x * b.y + a.y * b.x);
}
