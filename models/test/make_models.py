"""Builds the test models of the ONNX suite with seeded random weights,
exports them to ONNX (opset 17), and records an input and onnxruntime's
output for each (.npy). The Rust tests run every model with `hush run` and
compare with onnxruntime.

Reproduce (same pinned versions as models/digits/train.py):
    /tmp/v/bin/python models/test/make_models.py [NAME ...]
"""

import inspect
import os
import sys

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(7)


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
        elif isinstance(mod, (nn.InstanceNorm2d, nn.GroupNorm)) and mod.affine:
            with torch.no_grad():
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return m


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(20, 32), nn.Sigmoid(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 4)
        )

    def forward(self, x):
        return self.net(x)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.c = nn.Sequential(
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
        )

    def forward(self, x):
        return self.c(torch.flatten(self.f(x), 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.b1 = Block(16, 16, 1)
        self.b2 = Block(16, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.b2(self.b1(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class MobileBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16))

    def forward(self, x):
        return x + self.project(self.dw(self.expand(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d=16, heads=2, ff=32):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        b, t, d = x.shape
        y = self.ln1(x)
        q = self.q(y).reshape(b, t, self.h, self.dk).transpose(1, 2)
        k = self.k(y).reshape(b, t, self.h, self.dk).transpose(1, 2)
        v = self.v(y).reshape(b, t, self.h, self.dk).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / self.dk**0.5, dim=-1)
        z = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(z)
        return x + self.ff2(nn.functional.gelu(self.ff1(self.ln2(x))))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(EncoderLayer(), EncoderLayer())

    def forward(self, x):
        return self.layers(x)


class MlpBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Linear(24, 3))

    def forward(self, x):
        return self.net(x)


class OpsZoo(nn.Module):
    """One graph through the layout, reduction and elementwise operators
    that the other models do not use."""

    def forward(self, x):  # x: [1, 4, 6, 6]
        a, b = torch.split(x, [1, 3], dim=1)  # Split
        a = nn.functional.pad(a, (1, 0, 0, 1))  # Pad -> [1,1,7,7]
        a = a[:, :, 1:6:2, ::2]  # Slice with steps -> [1,1,3,4]
        g = b[:, 2]  # Gather -> [1,6,6]
        g = g.unsqueeze(1).expand(1, 2, 6, 6)  # Unsqueeze, Expand
        h = nn.functional.hardswish(b) + nn.functional.hardsigmoid(b)
        h = nn.functional.leaky_relu(h, 0.2) / 4.0 + torch.exp(h / 4.0)
        s = torch.sqrt(h * h + 1.0) - h.pow(2) * 0.1
        gm = nn.functional.adaptive_max_pool2d(s, 1)  # GlobalMaxPool
        r = s.mean(dim=(2, 3), keepdim=True) + s.sum(dim=3, keepdim=True).mean(dim=2, keepdim=True)
        c = torch.cat([g, s[:, :2]], dim=1)  # Concat of values
        t = c.permute(0, 2, 3, 1).reshape(1, 36, 4)
        t = torch.log_softmax(t, dim=-1)
        out = [a.flatten(), gm.flatten(), r.flatten(), t.flatten(), c.squeeze(0).flatten()]
        return torch.cat(out)


class OpsZoo2(nn.Module):
    """The operators of U-Net-style and elementwise models that the others
    do not use: nearest upsampling (Resize), Max, Min, Abs, Neg, a constant
    minus and over a value, Tile."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(2, 4, 3, padding=1)
        self.up = nn.Conv2d(6, 2, 3, padding=1)

    def forward(self, x):  # x: [1, 2, 8, 8]
        d = torch.relu(self.down(x))
        p = nn.functional.max_pool2d(d, 2)  # [1, 4, 4, 4]
        u = nn.functional.interpolate(p, scale_factor=2.0, mode="nearest")  # Resize
        y = self.up(torch.cat([u, x], dim=1))  # [1, 2, 8, 8]
        m = torch.maximum(y, x) - torch.minimum(y, 0.5 * x)  # Max, Min
        m = torch.maximum(m, torch.tensor(0.25))  # Max with a constant
        a = torch.abs(y - m) + (-y)  # Abs, Neg
        b = 1.0 - a  # constant - value
        c = 2.0 / (a * a + 1.0)  # constant / value
        t = x[:, :1, :2, :2].repeat(1, 2, 2, 3)  # Tile -> [1, 2, 4, 6]
        return torch.cat([b.flatten(), c.flatten(), t.flatten()])


class OpsZoo3(nn.Module):
    """Decoder- and generator-style operators the others do not use:
    transposed convolutions (with stride, padding, output padding and
    groups), instance and group normalization, ELU, SELU, CELU, Softsign,
    amax and amin (ReduceMax, ReduceMin), bilinear and bicubic resizing,
    Softplus, Mish and Log."""

    def __init__(self):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1)  # 6 -> 12
        self.norm1 = nn.InstanceNorm2d(6, affine=True)
        self.up2 = nn.ConvTranspose2d(
            6, 4, 3, stride=2, padding=1, output_padding=1, groups=2
        )  # 12 -> 24
        self.norm2 = nn.GroupNorm(2, 4)
        self.down = nn.Conv2d(4, 4, 3, stride=2, padding=1)  # 24 -> 12

    def forward(self, x):  # x: [1, 4, 6, 6]
        h = nn.functional.elu(self.norm1(self.up1(x)))
        h = nn.functional.selu(self.norm2(self.up2(h)))
        h = nn.functional.celu(self.down(h), alpha=1.5)
        s = nn.functional.softsign(h)
        mx = torch.amax(h, dim=(2, 3))
        mn = torch.amin(h, dim=1, keepdim=True)
        u = nn.functional.interpolate(h, scale_factor=2.0, mode="bilinear")  # Resize linear
        c = nn.functional.interpolate(h, size=(7, 5), mode="bicubic", align_corners=True)
        # On the input: their own errors, not the chain's above amplified.
        p = nn.functional.mish(x) + nn.functional.softplus(x) + torch.log(x * x + 0.5)
        out = [s, mx, mn, u, c, p]
        return torch.cat([t.flatten() for t in out])


class OpsZoo4(nn.Module):
    """Super-resolution and segmentation-head operators the others do not
    use: PReLU, pixel shuffle and unshuffle (DepthToSpace, SpaceToDepth),
    softmax and log-softmax over channels, LayerNorm over [C, H, W], L2
    normalization (ReduceL2) and an L1 norm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 16, 3, padding=1)
        self.act = nn.PReLU(16)
        self.norm = nn.LayerNorm([4, 12, 12])
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):  # x: [1, 4, 6, 6]
        h = self.act(self.conv(x))  # [1, 16, 6, 6]
        up = nn.functional.pixel_shuffle(h, 2)  # [1, 4, 12, 12]
        n = self.norm(up)
        logits = self.head(n)  # [1, 3, 12, 12]
        p = torch.softmax(logits, dim=1)
        lp = torch.log_softmax(logits, dim=1)
        down = nn.functional.pixel_unshuffle(n, 2)  # [1, 16, 6, 6]
        unit = nn.functional.normalize(down, dim=1)  # ReduceL2
        l1 = torch.norm(x, p=1, dim=(2, 3))  # of the input: exact sums
        out = [p, lp, unit, l1]
        return torch.cat([t.flatten() for t in out])


class OpsZoo5(nn.Module):
    """Gating and masking: comparisons and their logic, Where with a
    computed condition (a gate, a band, masked_fill by a computed mask) and
    with a constant one (a fixed mask, the owner's), a comparison cast to
    float; and Einsum of two computed values and with a weight."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.register_buffer("mask", torch.rand(1, 16) > 0.5)

    def forward(self, x):  # x: [1, 16]
        h = self.fc(x)
        gate = torch.where(h > 0.2, h, 0.125 * h)
        band = ((x > -0.5) & (x < 0.5)) | (h >= 1.0)
        banded = torch.where(band, x, torch.zeros_like(x))
        either = (x > 0) ^ (h > 0)
        masked = h.masked_fill(~(x <= 0.25), -30.0)
        fixed = x.masked_fill(self.mask, 2.0)
        relu = (h > 0).float() * h
        outer = torch.einsum("bi,bj->bij", x, h)  # two computed values
        mixed = torch.einsum("bi,ji->bj", x, self.fc.weight)  # with a weight
        out = [gate, banded, either.float(), masked, fixed, relu, outer, mixed]
        return torch.cat([t.flatten() for t in out])


class TextClassifier(nn.Module):
    """A bag-of-embeddings text classifier on int64 token ids: an embedding
    lookup at the client's ids (Gather at computed indices), a padding mask
    (ids != 0: Equal and Not), a masked mean and a linear head."""

    VOCAB = 40

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(self.VOCAB, 16, padding_idx=0)
        self.fc = nn.Linear(16, 4)

    def forward(self, ids):  # ids: [1, 12], int64, 0 = padding
        h = self.emb(ids)  # [1, 12, 16]
        mask = (ids != 0).unsqueeze(-1).float()
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.fc(torch.tanh(pooled))


class TextEncoder(nn.Module):
    """A BERT-style encoder on int64 token ids and attention mask (two
    inputs, as Hugging Face's models take them), the mask applied as
    Hugging Face does: `(1 - mask)[:, None, None, :] * finfo.min` added
    to every head's scores (finfo.min, which the importer replaces by its
    stand-in for -inf), and a causal mask of -inf in the second layer (GPT
    style). Word and position embeddings, LayerNorm, two heads, GELU, and
    the first token's state (BERT's pooler, tanh) into a linear head."""

    VOCAB = 40

    def __init__(self, d=16, heads=2, t=12):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.word = nn.Embedding(self.VOCAB, d, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(1, t, d) * 0.1)
        self.ln0 = nn.LayerNorm(d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads) for _ in range(2))
        self.register_buffer("causal", torch.tril(torch.ones(t, t)).bool())
        self.pool = nn.Linear(d, d)
        self.fc = nn.Linear(d, 3)

    def attend(self, layer, x, ext):
        b, t, d = x.shape
        y = layer.ln1(x)
        q = layer.q(y).reshape(b, t, self.h, self.dk).transpose(1, 2)
        k = layer.k(y).reshape(b, t, self.h, self.dk).transpose(1, 2)
        v = layer.v(y).reshape(b, t, self.h, self.dk).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / self.dk**0.5 + ext
        z = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + layer.o(z)
        return x + layer.ff2(nn.functional.gelu(layer.ff1(layer.ln2(x))))

    INPUTS = ("input_ids", "attention_mask")

    def forward(self, ids, attention_mask):  # [1, 12] int64 each; mask 0 = padding
        mask = attention_mask.float()
        ext = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min
        x = self.ln0(self.word(ids) + self.pos)
        x = self.attend(self.layers[0], x, ext)
        causal = torch.zeros(self.causal.shape).masked_fill(~self.causal, float("-inf"))
        x = self.attend(self.layers[1], x, causal)
        return self.fc(torch.tanh(self.pool(x[:, 0])))


class TwoHeads(nn.Module):
    """A confident classifier with two outputs, as exported classifiers
    often end: the logits and their softmax. The logits lie around 30, far
    outside exp's range (+-16), and spread over tens in a row: the softmax
    has to subtract each row's maximum first."""

    OUTPUTS = ("logits", "probs")

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.fc2 = nn.Linear(32, 10)
        with torch.no_grad():
            self.fc2.weight.mul_(100.0)
            self.fc2.bias.add_(30.0)

    def forward(self, x):  # x: [3, 20]
        logits = self.fc2(torch.relu(self.fc1(x)))
        return logits, torch.softmax(logits, dim=-1)


def draw_input(cls, shape, rng):
    """The model's inputs: uniform in [-1, 1), or for a text model token ids
    (the last three padding) and, for a model that takes it, the attention
    mask (1 for a token, 0 for padding)."""
    vocab = getattr(cls, "VOCAB", None)
    if vocab is None:
        return [rng.uniform(-1, 1, size=shape).astype(np.float32)]
    ids = rng.integers(1, vocab, size=shape)
    ids[..., -3:] = 0
    ids = ids.astype(np.int64)
    if len(getattr(cls, "INPUTS", ("x",))) == 1:
        return [ids]
    return [ids, (ids != 0).astype(np.int64)]


MODELS = {
    "mlp": (MLP, (1, 20), True),
    "lenet5": (LeNet5, (1, 1, 28, 28), True),
    "resnet_small": (ResNetSmall, (1, 3, 32, 32), False),
    "mobilenet_block": (MobileBlock, (1, 16, 16, 16), False),
    "transformer": (Transformer, (1, 8, 16), True),
    "ops_zoo": (OpsZoo, (1, 4, 6, 6), True),
    "mlp_bn": (MlpBatchNorm, (1, 12), False),
    "ops_zoo2": (OpsZoo2, (1, 2, 8, 8), True),
    "ops_zoo3": (OpsZoo3, (1, 4, 6, 6), True),
    "ops_zoo4": (OpsZoo4, (1, 4, 6, 6), True),
    "ops_zoo5": (OpsZoo5, (1, 16), True),
    "text_classifier": (TextClassifier, (1, 12), True),
    "text_encoder": (TextEncoder, (1, 12), True),
    "two_heads": (TwoHeads, (3, 20), True),
}


# The TorchScript exporter: torch >= 2.9 defaults to the dynamo one and
# takes `dynamo=False`; older versions have only the TorchScript exporter.
TORCHSCRIPT_EXPORTER = (
    {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
)


def main():
    # Named models only (all by default); the others still draw their
    # weights and inputs, so each model is the same as in a full run.
    only = set(sys.argv[1:]) or set(MODELS)
    rng = np.random.default_rng(7)
    for name, (cls, shape, fold) in MODELS.items():
        model = randomize_bn(cls()).eval()
        xs = draw_input(cls, shape, rng)
        if name not in only:
            continue
        path = os.path.join(HERE, f"{name}.onnx")
        names = list(getattr(cls, "INPUTS", ("x",)))
        # BatchNorm stays in the graph (do_constant_folding=False) where the
        # importer's folding is what is under test.
        torch.onnx.export(
            model, tuple(torch.from_numpy(x) for x in xs), path, input_names=names,
            output_names=list(getattr(cls, "OUTPUTS", ("y",))), opset_version=17,
            do_constant_folding=fold, **TORCHSCRIPT_EXPORTER,
        )
        ys = ort.InferenceSession(path).run(None, dict(zip(names, xs)))
        # Saved as float32 (token ids are exact), the one input format of
        # the Rust tests and `hush run`: the first input as NAME.input.npy,
        # input i > 0 as NAME.input{i}.npy; outputs likewise, NAME.ort.npy
        # and NAME.ort{i}.npy.
        for i, x in enumerate(xs):
            suffix = "" if i == 0 else str(i)
            np.save(os.path.join(HERE, f"{name}.input{suffix}.npy"), x.astype(np.float32))
        for i, y in enumerate(ys):
            suffix = "" if i == 0 else str(i)
            np.save(os.path.join(HERE, f"{name}.ort{suffix}.npy"), y.astype(np.float32))
        shapes = ", ".join(str(y.shape) for y in ys)
        print(f"{name}: {os.path.getsize(path)} bytes, output {shapes}, max |y0| {abs(ys[0]).max():.1f}")


if __name__ == "__main__":
    main()
