#!/usr/bin/env bash
# One-time set-up on a fresh machine: virtual environment, PyTorch (CPU build 2.13.0 unless a
# torch is already installed there), robustlens with its dev and oracle extras, and the
# Fashion-MNIST files (Debian's package when apt is there and we are root, else the official
# download, verified by sha256).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install "torch==2.13.0"
fi
"$PY" -m pip install -e ".[dev,oracles]"

have_fmnist() {
    "$PY" -c "import sys; from robustlens.data import locate_dataset; sys.exit(0 if locate_dataset('fashion-mnist') else 1)"
}
if ! have_fmnist && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q dataset-fashion-mnist \
        || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; } \
        || echo "setup: apt could not install dataset-fashion-mnist; downloading instead" >&2
fi
if ! have_fmnist; then
    "$PY" -m robustlens data fetch fashion-mnist
fi
