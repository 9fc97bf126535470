// Z_2^64 on native 64-bit integers (adapters with SHADER_INT64).
// WGSL's unsigned arithmetic wraps, which is exactly reduction mod 2^64.
alias R = u64;

fn r_zero() -> R {
    return 0lu;
}

fn r_add(a: R, b: R) -> R {
    return a + b;
}

fn r_mul(a: R, b: R) -> R {
    return a * b;
}
