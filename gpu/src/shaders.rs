//! The WGSL sources, composed per arithmetic variant.
//!
//! Every kernel is written once against a ring type `R` with `r_zero`,
//! `r_add` and `r_mul`; the variant file in front of it defines them on
//! native `u64` or on two `u32` limbs. Both lay an element out as the bytes
//! of a little-endian `u64`, so host buffers do not depend on the variant.

use std::fmt;

/// How the kernels represent an element of Z_2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arithmetic {
    /// WGSL `u64` (the adapter must offer `SHADER_INT64`; never in browsers).
    U64,
    /// Two `u32` limbs: runs on every adapter.
    Limbs,
}

impl Arithmetic {
    /// Both variants.
    pub const ALL: [Arithmetic; 2] = [Arithmetic::U64, Arithmetic::Limbs];

    fn ring(self) -> &'static str {
        match self {
            Arithmetic::U64 => include_str!("wgsl/ring_u64.wgsl"),
            Arithmetic::Limbs => include_str!("wgsl/ring_limbs.wgsl"),
        }
    }
}

impl fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arithmetic::U64 => "u64",
            Arithmetic::Limbs => "u32x2",
        })
    }
}

/// The compute kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Tiled matrix product with workgroup memory.
    Gemm,
    /// Convolution as an implicit GEMM.
    Conv,
    /// Elementwise product.
    Hadamard,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 3] = [Kernel::Gemm, Kernel::Conv, Kernel::Hadamard];

    /// Entry point name.
    pub const ENTRY: &'static str = "main";

    /// Bytes of the kernel's uniform parameter block.
    pub(crate) const fn params_bytes(self) -> u64 {
        match self {
            Kernel::Gemm => 48,
            Kernel::Conv => 96,
            Kernel::Hadamard => 32,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::Conv => "conv",
            Kernel::Hadamard => "hadamard",
        }
    }
}

/// The complete WGSL module of `kernel` in `arithmetic`.
pub fn source(kernel: Kernel, arithmetic: Arithmetic) -> String {
    let body = match kernel {
        Kernel::Gemm => concat!(
            include_str!("wgsl/gemm.wgsl"),
            "\n",
            include_str!("wgsl/tiled.wgsl")
        ),
        Kernel::Conv => concat!(
            include_str!("wgsl/conv.wgsl"),
            "\n",
            include_str!("wgsl/tiled.wgsl")
        ),
        Kernel::Hadamard => include_str!("wgsl/hadamard.wgsl"),
    };
    format!(
        "// hush-gpu kernel `{}`, arithmetic {arithmetic}\n{}\n{body}",
        kernel.name(),
        arithmetic.ring()
    )
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use naga::valid::{Capabilities, ValidationFlags, Validator};

    fn validate(kernel: Kernel, arithmetic: Arithmetic, caps: Capabilities) -> Result<(), String> {
        let src = source(kernel, arithmetic);
        let module = naga::front::wgsl::parse_str(&src).map_err(|e| e.emit_to_string(&src))?;
        Validator::new(ValidationFlags::all(), caps)
            .validate(&module)
            .map_err(|e| e.emit_to_string(&src))?;
        if !module.entry_points.iter().any(|e| e.name == Kernel::ENTRY) {
            return Err("no entry point".into());
        }
        Ok(())
    }

    #[test]
    fn every_kernel_validates_in_both_variants() {
        for kernel in Kernel::ALL {
            validate(kernel, Arithmetic::U64, Capabilities::SHADER_INT64)
                .unwrap_or_else(|e| panic!("{kernel:?} u64:\n{e}"));
            // The limb variant must need nothing beyond core WGSL (browsers).
            validate(kernel, Arithmetic::Limbs, Capabilities::empty())
                .unwrap_or_else(|e| panic!("{kernel:?} limbs:\n{e}"));
        }
    }

    #[test]
    fn the_u64_variant_needs_int64() {
        assert!(validate(Kernel::Gemm, Arithmetic::U64, Capabilities::empty()).is_err());
    }
}
