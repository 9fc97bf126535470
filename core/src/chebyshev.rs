//! Chebyshev approximation in floating point (done in public, at setup):
//! fitting a function on an interval, and the recurrence that evaluates the
//! basis in log depth on secret inputs.
//!
//! Secret polynomials are evaluated in the Chebyshev basis, not in monomials:
//! every `T_k(t)` lies in `[-1, 1]` for `t ∈ [-1, 1]`, and the coefficients
//! of smooth functions decay fast, so fixed-point rounding stays at a few
//! units instead of being amplified by large alternating monomial
//! coefficients.

use alloc::vec::Vec;

/// Coefficients `c_0..=c_degree` of the Chebyshev interpolant of `g` on
/// `[a, b]` (in the variable `t = (2x − a − b)/(b − a)`), so that
/// `g(x) ≈ Σ c_k T_k(t)`.
pub fn fit(g: impl Fn(f64) -> f64, a: f64, b: f64, degree: usize) -> Vec<f64> {
    let n = degree + 1;
    let nodes: Vec<f64> = (0..n)
        .map(|k| libm::cos(core::f64::consts::PI * (k as f64 + 0.5) / n as f64))
        .collect();
    let values: Vec<f64> = nodes
        .iter()
        .map(|&t| g(a + (t + 1.0) * (b - a) / 2.0))
        .collect();
    (0..n)
        .map(|j| {
            let s: f64 = nodes
                .iter()
                .zip(&values)
                .map(|(&t, &v)| v * libm::cos(j as f64 * libm::acos(t)))
                .sum();
            let c = 2.0 * s / n as f64;
            if j == 0 { c / 2.0 } else { c }
        })
        .collect()
}

/// The Chebyshev series `c` on `[a, b]` (as [`fit`] returns it) in monomials
/// of `x` itself: `Σ c_k T_k(t) = Σ m_k x^k`. For low degrees on short
/// intervals only (the monomial form of a high-degree fit is ill-conditioned).
pub fn monomial(c: &[f64], a: f64, b: f64) -> Vec<f64> {
    // t = αx + β
    let (alpha, beta) = (2.0 / (b - a), -(a + b) / (b - a));
    let n = c.len();
    let mut out = alloc::vec![0.0; n.max(1)];
    // T_(k-1) and T_k as monomials in x.
    let mut prev = alloc::vec![0.0; n.max(1)];
    let mut cur = alloc::vec![0.0; n.max(1)];
    prev[0] = 1.0;
    if n > 1 {
        cur[0] = beta;
        cur[1] = alpha;
    }
    for (k, &ck) in c.iter().enumerate() {
        let tk = if k == 0 { &prev } else { &cur };
        for (o, &t) in out.iter_mut().zip(tk.iter()) {
            *o += ck * t;
        }
        if k >= 1 && k + 1 < n {
            // T_(k+1) = 2(αx + β)·T_k − T_(k−1)
            let mut next = alloc::vec![0.0; n];
            for j in 0..n {
                next[j] = 2.0 * beta * cur[j] - prev[j];
                if j > 0 {
                    next[j] += 2.0 * alpha * cur[j - 1];
                }
            }
            prev = core::mem::replace(&mut cur, next);
        }
    }
    out
}

/// The Chebyshev interpolant of `g` on `[a, b]` ([`fit`]) in monomials of
/// `x` ([`monomial`]).
pub fn fit_monomial(g: impl Fn(f64) -> f64, a: f64, b: f64, degree: usize) -> Vec<f64> {
    monomial(&fit(g, a, b, degree), a, b)
}

/// `Σ c_k T_k(t)` in floating point (for tests and error tables).
pub fn eval(c: &[f64], t: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &ck in c.iter().skip(1).rev() {
        let b0 = 2.0 * t * b1 - b2 + ck;
        b2 = b1;
        b1 = b0;
    }
    t * b1 - b2 + c.first().copied().unwrap_or(0.0)
}

/// The pairs `(k, a, b, c)` meaning `T_k = 2·T_a·T_b − T_c`, grouped by
/// level: every product in a level uses only earlier terms, so a level is one
/// batch of multiplications. Covers `T_2..=T_degree`. Halves are balanced
/// (`a = ⌈k/2⌉`, `b = ⌊k/2⌋`), so every even `T_k` is a square, which costs
/// half the opening of a general product.
pub fn schedule(degree: usize) -> Vec<Vec<(usize, usize, usize, usize)>> {
    let mut levels = Vec::new();
    let mut have = 1;
    while have < degree {
        let top = (2 * have).min(degree);
        // T_k = 2·T_a·T_b − T_(a−b) with a + b = k, a ≤ have
        levels.push(
            (have + 1..=top)
                .map(|k| (k, k.div_ceil(2), k / 2, k % 2))
                .collect(),
        );
        have = top;
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monomial_form_matches_the_series() {
        let (a, b) = (-0.25, 0.1);
        let c = fit(libm::exp, a, b, 5);
        let m = monomial(&c, a, b);
        assert_eq!(m.len(), 6);
        for i in 0..=50 {
            let x = a + (b - a) * i as f64 / 50.0;
            let t = (2.0 * x - a - b) / (b - a);
            let direct = m.iter().rev().fold(0.0, |acc, &mk| acc * x + mk);
            assert!((direct - eval(&c, t)).abs() < 1e-14, "{x}");
            assert!((direct - x.exp()).abs() < 1e-8, "{x}");
        }
    }

    #[test]
    fn fits_are_accurate_and_the_schedule_is_correct() {
        let c = fit(|x| 1.0 / x, 1.0, 2.0, 7);
        for i in 0..=100 {
            let x = 1.0 + i as f64 / 100.0;
            let t = 2.0 * x - 3.0;
            assert!((eval(&c, t) * x - 1.0).abs() < 3e-6, "{x}");
        }
        // T_k by the schedule equals cos(k·acos t).
        let t: f64 = 0.37;
        let mut tk = alloc::vec![1.0, t];
        tk.resize(12, 0.0);
        for level in schedule(11) {
            for (k, a, b, c) in level {
                tk[k] = 2.0 * tk[a] * tk[b] - tk[c];
            }
        }
        for (k, v) in tk.iter().enumerate() {
            assert!((v - libm::cos(k as f64 * libm::acos(t))).abs() < 1e-12);
        }
        assert_eq!(schedule(7).len(), 3);
        let squares = |d| -> Vec<usize> {
            schedule(d)
                .concat()
                .iter()
                .filter(|&&(_, a, b, _)| a == b)
                .map(|&(k, ..)| k)
                .collect()
        };
        assert_eq!(squares(7), [2, 4, 6]);
        assert_eq!(schedule(1).len(), 0);
    }
}
