#!/usr/bin/env bash
# Creates the Python environment of the side-by-side benchmark: CrypTen 0.4.1
# on torch 2.2.2 (CPU work only), plus onnx/onnxruntime for the shared models
# and their reference outputs. Never used by the project's own tests.
#
#   bench/crypten/setup.sh [VENV]        (default: target/bench/venv)
#
# Notes (shared/ENVIRONMENT.md): `pip install crypten` fails on the dead
# `sklearn` stub, so CrypTen is installed with --no-deps and its real
# dependencies by hand; it needs torch < 2.9. PyPI's torch brings the CUDA
# libraries even for CPU use (a ~5.5 GB environment).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-target/bench/venv}
STAMP="$VENV/.hush-bench-ready-v1"
if [ -f "$STAMP" ]; then
  echo "benchmark environment ready in $VENV"
  exit 0
fi
python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install --quiet --upgrade pip
"$PIP" install --quiet \
  torch==2.2.2 torchvision==0.17.2 "numpy==1.26.4" \
  onnx==1.16.2 onnxruntime==1.19.2 \
  omegaconf==2.3.0 pandas==2.2.3 pyyaml==6.0.2 tensorboard==2.18.0 \
  future==1.0.0 scipy==1.13.1 scikit-learn==1.5.2
"$PIP" install --quiet --no-deps crypten==0.4.1
"$VENV/bin/python" -c "import crypten, torch, onnxruntime; print('crypten', crypten.__version__ if hasattr(crypten, '__version__') else '0.4.1', 'torch', torch.__version__, 'onnxruntime', onnxruntime.__version__)"
touch "$STAMP"
