"""Trains the embedded default model of `hush serve`: a small CNN on
scikit-learn's bundled 8x8 digits (no download), exported to ONNX.

Reproduce (CPU, about a minute):
    python3 -m venv /tmp/v && /tmp/v/bin/pip install torch==2.15.0 \
        scikit-learn==1.9.1 onnx==1.17.0 onnxruntime==1.32.0 numpy==2.4.6
    /tmp/v/bin/python models/digits/train.py
Writes models/digits/digits.onnx, the data set (digits_images.u8,
digits_labels.u8) and onnxruntime's logits for it (digits_ort_logits.f32),
and prints the accuracy.

Input: [1, 1, 8, 8], pixel intensities scaled to [0, 1] (the data set's
0..16 divided by 16). Output: [1, 10] logits.
"""

import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

SEED = 20261124
torch.manual_seed(SEED)
np.random.seed(SEED)
HERE = os.path.dirname(os.path.abspath(__file__))


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def main():
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(x))
    train, test = perm[:1437], perm[1437:]
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(40):
        model.train()
        for batch in train.split(64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    acc_test = (pred[test] == y[test]).float().mean().item()
    acc_all = (pred == y).float().mean().item()
    print(f"accuracy: held-out {acc_test:.4f}, all 1797 digits {acc_all:.4f}")
    path = os.path.join(HERE, "digits.onnx")
    torch.onnx.export(
        model,
        torch.zeros(1, 1, 8, 8),
        path,
        input_names=["pixels"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
    )
    print("wrote", path, os.path.getsize(path), "bytes")
    # The data set itself, for the Rust tests (values 0..16, labels 0..9).
    with open(os.path.join(HERE, "digits_images.u8"), "wb") as f:
        f.write(digits.images.astype(np.uint8).tobytes())
    with open(os.path.join(HERE, "digits_labels.u8"), "wb") as f:
        f.write(digits.target.astype(np.uint8).tobytes())
    # onnxruntime's logits for every digit: the reference of the Rust tests.
    import onnxruntime as ort

    sess = ort.InferenceSession(path)
    logits = np.concatenate(
        [sess.run(None, {"pixels": x[i : i + 1].numpy()})[0] for i in range(len(x))]
    )
    logits.astype("<f4").tofile(os.path.join(HERE, "digits_ort_logits.f32"))
    ort_acc = (logits.argmax(1) == digits.target).mean()
    print(f"onnxruntime accuracy on all 1797 digits: {ort_acc:.4f}")


if __name__ == "__main__":
    main()
