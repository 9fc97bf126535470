//! ConvTranspose against its definition computed here directly (each input
//! pixel scatters the kernel, times itself, into the output), over strides,
//! paddings, output paddings, dilations and groups, in plaintext and under
//! MPC. Tolerance under MPC: 1e-3 (products with the owner's kernel, each
//! truncated once, summed over at most 18 terms of magnitude ≤ 4).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model_on, init, model_with, node};
use hush_onnx::proto::{AttributeProto, NodeProto};
use hush_onnx::{ImportError, import};
use ndarray::{ArrayD, IxDyn};

fn with_ints(n: NodeProto, name: &str, v: &[i64]) -> NodeProto {
    common::with_ints(n, name, v)
}

struct Case {
    channels: usize,
    out_per_group: usize,
    groups: usize,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    pads: [usize; 4],
    output_padding: [usize; 2],
    dilation: [usize; 2],
    bias: bool,
}

/// The definition: y[n, g·M/g + m, i·s − p + a·d, j·s − p + b·d] +=
/// x[n, g·C/g + c, i, j] · w[g·C/g + c, m, a, b].
fn reference(c: &Case, x: &ArrayD<f64>, w: &ArrayD<f64>, b: Option<&[f64]>) -> ArrayD<f64> {
    let [h, wd] = c.hw;
    let [kh, kw] = c.kernel;
    let out_hw = |i: usize| {
        c.stride[i] * (c.hw[i] - 1) + c.output_padding[i] + c.dilation[i] * (c.kernel[i] - 1) + 1
            - c.pads[i]
            - c.pads[i + 2]
    };
    let (oh, ow) = (out_hw(0), out_hw(1));
    let m = c.out_per_group * c.groups;
    let in_group = c.channels / c.groups;
    let mut y = ArrayD::zeros(IxDyn(&[1, m, oh, ow]));
    for ch in 0..c.channels {
        let g = ch / in_group;
        for i in 0..h {
            for j in 0..wd {
                for o in 0..c.out_per_group {
                    for a in 0..kh {
                        for bb in 0..kw {
                            let r = (i * c.stride[0] + a * c.dilation[0]) as i64 - c.pads[0] as i64;
                            let s =
                                (j * c.stride[1] + bb * c.dilation[1]) as i64 - c.pads[1] as i64;
                            if r < 0 || s < 0 || r >= oh as i64 || s >= ow as i64 {
                                continue;
                            }
                            y[[0, g * c.out_per_group + o, r as usize, s as usize]] +=
                                x[[0, ch, i, j]] * w[[ch, o, a, bb]];
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = b {
        for o in 0..m {
            for r in 0..oh {
                for s in 0..ow {
                    y[[0, o, r, s]] += b[o];
                }
            }
        }
    }
    y
}

fn values(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| (((i + seed) * 37 + 11) % 23) as f64 / 8.0 - 1.375)
        .collect()
}

fn check(name: &str, c: &Case) {
    let x = ArrayD::from_shape_vec(
        IxDyn(&[1, c.channels, c.hw[0], c.hw[1]]),
        values(c.channels * c.hw[0] * c.hw[1], 1),
    )
    .unwrap();
    let wshape = [c.channels, c.out_per_group, c.kernel[0], c.kernel[1]];
    let wv: Vec<f64> = values(wshape.iter().product(), 5)
        .iter()
        .map(|v| v / 2.0)
        .collect();
    let w = ArrayD::from_shape_vec(IxDyn(&wshape), wv.clone()).unwrap();
    let m = c.out_per_group * c.groups;
    let bias: Vec<f64> = (0..m).map(|o| o as f64 * 0.25 - 0.5).collect();
    let want = reference(c, &x, &w, c.bias.then_some(&bias[..]));
    let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let dims = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let i64s = |v: &[usize]| dims(v);
    let inputs: &[&str] = if c.bias {
        &["x", "w", "b"]
    } else {
        &["x", "w"]
    };
    let mut n = node("ConvTranspose", inputs, "y");
    n = with_ints(n, "strides", &i64s(&c.stride));
    n = with_ints(n, "pads", &i64s(&c.pads));
    n = with_ints(n, "output_padding", &i64s(&c.output_padding));
    n = with_ints(n, "dilations", &i64s(&c.dilation));
    n = with_ints(n, "kernel_shape", &i64s(&c.kernel));
    n = common::with_int(n, "group", c.groups as i64);
    let mut inits = vec![init("w", &dims(&wshape), &f32s(&wv))];
    if c.bias {
        inits.push(init("b", &[m as i64], &f32s(&bias)));
    }
    let model = model_with(17, &dims(x.shape()), vec![n], inits);
    let want: Vec<f64> = want.iter().copied().collect();
    let ops = check_model_on(name, &model, &x, &want, (1e-9, 1e-3));
    assert!(ops.contains(&"Conv".to_string()), "{name}: {ops:?}");
}

fn case() -> Case {
    Case {
        channels: 2,
        out_per_group: 3,
        groups: 1,
        hw: [3, 4],
        kernel: [3, 3],
        stride: [1, 1],
        pads: [0; 4],
        output_padding: [0, 0],
        dilation: [1, 1],
        bias: false,
    }
}

#[test]
fn against_the_definition() {
    check("plain", &case());
    check(
        "stride 2, bias",
        &Case {
            stride: [2, 2],
            bias: true,
            ..case()
        },
    );
    // PyTorch's usual upsampling layer: k 4, s 2, p 1 doubles the size.
    check(
        "k4 s2 p1",
        &Case {
            kernel: [4, 4],
            stride: [2, 2],
            pads: [1, 1, 1, 1],
            ..case()
        },
    );
    check(
        "k3 s2 p1 output_padding 1",
        &Case {
            stride: [2, 2],
            pads: [1, 1, 1, 1],
            output_padding: [1, 1],
            bias: true,
            ..case()
        },
    );
    check(
        "uneven stride, pads, dilation",
        &Case {
            kernel: [2, 3],
            stride: [3, 2],
            pads: [0, 2, 1, 0],
            dilation: [2, 1],
            ..case()
        },
    );
    // Padding beyond the kernel's reach crops the spread input.
    check(
        "pads over the reach",
        &Case {
            kernel: [2, 2],
            stride: [2, 2],
            pads: [2, 3, 2, 1],
            ..case()
        },
    );
    check(
        "groups",
        &Case {
            channels: 4,
            out_per_group: 2,
            groups: 2,
            stride: [2, 1],
            bias: true,
            ..case()
        },
    );
}

#[test]
fn refusals_name_the_node() {
    let x = [1i64, 2, 3, 4];
    let w = init("w", &[2, 3, 3, 3], &[0.5; 54]);
    let import_one = |n: NodeProto| {
        import(
            &model_with(17, &x, vec![n], vec![w.clone()]),
            &Default::default(),
        )
    };
    let output_shape = with_ints(
        node("ConvTranspose", &["x", "w"], "y"),
        "output_shape",
        &[6, 8],
    );
    assert!(matches!(
        import_one(output_shape),
        Err(ImportError::Unsupported { .. })
    ));
    // Padding that leaves nothing.
    let too_much = with_ints(
        node("ConvTranspose", &["x", "w"], "y"),
        "pads",
        &[9, 0, 9, 0],
    );
    assert!(matches!(
        import_one(too_much),
        Err(ImportError::Invalid { .. })
    ));
    let zero_stride = with_ints(node("ConvTranspose", &["x", "w"], "y"), "strides", &[0, 1]);
    assert!(matches!(
        import_one(zero_stride),
        Err(ImportError::Invalid { .. })
    ));
    let huge = with_ints(
        node("ConvTranspose", &["x", "w"], "y"),
        "strides",
        &[i64::MAX, 1],
    );
    assert!(import_one(huge).is_err());
    // Input channels that do not match the kernel.
    let mut n = node("ConvTranspose", &["x", "w"], "y");
    n.attribute.push(AttributeProto {
        name: Some("group".into()),
        r#type: Some(2),
        i: Some(4),
        ..Default::default()
    });
    assert!(matches!(import_one(n), Err(ImportError::Invalid { .. })));
}
