#!/usr/bin/env bash
# One-time set-up on a fresh machine: virtual environment, PyTorch (CPU build 2.13.0 unless a
# torch is already installed there), robustlens with its dev, oracle and cluster extras, and the
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
"$PY" -m pip install -e ".[dev,oracles,cluster]"
# The torchattacks oracle of the attack tests: its own code needs no torchvision, but its
# package metadata would pull one (and a CUDA torch) in, so it is installed without them.
"$PY" -c "import torchattacks" 2>/dev/null || "$PY" -m pip install --no-deps "torchattacks==3.5.1"

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

# A headless browser for the report's browser tests (tests/report/test_html_browser.py), and
# pdftotext (poppler-utils) to read the report printed to PDF: Debian's packages when apt is
# there, we are root and they are not on PATH. Optional: the set-up goes on without them and
# the browser tests skip, saying why.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q chromium \
        || { apt-get update -q && apt-get install -y -q chromium; } \
        || echo "setup: apt could not install chromium; the report's browser test will skip" >&2
fi
if ! command -v pdftotext >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q poppler-utils \
        || { apt-get update -q && apt-get install -y -q poppler-utils; } \
        || echo "setup: apt could not install poppler-utils; the report's print test will skip" >&2
fi
