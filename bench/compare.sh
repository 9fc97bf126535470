#!/usr/bin/env bash
# Hush and CrypTen side by side on this machine, then docs/BENCHMARKS.md.
#
#   bench/compare.sh            the full run (10 to 40 min on 2 cores)
#   bench/compare.sh --quick    one repetition of a few small workloads, to
#                               check the pipeline (results are not written
#                               to docs/ unless --write is given as well)
#   bench/compare.sh --hush-only  Hush's runs again, CrypTen's JSON lines of an
#                               earlier full run kept (CrypTen does not change
#                               when Hush does; about 10 min on 2 cores
#                               after the release build)
#
# Steps: the CrypTen environment (bench/crypten/setup.sh), the shared ONNX
# models (bench/crypten/models.py), `hush bench` for the ops and models
# suites (each workload in a fresh process, so that its peak memory is its
# own), CrypTen on the same workloads, the suites between two processes on
# loopback and the emulated WANs (bench/net.sh), the product end to end on
# each link; then the JSON lines of target/bench/results/ are copied to
# bench/results/ (committed) and bench/report.py writes docs/BENCHMARKS.md,
# docs/benchmarks.svg and the README's headline rows from them. Nothing in
# the tables is typed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
WRITE=1
HUSH_ONLY=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1; WRITE=0 ;;
    --write) WRITE=1 ;;
    --hush-only) HUSH_ONLY=1 ;;
    *) echo "usage: bench/compare.sh [--quick] [--write] [--hush-only]" >&2; exit 2 ;;
  esac
done

VENV=target/bench/venv
MODELS=target/bench/models
OUT=target/bench/results
PY=$VENV/bin/python
HUSH=target/release/hush
mkdir -p "$OUT"
if [ "$HUSH_ONLY" = 1 ]; then
  for f in crypten-ops crypten-models; do
    # CrypTen's lines of the last published full run (bench/results/, which
    # only a full run writes): those in target/ may be a --quick run's few.
    if [ -s "bench/results/$f.jsonl" ]; then
      cp "bench/results/$f.jsonl" "$OUT/"
      [ -s "$OUT/machine.json" ] || cp bench/results/machine.json "$OUT/"
    fi
    if [ ! -s "$OUT/$f.jsonl" ]; then
      echo "--hush-only needs $OUT/$f.jsonl from an earlier full run" >&2
      exit 1
    fi
  done
  find "$OUT" -maxdepth 1 -name '*.jsonl' ! -name 'crypten-*' -delete
else
  rm -f "$OUT"/*.jsonl
fi

bench/crypten/setup.sh "$VENV"
"$PY" bench/crypten/models.py "$MODELS"
cargo build --release -q -p hush-server -p xtask
export HUSH XTASK=target/release/xtask  # built once; bench/net.sh uses them as they are

if [ "$QUICK" = 1 ]; then
  OPS_FILTER=("mul 1e6" "relu 1e6")
  MODEL_FILTER=("digits CNN 1x1x8x8" "LeNet-5 1x1x28x28")
  REPS=1; BIG_REPS=1; NET_REPS=1; HUSH_OPS_REPS=1
else
  mapfile -t OPS_FILTER < <("$HUSH" bench --suite ops --list)
  mapfile -t MODEL_FILTER < <("$HUSH" bench --suite models --list)
  REPS=5; BIG_REPS=3; NET_REPS=3
  # Hush's single operations take milliseconds, where this kind of shared
  # machine's noise (up to 1.5x between runs) weighs most: more repetitions
  # for their median, at a cost of seconds. The report states both counts.
  HUSH_OPS_REPS=15
fi
reps_for() { case "$1" in *224*) echo "$BIG_REPS" ;; *) echo "$REPS" ;; esac; }

echo "== machine" >&2
# With --hush-only, CrypTen's figures keep the date of the run that made them.
CRYPTEN_DATE=""
if [ "$HUSH_ONLY" = 1 ]; then
  CRYPTEN_DATE=$(python3 - "$OUT" <<'EOF'
import datetime, json, os, sys
out = sys.argv[1]
m = os.path.join(out, "machine.json")
prev = json.load(open(m)) if os.path.exists(m) else {}
src = m if os.path.exists(m) else os.path.join(out, "crypten-ops.jsonl")
print(prev.get("crypten_date") or prev.get("date") or datetime.datetime.fromtimestamp(
    os.path.getmtime(src), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
EOF
)
fi
export CRYPTEN_DATE
python3 - > "$OUT/machine.json" <<'EOF'
import json, os, platform, subprocess
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
mem = next((int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
import datetime
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
m = {"date": date, "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "kernel": platform.release(), "rustc": rustc}
if os.environ.get("CRYPTEN_DATE"):
    m["crypten_date"] = os.environ["CRYPTEN_DATE"]
print(json.dumps(m))
EOF

echo "== hush, ops and models, two parties in one process" >&2
for name in "${OPS_FILTER[@]}"; do
  "$HUSH" bench --suite ops --filter "$name" --exact --reps "$HUSH_OPS_REPS" --json >> "$OUT/hush-ops.jsonl"
done
for name in "${MODEL_FILTER[@]}"; do
  "$HUSH" bench --suite models --models-dir "$MODELS" --filter "$name" --exact \
    --reps "$(reps_for "$name")" --json >> "$OUT/hush-models.jsonl"
done

echo "== crypten 0.4.1, same workloads" >&2
if [ "$HUSH_ONLY" = 1 ]; then
  echo "(kept from the earlier run: --hush-only)" >&2
else
  for name in "${OPS_FILTER[@]}"; do
    "$PY" bench/crypten/bench.py --suite ops --filter "$name" --reps "$REPS" >> "$OUT/crypten-ops.jsonl" || true
  done
  for name in "${MODEL_FILTER[@]}"; do
    "$PY" bench/crypten/bench.py --suite models --models-dir "$MODELS" --filter "$name" \
      --reps "$(reps_for "$name")" >> "$OUT/crypten-models.jsonl" || true
  done
fi

echo "== hush between two processes: loopback and emulated WANs" >&2
if [ "$QUICK" = 1 ]; then LINKS=(loopback wan40); else LINKS=(loopback wan10 wan40); fi
for link in "${LINKS[@]}"; do
  OPS_NET=()
  [ "$QUICK" = 1 ] && OPS_NET=(--filter "mul 1e6")
  bench/net.sh "$link" --suite ops --reps "$NET_REPS" --json "${OPS_NET[@]}" >> "$OUT/net-ops.jsonl"
  for name in "digits" "LeNet" "transformer" "ResNet-18 1x3x32x32"; do
    [ "$QUICK" = 1 ] && [ "$name" != digits ] && continue
    bench/net.sh "$link" --suite models --models-dir "$MODELS" --filter "$name" \
      --reps "$NET_REPS" --json >> "$OUT/net-models.jsonl"
  done
  bench/net.sh "$link" --e2e --model "$MODELS/resnet18-32.onnx" \
    --input "$MODELS/resnet18-32.input.npy" --repeat "$NET_REPS" \
    --name "ResNet-18 1x3x32x32" >> "$OUT/net-e2e.jsonl"
done

if [ "$WRITE" = 1 ]; then
  # The lines the docs are made from are kept beside the scripts, so that
  # anyone can check the tables against them or regenerate the page.
  mkdir -p bench/results
  rm -f bench/results/*.jsonl
  cp "$OUT"/*.jsonl "$OUT"/machine.json bench/results/
  python3 bench/report.py bench/results --docs docs --readme README.md
else
  python3 bench/report.py "$OUT" --docs "$OUT/docs"
  echo "quick run: report written to $OUT/docs/BENCHMARKS.md (docs/ untouched)" >&2
fi
