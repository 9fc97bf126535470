//! ResNet-18 and ResNet-50 (torchvision's layouts, BatchNorm folded into the
//! convolutions) built directly as plans with seeded random weights, for
//! benchmarks at sizes whose ONNX files are too large to keep in the
//! repository.

use hush_core::plan::{ConvAttrs, Node, Op, Plan, PoolAttrs, ValueInfo, WeightInfo, Weights};
use hush_core::prg::{Prg, Seed};
use ndarray::{ArrayD, IxDyn};
use sha2::{Digest, Sha256};

struct Builder {
    plan: Plan,
    weights: Vec<ArrayD<f64>>,
    prg: Prg,
}

impl Builder {
    fn value(&mut self, name: &str, shape: Vec<usize>) -> usize {
        self.plan.values.push(ValueInfo {
            name: name.into(),
            shape,
        });
        self.plan.values.len() - 1
    }

    fn shape(&self, v: usize) -> Vec<usize> {
        self.plan.values[v].shape.clone()
    }

    /// Uniform in `[-a, a)`.
    fn random(&mut self, shape: &[usize], a: f64) -> ArrayD<f64> {
        let prg = &mut self.prg;
        ArrayD::from_shape_fn(IxDyn(shape), |_| {
            let u = (prg.next_ring() >> 11) as f64 / (1u64 << 53) as f64;
            (2.0 * u - 1.0) * a
        })
    }

    fn weight(&mut self, name: &str, t: ArrayD<f64>) -> usize {
        self.plan.weights.push(WeightInfo {
            name: name.into(),
            shape: t.shape().to_vec(),
        });
        self.weights.push(t);
        self.weights.len() - 1
    }

    fn node(&mut self, name: &str, op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> usize {
        let v = self.value(name, shape);
        self.plan.nodes.push(Node {
            name: name.into(),
            op,
            inputs,
            output: v,
        });
        v
    }

    /// Convolution (BatchNorm folded) with its bias.
    fn conv(
        &mut self,
        name: &str,
        x: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> usize {
        let s = self.shape(x);
        let fan_in = (s[1] * k * k) as f64;
        let w = self.random(&[cout, s[1], k, k], (3.0 / fan_in).sqrt());
        let wid = self.weight(&format!("{name}.weight"), w);
        let oh = (s[2] + 2 * pad - k) / stride + 1;
        let ow = (s[3] + 2 * pad - k) / stride + 1;
        let attrs = ConvAttrs {
            stride: [stride; 2],
            padding: [pad; 4],
            dilation: [1; 2],
            groups: 1,
        };
        let c = self.node(
            name,
            Op::Conv { weight: wid, attrs },
            vec![x],
            vec![s[0], cout, oh, ow],
        );
        let b = self.random(&[1, cout, 1, 1], 0.05);
        let bid = self.weight(&format!("{name}.bias"), b);
        self.node(
            &format!("{name}.bias"),
            Op::AddWeight { weight: bid },
            vec![c],
            vec![s[0], cout, oh, ow],
        )
    }

    fn relu(&mut self, name: &str, x: usize) -> usize {
        let s = self.shape(x);
        self.node(name, Op::Relu, vec![x], s)
    }

    fn block(&mut self, name: &str, x: usize, cout: usize, stride: usize) -> usize {
        let cin = self.shape(x)[1];
        let y = self.conv(&format!("{name}.conv1"), x, cout, 3, stride, 1);
        let y = self.relu(&format!("{name}.relu1"), y);
        let y = self.conv(&format!("{name}.conv2"), y, cout, 3, 1, 1);
        let skip = if stride != 1 || cin != cout {
            self.conv(&format!("{name}.downsample"), x, cout, 1, stride, 0)
        } else {
            x
        };
        self.residual(name, y, skip)
    }

    /// ResNet-50's bottleneck: 1×1 down to `width`, 3×3 (strided), 1×1 up
    /// to `4 × width`, plus the (projected) input.
    fn bottleneck(&mut self, name: &str, x: usize, width: usize, stride: usize) -> usize {
        let (cin, cout) = (self.shape(x)[1], 4 * width);
        let y = self.conv(&format!("{name}.conv1"), x, width, 1, 1, 0);
        let y = self.relu(&format!("{name}.relu1"), y);
        let y = self.conv(&format!("{name}.conv2"), y, width, 3, stride, 1);
        let y = self.relu(&format!("{name}.relu2"), y);
        let y = self.conv(&format!("{name}.conv3"), y, cout, 1, 1, 0);
        let skip = if stride != 1 || cin != cout {
            self.conv(&format!("{name}.downsample"), x, cout, 1, stride, 0)
        } else {
            x
        };
        self.residual(name, y, skip)
    }

    fn residual(&mut self, name: &str, y: usize, skip: usize) -> usize {
        let s = self.shape(y);
        let sum = self.node(&format!("{name}.add"), Op::Add, vec![y, skip], s);
        self.relu(&format!("{name}.relu_out"), sum)
    }
}

/// ResNet-18 for a `1×3×hw×hw` input, 1000 classes, and a random input.
pub fn resnet18(hw: usize) -> (Plan, Weights, ArrayD<f64>) {
    resnet(18, hw)
}

/// ResNet-50 for a `1×3×hw×hw` input, 1000 classes, and a random input.
pub fn resnet50(hw: usize) -> (Plan, Weights, ArrayD<f64>) {
    resnet(50, hw)
}

fn resnet(depth: usize, hw: usize) -> (Plan, Weights, ArrayD<f64>) {
    let mut b = Builder {
        plan: Plan {
            name: format!("resnet{depth}-{hw}"),
            frac_bits: 16,
            values: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            weights: Vec::new(),
            nodes: Vec::new(),
            commitment: [0; 32],
        },
        weights: Vec::new(),
        prg: Prg::new(&Seed::from_bytes([depth as u8; 32])),
    };
    let x = b.value("input", vec![1, 3, hw, hw]);
    b.plan.inputs.push(x);
    let y = b.conv("conv1", x, 64, 7, 2, 3);
    let y = b.relu("relu", y);
    let s = b.shape(y);
    let pool = PoolAttrs {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1; 4],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    let (ph, pw) = ((s[2] + 2 - 3) / 2 + 1, (s[3] + 2 - 3) / 2 + 1);
    let mut y = b.node("maxpool", Op::MaxPool(pool), vec![y], vec![1, 64, ph, pw]);
    let blocks = if depth == 50 {
        [3, 4, 6, 3]
    } else {
        [2, 2, 2, 2]
    };
    for (i, (c, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)]
        .into_iter()
        .enumerate()
    {
        for j in 0..blocks[i] {
            let name = format!("layer{}.{j}", i + 1);
            let s = if j == 0 { stride } else { 1 };
            y = if depth == 50 {
                b.bottleneck(&name, y, c, s)
            } else {
                b.block(&name, y, c, s)
            };
        }
    }
    let s = b.shape(y);
    let g = b.node(
        "avgpool",
        Op::GlobalAveragePool,
        vec![y],
        vec![1, s[1], 1, 1],
    );
    let f = b.node(
        "flatten",
        Op::Reshape {
            shape: vec![1, s[1]],
        },
        vec![g],
        vec![1, s[1]],
    );
    let w = b.random(&[s[1], 1000], (3.0 / s[1] as f64).sqrt());
    let wid = b.weight("fc.weight", w);
    let m = b.node(
        "fc",
        Op::MatMulWeight { weight: wid },
        vec![f],
        vec![1, 1000],
    );
    let bias = b.random(&[1000], 0.05);
    let bid = b.weight("fc.bias", bias);
    let out = b.node(
        "fc.bias",
        Op::AddWeight { weight: bid },
        vec![m],
        vec![1, 1000],
    );
    b.plan.outputs.push(out);
    let input = b.random(&[1, 3, hw, hw], 1.0);
    b.plan.optimize();
    let weights = Weights { tensors: b.weights };
    b.plan.commitment = Sha256::digest(weights.canonical_bytes()).into();
    (b.plan, weights, input)
}
