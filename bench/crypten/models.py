"""Writes the models of the side-by-side benchmark into one folder, so that
Hush and CrypTen run the very same ONNX files:

    <dir>/<key>.onnx        the model
    <dir>/<key>.input.npy   its input (float32)
    <dir>/<key>.ort.npy     onnxruntime's output for that input (float32)

digits, LeNet-5 and the transformer encoder are the repository's test models
(models/); the ResNets are torchvision's architectures with seeded random
weights and randomised BatchNorm statistics (untouched BatchNorm exports
Identity nodes that CrypTen rejects), exported at opset 17 in eval mode.

    target/bench/venv/bin/python bench/crypten/models.py target/bench/models
"""

import os
import shutil
import sys

import numpy as np
import onnxruntime as ort
import torch
import torchvision
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.3, 0.6)
                mod.bias.uniform_(-0.1, 0.1)
    return m


def reference(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0].astype(np.float32)


def copy_repo_model(out, key, onnx_rel, input_rel):
    dst = os.path.join(out, key + ".onnx")
    shutil.copyfile(os.path.join(ROOT, onnx_rel), dst)
    x = np.load(os.path.join(ROOT, input_rel)).astype(np.float32)
    sess = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
    x = x.reshape(shape)
    np.save(os.path.join(out, key + ".input.npy"), x)
    np.save(os.path.join(out, key + ".ort.npy"), reference(dst, x))


def export_torchvision(out, key, ctor, size, seed):
    torch.manual_seed(seed)
    model = randomize_bn(ctor(weights=None)).eval()
    x = torch.randn(1, 3, size, size)
    path = os.path.join(out, key + ".onnx")
    torch.onnx.export(model, x, path, opset_version=17, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True)
    xn = x.numpy().astype(np.float32)
    np.save(os.path.join(out, key + ".input.npy"), xn)
    np.save(os.path.join(out, key + ".ort.npy"), reference(path, xn))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "bench", "models")
    os.makedirs(out, exist_ok=True)
    copy_repo_model(out, "digits", "models/digits/digits.onnx", "models/test/digit7.npy")
    copy_repo_model(out, "lenet5", "models/test/lenet5.onnx", "models/test/lenet5.input.npy")
    copy_repo_model(out, "transformer", "models/test/transformer.onnx",
                    "models/test/transformer.input.npy")
    export_torchvision(out, "resnet18-32", torchvision.models.resnet18, 32, 18)
    export_torchvision(out, "resnet18-224", torchvision.models.resnet18, 224, 18)
    export_torchvision(out, "resnet50-224", torchvision.models.resnet50, 224, 50)
    print("models written to", out)


if __name__ == "__main__":
    main()
