//! Environment variables that cap a code path chosen for the CPU at run
//! time (`HUSH_CPU_GEMM` for the matrix products, `HUSH_CPU_VECTOR` for the
//! elementwise passes): for comparing the paths on one machine. Unset, or
//! naming none of the choices, the CPU's best runs.

use alloc::string::String;
use alloc::vec::Vec;

/// A choice among code paths built for different CPU features.
pub(crate) trait Capped: Copy + Ord + 'static {
    /// The variable that caps it.
    const VAR: &'static str;
    /// Every choice, fastest first: the CPU's best capped at `cap` is
    /// `best.max(cap)`.
    const ALL: &'static [Self];
    /// The choice's name, as the variable gives it.
    fn name(self) -> &'static str;
}

/// The choice `v` names (surrounding whitespace ignored), if any.
pub(crate) fn parse<T: Capped>(v: &str) -> Option<T> {
    T::ALL.iter().copied().find(|c| c.name() == v.trim())
}

/// The cap the variable sets: the choice it names, else the fastest.
pub(crate) fn from_env<T: Capped>() -> T {
    std::env::var(T::VAR)
        .ok()
        .and_then(|v| parse(&v))
        .unwrap_or(T::ALL[0])
}

/// What to warn of when the variable is set to a name no choice has (it is
/// then ignored).
pub(crate) fn ignored<T: Capped>() -> Option<String> {
    let v = std::env::var(T::VAR).ok()?;
    if parse::<T>(&v).is_some() {
        return None;
    }
    let names: Vec<&str> = T::ALL.iter().map(|c| c.name()).collect();
    Some(alloc::format!(
        "{}={v:?} names none of {}; ignored",
        T::VAR,
        names.join(", ")
    ))
}
