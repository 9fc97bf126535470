"""CrypTen 0.4.1 on the workloads of `hush bench`, with the same JSON fields.

Two parties and CrypTen's trusted-third-party provider ("TTP": a third
process makes the Beaver triples and other randomness on demand; the default
"TFP" lets party 0 make them, which is insecure). Each workload runs in a
fresh interpreter (CrypTen's shutdown sometimes hangs), writes its results
before shutting down, and is killed after a timeout.

    target/bench/venv/bin/python bench/crypten/bench.py --suite ops --reps 5
    target/bench/venv/bin/python bench/crypten/bench.py --suite models \
        --models-dir target/bench/models --reps 5

Fields (one JSON object per line, as `hush bench --json` prints them):
online_ms_median/online_ms_range over the measured repetitions (after one
warm-up), bytes_per_party (CrypTen's own counter: elements sent plus
received by one party, 8 bytes each), rounds (its counter: communication
calls of one party), peak_memory_bytes (largest resident set of the two
party processes, torch included), max_abs_error against a float64
reference on the inputs as CrypTen encodes them (ops) or onnxruntime
(models), computed from the revealed ring values (get_plain_text()
misdecodes some values just above negative integers). CrypTen's TTP makes randomness during the online phase, so its
online time includes it and it has no offline figure.
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (kind, parameters); names are those of `hush bench`.
OPS = {
    "mul 1e6": ("binary", {"op": "mul", "shape": [1_000_000]}),
    "matmul 512x512x512 (both secret)": ("binary", {"op": "matmul", "a": [512, 512], "b": [512, 512]}),
    "matmul 1x1024 . 1024x1024 (weights)": ("binary", {"op": "matmul", "a": [1, 1024], "b": [1024, 1024]}),
    "conv2d 1x64x32x32 * 64x3x3 (secret)": ("binary", {"op": "conv2d", "a": [1, 64, 32, 32], "b": [64, 64, 3, 3]}),
    "conv2d 1x64x32x32 * 64x3x3 (weights)": ("binary", {"op": "conv2d", "a": [1, 64, 32, 32], "b": [64, 64, 3, 3]}),
    "relu 1e6": ("unary", {"op": "relu", "shape": [1_000_000], "lo": -1.0, "hi": 1.0}),
    "lt 1e6": ("binary", {"op": "lt", "shape": [1_000_000]}),
    "exp 1e5": ("unary", {"op": "exp", "shape": [100_000], "lo": -8.0, "hi": 8.0}),
    "reciprocal 1e5": ("unary", {"op": "reciprocal", "shape": [100_000], "lo": 0.1, "hi": 100.0}),
    "sigmoid 1e5": ("unary", {"op": "sigmoid", "shape": [100_000], "lo": -8.0, "hi": 8.0}),
    "sqrt 1e5": ("unary", {"op": "sqrt", "shape": [100_000], "lo": 0.01, "hi": 100.0}),
    "softmax 1000x100": ("unary", {"op": "softmax", "shape": [1000, 100], "lo": -9.0, "hi": 9.0}),
}

MODELS = {
    "digits CNN 1x1x8x8": "digits",
    "LeNet-5 1x1x28x28": "lenet5",
    "transformer encoder 1x8x16": "transformer",
    "ResNet-18 1x3x32x32": "resnet18-32",
    "ResNet-18 1x3x224x224": "resnet18-224",
    "ResNet-50 1x3x224x224": "resnet50-224",
}


def without_identity(path):
    """The ONNX model with its Identity nodes bypassed (CrypTen rejects the
    op; the model computes the same)."""
    import io

    import onnx

    m = onnx.load(path)
    g = m.graph
    alias = {}
    for n in g.node:
        if n.op_type == "Identity":
            alias[n.output[0]] = alias.get(n.input[0], n.input[0])
    outputs = {o.name for o in g.output}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.output[0] not in outputs:
            continue
        for i, name in enumerate(n.input):
            if name in alias:
                n.input[i] = alias[name]
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return io.BytesIO(m.SerializeToString())


def party(name, reps, models_dir, out_dir):
    """Runs in each of the two party processes (after crypten.init())."""
    import crypten
    import crypten.communicator as comm
    import torch

    rank = comm.get().get_rank()
    torch.set_num_threads(1)  # two parties share the machine, as in `hush bench`

    def reveal(y):
        ring = y._tensor.reveal()
        return ring.double() / y.encoder.scale

    def quantized(t):
        """The value CrypTen encodes: float32, times 2^16, truncated (its
        encoder's `.long()`); references start from it, as Hush's start from
        the opened inputs, so that a comparison of two values closer than
        2^-16 is not counted as an error."""
        return torch.trunc(t.float().double() * 65536) / 65536

    def timed(fn):
        comm.get().barrier()
        comm.get().reset_communication_stats()
        t = time.perf_counter()
        y = fn()
        elapsed = time.perf_counter() - t
        stats = comm.get().get_communication_stats()
        return y, elapsed, stats

    result = {"online_s": [], "setup_s": None, "error": 0.0}
    gen = torch.Generator().manual_seed(1234)
    if name in OPS:
        kind, p = OPS[name]
        for rep in range(reps + 1):
            if kind == "unary":
                x = p["lo"] + (p["hi"] - p["lo"]) * torch.rand(p["shape"], generator=gen, dtype=torch.float64)
                xe = crypten.cryptensor(x.float(), src=0)
                x = quantized(x)
                f = {"relu": lambda: xe.relu(), "exp": lambda: xe.exp(),
                     "reciprocal": lambda: xe.reciprocal(), "sigmoid": lambda: xe.sigmoid(),
                     "sqrt": lambda: xe.sqrt(), "softmax": lambda: xe.softmax(-1)}[p["op"]]
                ref = {"relu": torch.relu, "exp": torch.exp, "reciprocal": torch.reciprocal,
                       "sigmoid": torch.sigmoid, "sqrt": torch.sqrt,
                       "softmax": lambda v: torch.softmax(v, -1)}[p["op"]](x)
            else:
                sa = p.get("a", p.get("shape"))
                sb = p.get("b", p.get("shape"))
                a = 2 * torch.rand(sa, generator=gen, dtype=torch.float64) - 1
                b = 2 * torch.rand(sb, generator=gen, dtype=torch.float64) - 1
                ae = crypten.cryptensor(a.float(), src=0)
                be = crypten.cryptensor(b.float(), src=1)
                a, b = quantized(a), quantized(b)
                f = {"mul": lambda: ae * be, "matmul": lambda: ae.matmul(be),
                     "conv2d": lambda: ae.conv2d(be, padding=1), "lt": lambda: ae.lt(be)}[p["op"]]
                ref = {"mul": lambda: a * b, "matmul": lambda: a @ b,
                       "conv2d": lambda: torch.nn.functional.conv2d(a, b, padding=1),
                       "lt": lambda: (a < b).double()}[p["op"]]()
            y, elapsed, stats = timed(f)
            err = (reveal(y) - ref).abs().max().item()
            if rep > 0:
                result["online_s"].append(elapsed)
                result["error"] = max(result["error"], err)
                result["stats"] = stats
    else:
        import numpy as np

        key = MODELS[name]
        path = os.path.join(models_dir, key + ".onnx")
        x = torch.from_numpy(np.load(os.path.join(models_dir, key + ".input.npy")))
        ref = torch.from_numpy(np.load(os.path.join(models_dir, key + ".ort.npy"))).double()
        model = crypten.nn.from_onnx(without_identity(path))
        comm.get().barrier()
        t = time.perf_counter()
        model.encrypt(src=1)
        model.eval()
        result["setup_s"] = time.perf_counter() - t
        for rep in range(reps + 1):
            xe = crypten.cryptensor(x, src=0)
            y, elapsed, stats = timed(lambda: model(xe))
            err = (reveal(y).reshape(ref.shape) - ref).abs().max().item()
            if rep > 0:
                result["online_s"].append(elapsed)
                result["error"] = max(result["error"], err)
                result["stats"] = stats
    result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def one(name, reps, models_dir, out_dir):
    import crypten
    import crypten.mpc as mpc

    crypten.cfg.mpc.provider = "TTP"
    crypten.cfg.communicator.verbose = True
    mpc.run_multiprocess(world_size=2)(party)(name, reps, models_dir, out_dir)


def measure(name, reps, models_dir, timeout):
    """Runs one workload in a fresh interpreter and returns its JSON record."""
    record = {"name": name, "framework": "crypten", "parties": 2, "reps": reps}
    with tempfile.TemporaryDirectory() as out_dir:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--one", name, "--reps", str(reps),
             "--models-dir", models_dir, "--out", out_dir],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        files = [os.path.join(out_dir, f"rank{r}.json") for r in range(2)]
        deadline = time.monotonic() + timeout
        done_at = None
        while proc.poll() is None and time.monotonic() < deadline:
            if done_at is None and all(os.path.exists(f) for f in files):
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at > 10:
                break  # results are written; do not wait for a hung shutdown
            time.sleep(0.2)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stderr = proc.stderr.read().decode(errors="replace")
        try:
            ranks = [json.load(open(f)) for f in files]
        except (OSError, ValueError):
            tail = stderr.strip().splitlines()[-3:]
            record["error"] = "failed: " + (" | ".join(tail) if tail else f"timeout after {timeout} s")
            return record
    online = [max(a, b) * 1e3 for a, b in zip(ranks[0]["online_s"], ranks[1]["online_s"])]
    med = sorted(online)[len(online) // 2]
    record.update({
        "online_ms_median": med,
        "online_ms_range": [min(online), max(online)],
        "offline_ms_median": None,
        "bytes_per_party": [int(r["stats"]["bytes"]) for r in ranks],
        "rounds": max(int(r["stats"]["rounds"]) for r in ranks),
        "peak_memory_bytes": max(r["peak_kb"] for r in ranks) * 1024,
        "max_abs_error": max(r["error"] for r in ranks),
    })
    if ranks[0]["setup_s"] is not None:
        record["setup"] = {"ms": max(r["setup_s"] for r in ranks) * 1e3}
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=["ops", "models"], default="ops")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--models-dir", default=os.path.join(HERE, "..", "..", "target", "bench", "models"))
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.one, args.reps, args.models_dir, args.out)
        return
    names = list(OPS if args.suite == "ops" else MODELS)
    names = [n for n in names if args.filter is None or args.filter in n]
    if not names:
        sys.exit("no workload matches --filter")
    for name in names:
        print(f"running {name} (CrypTen) ...", file=sys.stderr, flush=True)
        print(json.dumps(measure(name, args.reps, args.models_dir, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
