//! Data movement shared by both evaluators: the same code moves `f64`
//! values and ring shares (all of it is local under MPC).

use crate::error::{Error, Result, checked_elements, checked_sum};
use alloc::format;
use alloc::vec::Vec;
use ndarray::{ArrayD, Axis, IxDyn};

/// Permutes axes.
pub fn transpose<T: Clone>(x: &ArrayD<T>, perm: &[usize]) -> Result<ArrayD<T>> {
    if perm.len() != x.ndim() || (0..x.ndim()).any(|a| !perm.contains(&a)) {
        return Err(Error::Shape(format!(
            "permutation {perm:?} for rank {}",
            x.ndim()
        )));
    }
    Ok(x.view()
        .permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned())
}

/// Keeps, along each axis, the listed indices (slices, gathers, splits).
pub fn select<T: Clone>(x: &ArrayD<T>, picks: &[Vec<usize>]) -> Result<ArrayD<T>> {
    if picks.len() != x.ndim() {
        return Err(Error::Shape("one index list per axis".into()));
    }
    let out: Vec<usize> = picks.iter().map(Vec::len).collect();
    checked_elements("selection", &out)?;
    let mut y = x.clone();
    for (a, idx) in picks.iter().enumerate() {
        if idx.iter().any(|&i| i >= y.shape()[a]) {
            return Err(Error::Shape("index out of range".into()));
        }
        if idx.len() != y.shape()[a] || idx.iter().enumerate().any(|(k, &i)| k != i) {
            y = y.select(Axis(a), idx);
        }
    }
    Ok(y)
}

/// Concatenates along `axis`.
pub fn concat<T: Clone>(parts: &[&ArrayD<T>], axis: usize) -> Result<ArrayD<T>> {
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(axis), &views).map_err(|e| Error::Shape(format!("concat: {e}")))
}

/// Pads with `fill` by `(before, after)` per axis.
pub fn pad<T: Clone>(x: &ArrayD<T>, pads: &[(usize, usize)], fill: T) -> Result<ArrayD<T>> {
    if pads.len() != x.ndim() {
        return Err(Error::Shape("one padding pair per axis".into()));
    }
    let shape = x
        .shape()
        .iter()
        .zip(pads)
        .map(|(&d, &(b, a))| checked_sum("padded size", &[d, b, a]))
        .collect::<Result<Vec<usize>>>()?;
    checked_elements("padded tensor", &shape)?;
    let mut y = ArrayD::from_elem(IxDyn(&shape), fill);
    let mut view = y.view_mut();
    for (a, &(b, _)) in pads.iter().enumerate() {
        view.slice_axis_inplace(Axis(a), ndarray::Slice::from(b..b + x.shape()[a]));
    }
    view.assign(x);
    Ok(y)
}

/// Broadcasts to `shape`.
pub fn expand<T: Clone>(x: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>> {
    checked_elements("expanded tensor", shape)?;
    Ok(x.broadcast(IxDyn(shape))
        .ok_or_else(|| Error::Shape(format!("{:?} does not expand to {shape:?}", x.shape())))?
        .to_owned())
}

/// Reshapes (row-major).
pub fn reshape<T: Clone>(x: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>> {
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .map_err(|e| Error::Shape(format!("reshape: {e}")))
}
