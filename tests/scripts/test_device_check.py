"""scripts/device-check.sh in its quick CPU mode (CUDA hidden): every stage passes, the gpu
tests are reported as skipped, and the table and JSON carry positive benchmark figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustlens.data import locate_dataset

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "device-check.sh"


@pytest.mark.slow
def test_device_check_runs_on_the_cpu(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ROBUSTLENS_GPU_TESTS_ON_CPU"}
    env.update(
        OUT=str(tmp_path / "out"),
        PYTHON=sys.executable,
        CUDA_VISIBLE_DEVICES="",  # the quick CPU mode, on a GPU machine too
        DEVICE_CHECK_SKIP_INSTALL="1",
    )
    run = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1200
    )
    out = tmp_path / "out"
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    table = (out / "device-check.md").read_text()
    report = json.loads((out / "device-check.json").read_text())
    assert (out / "device-check.log").read_text().count("=== bench:") == 1

    stages = {s["stage"]: s["rc"] for s in report["stages"]}
    assert stages == {"env": 0, "gpu-tests": 0, "bench": 0, "report": 0}
    for name in stages:
        assert f"| {name} | pass |" in table
    assert report["env"]["cuda_available"] is False
    assert "No CUDA" in table and "quick" in report["mode"]

    tests = report["gpu_tests"]
    assert tests["failures"] == tests["errors"] == 0
    assert tests["skipped"] >= 20 and "no CUDA device" in tests["skip_reason"]
    assert f"{tests['skipped']} skipped" in table

    sections = report["bench"]["sections"]
    fashion = locate_dataset("fashion-mnist") is not None
    for name, section in sections.items():
        if name == "fashion_mnist" and not fashion:
            assert section["status"] == "error"
            continue
        assert section["status"] == "ok", (name, section)
    res = {name: s.get("results", {}) for name, s in sections.items()}
    assert res["matmul"]["tflops"] > 0
    for grid in ("train_preact_resnet18", "train_wrn_28_10"):
        runs = res[grid]["runs"]
        assert {r["method"] for r in runs} >= {"natural", "fgsm-rs"}
        assert all(r["images_per_s"] > 0 and r["mfu"] > 0 for r in runs)
        assert all(r["precision"] == "fp32" and not r["channels_last"] for r in runs)
    assert res["epoch_estimates"]["fgsm_rs_over_natural"] > 0
    assert res["pgd_step_ratio_fp32"]["eval_step_ratio"] > 0
    assert res["pgd_eval"]["images_per_s"] > 0
    assert res["activations_lens"]["lens_images_per_s"] > 0
    if fashion:
        assert 0 <= res["fashion_mnist"]["natural"]["clean_accuracy"] <= 1
        assert "clean test accuracy" in table
    assert "img/s" in table and "FGSM-RS epoch ÷ natural epoch" in table
