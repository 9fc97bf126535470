//! # hush-core
//!
//! The `no_std` + `alloc` heart of Hush: secure two-party (and N-party)
//! computation on secret-shared fixed-point tensors, in the style of CrypTen.
//!
//! The layers, bottom up:
//! - [`ring`]: Z_2^64 on wrapping `u64`, fixed-point encoding.
//! - [`prg`]: seeds and the ChaCha12 stream every party expands them with.
//! - [`share`]: arithmetic (additive) and binary (XOR) shares for N parties;
//!   [`bits`]: packed shared bits and the bit-plane layout of comparisons.
//! - [`channel`]: the async, runtime-free transport trait with byte and round
//!   counters; [`channel::memory`] runs N parties in one thread for tests.
//! - [`backend`]: heavy local arithmetic (GEMM, convolution) behind a trait;
//!   [`backend::CpuBackend`] is cache-tiled and multi-threaded with `std`.
//! - [`bilinear`]: elementwise, matrix and convolution products as one kind
//!   of bilinear map, so one Beaver protocol serves all three.
//! - [`preprocessing`]: correlated randomness; the seeded dealer and its wire
//!   format.
//! - [`protocol`]: what a [`protocol::Party`] does: input, open, products,
//!   truncation, reductions.
//! - [`plan`]: a model's public op graph and the evaluators that run it.
//! - [`session`]: frames, control messages and the client's side of a
//!   session between client, server and dealer.
//!
//! No module here performs IO or names an executor; transports and the
//! dealer service live in the crates that embed this one.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod accuracy;
pub mod backend;
pub mod bilinear;
pub mod bits;
pub mod channel;
pub mod chebyshev;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod cpu_cap;
mod elementwise;
pub mod error;
pub mod plan;
pub mod preprocessing;
pub mod prg;
pub mod protocol;
pub mod ring;
pub mod session;
pub mod share;

pub use error::{Error, PartyId, Result};
pub use ring::{FixedPoint, Ring, RingTensor};
pub use share::{ArithShare, BinaryShare};
