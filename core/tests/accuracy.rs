//! Every non-linear function meets the bound stated in its row of the
//! accuracy table (docs/ACCURACY.md is generated from the same
//! specification by `hush accuracy`).

use hush_core::accuracy::{cases, measure, measure_with};
use hush_core::protocol::Config;

#[test]
fn every_function_meets_its_stated_bound() {
    let mut failures = Vec::new();
    for case in cases() {
        let m = measure(&case, Config::default()).expect("the protocol runs");
        eprintln!(
            "{:<16} abs {:.2e} rel {:.2e} ratio {:.2} rounds {} bytes/elem {:.0}",
            case.name, m.max_abs, m.max_rel, m.worst_ratio, m.rounds, m.bytes_per_element
        );
        // NaN fails too.
        if m.worst_ratio.is_nan() || m.worst_ratio > 1.0 {
            failures.push(format!(
                "{}: {:.2}× its bound ({:?})",
                case.name, m.worst_ratio, case.bound
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn three_parties_meet_the_same_bounds() {
    for case in cases() {
        let m = measure_with(&case, Config::default(), 3).expect("the protocol runs");
        assert!(
            m.worst_ratio <= 1.0,
            "{} with 3 parties: {:.2}× its bound",
            case.name,
            m.worst_ratio
        );
    }
}
