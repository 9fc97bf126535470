//! Resize. Nearest mode against positions worked out by hand from ONNX's
//! formulas (the modes were also checked against onnxruntime: 112
//! combinations of coordinate transformation, rounding, scales and sizes
//! agree exactly; the test model ops_zoo2 runs a PyTorch upsampling).
//! Linear and cubic modes against onnxruntime's outputs for the same nodes
//! and inputs, recorded here (plaintext within 2e-6: onnxruntime computes
//! in f32; under MPC within 1e-4 in 1-D and 2e-4 in 2-D).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model, check_model_on, init, ints, model, model_with, node, with_int};
use hush_onnx::proto::{AttributeProto, NodeProto, TensorProto};
use hush_onnx::{ImportError, ImportOptions, import};
use ndarray::{ArrayD, IxDyn};

fn text(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3), // STRING
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// x [1, 4] resized to `sizes` with the given attributes.
fn resize(sizes: &[i64], attrs: &[(&str, &str)]) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let mut n = node("Resize", &["x", "", "", "sizes"], "y");
    n.attribute.extend(attrs.iter().map(|(k, v)| text(k, v)));
    (vec![n], vec![ints("sizes", sizes)])
}

/// Sizes, text attributes, and the output expected.
type Case<'a> = (&'a [i64], &'a [(&'a str, &'a str)], [f64; 2]);

#[test]
fn nearest_positions() {
    // x = [0.5, −2, 1.25, 3] along the last axis (length 4).
    let cases: [Case; 4] = [
        // half_pixel, round_prefer_floor (the defaults), 4 → 2: positions
        // (i + 0.5)·2 − 0.5 = 0.5, 2.5 round down to 0 and 2.
        (&[1, 2], &[], [0.5, 1.25]),
        // round_prefer_ceil: 1 and 3.
        (
            &[1, 2],
            &[("nearest_mode", "round_prefer_ceil")],
            [-2.0, 3.0],
        ),
        // align_corners: i·3 for i = 0, 1: 0 and 3.
        (
            &[1, 2],
            &[("coordinate_transformation_mode", "align_corners")],
            [0.5, 3.0],
        ),
        // asymmetric, floor: i·2: 0 and 2.
        (
            &[1, 2],
            &[
                ("coordinate_transformation_mode", "asymmetric"),
                ("nearest_mode", "floor"),
            ],
            [0.5, 1.25],
        ),
    ];
    for (sizes, attrs, want) in cases {
        let (nodes, inits) = resize(sizes, attrs);
        let ops = check_model(&format!("{attrs:?}"), nodes, inits, &want, 1e-4);
        assert_eq!(ops, ["Select"]);
    }
    // Upsampling by 2 repeats each element (half_pixel: (i + 0.5)/2 − 0.5
    // rounds to i/2).
    let (nodes, inits) = resize(&[1, 8], &[]);
    let want = [0.5, 0.5, -2.0, -2.0, 1.25, 1.25, 3.0, 3.0];
    check_model("up", nodes, inits, &want, 1e-4);
}

/// Output of onnxruntime 1.19.2 (the bench venv's) for the same node and
/// input, and the case's resize node (its sizes or scales as inputs).
#[derive(Default)]
struct Interpolation<'a> {
    name: &'a str,
    sizes: Option<&'a [i64]>,
    scales: Option<&'a [f32]>,
    attrs: &'a [(&'a str, &'a str)],
    cubic_a: Option<f32>,
    exclude_outside: bool,
    ort: &'a [f64],
}

impl Interpolation<'_> {
    fn nodes(&self) -> (Vec<NodeProto>, Vec<TensorProto>) {
        let (mut n, inits) = match (self.sizes, self.scales) {
            (Some(sizes), _) => (
                node("Resize", &["x", "", "", "sizes"], "y"),
                vec![ints("sizes", sizes)],
            ),
            (_, Some(scales)) => (
                node("Resize", &["x", "", "scales"], "y"),
                vec![init("scales", &[scales.len() as i64], scales)],
            ),
            _ => unreachable!(),
        };
        n.attribute
            .extend(self.attrs.iter().map(|(k, v)| text(k, v)));
        if let Some(a) = self.cubic_a {
            n.attribute.push(AttributeProto {
                name: Some("cubic_coeff_a".into()),
                r#type: Some(1), // FLOAT
                f: Some(a),
                ..Default::default()
            });
        }
        if self.exclude_outside {
            n = with_int(n, "exclude_outside", 1);
        }
        (vec![n], inits)
    }
}

#[test]
fn interpolating_modes_agree_with_onnxruntime() {
    let linear: &[(&str, &str)] = &[("mode", "linear")];
    let cubic: &[(&str, &str)] = &[("mode", "cubic")];
    // On x = [0.5, −2, 1.25, 3] ([1, 4]).
    let cases = [
        Interpolation {
            name: "linear half_pixel 4->8",
            sizes: Some(&[1, 8]),
            scales: None,
            attrs: linear,
            cubic_a: None,
            exclude_outside: false,
            ort: &[0.5, -0.125, -1.375, -1.1875, 0.4375, 1.6875, 2.5625, 3.0],
        },
        Interpolation {
            name: "linear align_corners 4->7",
            sizes: Some(&[1, 7]),
            attrs: &[
                ("mode", "linear"),
                ("coordinate_transformation_mode", "align_corners"),
            ],
            ort: &[0.5, -0.75, -2.0, -0.375, 1.25, 2.125, 3.0],
            ..Interpolation::default()
        },
        Interpolation {
            name: "linear asymmetric scale 0.5",
            sizes: None,
            scales: Some(&[1.0, 0.5]),
            attrs: &[
                ("mode", "linear"),
                ("coordinate_transformation_mode", "asymmetric"),
            ],
            ort: &[0.5, 1.25],
            ..Interpolation::default()
        },
        Interpolation {
            name: "linear half_pixel 4->3",
            sizes: Some(&[1, 3]),
            attrs: linear,
            ort: &[0.08333328366279602, -0.375, 2.7083332538604736],
            ..Interpolation::default()
        },
        Interpolation {
            name: "linear pytorch_half_pixel 4->1",
            sizes: Some(&[1, 1]),
            attrs: &[
                ("mode", "linear"),
                ("coordinate_transformation_mode", "pytorch_half_pixel"),
            ],
            ort: &[0.5],
            ..Interpolation::default()
        },
        Interpolation {
            name: "cubic half_pixel 4->8",
            sizes: Some(&[1, 8]),
            attrs: cubic,
            ort: &[
                0.763671875,
                -0.1806640625,
                -1.7763671875,
                -1.5888671875,
                0.2412109375,
                1.9892578125,
                2.7177734375,
                3.1845703125,
            ],
            ..Interpolation::default()
        },
        Interpolation {
            name: "cubic align_corners a=-0.5 exclude_outside 4->6",
            sizes: Some(&[1, 6]),
            attrs: &[
                ("mode", "cubic"),
                ("coordinate_transformation_mode", "align_corners"),
            ],
            cubic_a: Some(-0.5),
            exclude_outside: true,
            ort: &[
                0.5,
                -1.2118322849273682,
                -1.6940011978149414,
                0.6039994359016418,
                2.1812970638275146,
                3.0,
            ],
            ..Interpolation::default()
        },
        Interpolation {
            name: "cubic half_pixel exclude_outside 4->8",
            sizes: Some(&[1, 8]),
            attrs: cubic,
            exclude_outside: true,
            ort: &[
                0.8409091234207153,
                -0.11572436988353729,
                -1.699056625366211,
                -1.5888671875,
                0.2412109375,
                2.0235848426818848,
                2.744699716567993,
                3.2386364936828613,
            ],
            ..Interpolation::default()
        },
        Interpolation {
            name: "cubic asymmetric scale 1.5",
            sizes: None,
            scales: Some(&[1.0, 1.5]),
            attrs: &[
                ("mode", "cubic"),
                ("coordinate_transformation_mode", "asymmetric"),
            ],
            ort: &[
                0.5,
                -1.5740739107131958,
                -1.3518524169921875,
                1.25,
                2.6296286582946777,
                3.1944453716278076,
            ],
            ..Interpolation::default()
        },
    ];
    for case in &cases {
        let (nodes, inits) = case.nodes();
        // onnxruntime computes in f32 (1e-6); under MPC the weights are
        // rounded to 16 fractional bits and each tap truncated once.
        check_model_on(
            case.name,
            &model(nodes, inits),
            &common::x(),
            case.ort,
            (2e-6, 1e-4),
        );
    }
}

#[test]
fn interpolating_in_two_dimensions() {
    // x [1, 1, 3, 4].
    let xv = [
        -2.0, 1.5, -0.5, 3.0, 1.0, -1.0, 2.5, 0.5, -1.5, 2.0, 0.0, -2.0,
    ];
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 3, 4]), xv.to_vec()).unwrap();
    let linear = Interpolation {
        name: "linear 2-D half_pixel 3x4->5x7",
        sizes: Some(&[1, 1, 5, 7]),
        attrs: &[("mode", "linear")],
        ort: &[
            -2.0,
            -0.75,
            1.2500001192092896,
            0.5,
            -0.25000011920928955,
            1.749999761581421,
            3.0,
            -0.7999998927116394,
            -0.33571428060531616,
            0.40714287757873535,
            0.6000000238418579,
            0.7928571701049805,
            1.535714030265808,
            2.0,
            1.0,
            0.2857142686843872,
            -0.8571429252624512,
            0.75,
            2.357142925262451,
            1.2142858505249023,
            0.5,
            -0.5000003576278687,
            -0.03571435809135437,
            0.7071433067321777,
            0.9000000357627869,
            0.8571425676345825,
            -0.28571444749832153,
            -1.0000003576278687,
            -1.5,
            -0.25,
            1.7500001192092896,
            1.0,
            -0.14285707473754883,
            -1.2857141494750977,
            -2.0,
        ],
        ..Interpolation::default()
    };
    let cubic = Interpolation {
        name: "cubic 2-D pytorch_half_pixel 3x4->6x8",
        sizes: Some(&[1, 1, 6, 8]),
        attrs: &[
            ("mode", "cubic"),
            ("coordinate_transformation_mode", "pytorch_half_pixel"),
        ],
        ort: &[
            -2.7467269897460938,
            -1.3013076782226562,
            1.1113967895507812,
            1.46600341796875,
            -0.51873779296875,
            -0.16413116455078125,
            2.2485733032226562,
            3.6939926147460938,
            -1.4497451782226562,
            -0.7458724975585938,
            0.42040252685546875,
            0.8392105102539062,
            0.22930145263671875,
            0.7191085815429688,
            1.9911270141601562,
            2.7592010498046875,
            0.7246780395507812,
            0.18212127685546875,
            -0.7466659545898438,
            -0.22211456298828125,
            1.4745254516601562,
            2.2120742797851562,
            1.6005172729492188,
            1.2505645751953125,
            0.8906936645507812,
            0.34813690185546875,
            -0.5806503295898438,
            0.0081024169921875,
            1.8331451416015625,
            1.9643478393554688,
            0.35410308837890625,
            -0.6021957397460938,
            -1.0454483032226562,
            -0.34157562255859375,
            0.8246994018554688,
            1.3998565673828125,
            1.1026458740234375,
            0.11582183837890625,
            -1.0442581176757812,
            -1.7528152465820312,
            -2.1939926147460938,
            -0.7485733032226562,
            1.6641311645507812,
            2.2324905395507812,
            0.6752548217773438,
            -0.9889144897460938,
            -1.9012527465820312,
            -2.474609375,
        ],
        ..Interpolation::default()
    };
    for case in [linear, cubic] {
        let (nodes, inits) = case.nodes();
        let ops = check_model_on(
            case.name,
            &model_with(17, &[1, 1, 3, 4], nodes, inits),
            &x,
            case.ort,
            (2e-6, 2e-4),
        );
        // The batch and channel axes are left alone: only H and W are
        // interpolated, each a sum of taps.
        let selections = ops.iter().filter(|o| *o == "Select").count();
        let taps = if case.name.starts_with("linear") {
            2
        } else {
            4
        };
        assert_eq!(selections, 2 * taps, "{}: {ops:?}", case.name);
    }
}

#[test]
fn unsupported_modes_and_oversized_outputs_are_refused() {
    let (nodes, inits) = resize(
        &[1, 8],
        &[
            ("mode", "linear"),
            ("coordinate_transformation_mode", "tf_crop_and_resize"),
        ],
    );
    assert!(matches!(
        import(&model(nodes, inits), &ImportOptions::default()),
        Err(ImportError::Unsupported { .. })
    ));
    let (nodes, inits) = resize(&[1, 1 << 40], &[]);
    assert!(matches!(
        import(&model(nodes, inits), &ImportOptions::default()),
        Err(ImportError::Invalid { .. })
    ));
    let (mut nodes, inits) = resize(&[1, 8], &[]);
    nodes[0] = with_int(nodes[0].clone(), "antialias", 1);
    assert!(matches!(
        import(&model(nodes, inits), &ImportOptions::default()),
        Err(ImportError::Unsupported { .. })
    ));
}
