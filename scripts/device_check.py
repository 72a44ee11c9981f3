"""Helpers of scripts/device-check.sh: ``env OUT`` describes the machine, ``report OUT`` joins
the stages, the gpu tests' JUnit XML and the benchmarks' JSON into device-check.json and a short
markdown table device-check.md. Only the standard library and torch are used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def env(out: Path) -> int:
    info: dict[str, Any] = {"python": sys.version.split()[0], "date_utc": _now()}
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            run = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
            info["nvidia_smi"] = run.stdout.strip() or run.stderr.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            info["nvidia_smi"] = f"failed: {exc}"
    else:
        info["nvidia_smi"] = None
    import torch

    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cuda_available"] = torch.cuda.is_available()
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["cudnn"] = torch.backends.cudnn.version()
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    for name in ("robustlens", "kornia", "captum", "numpy", "scipy", "pandas", "sklearn"):
        try:
            module = __import__(name)
            info[f"{name}_version"] = getattr(module, "__version__", "present")
        except Exception as exc:  # a missing optional package is a finding, not a crash
            info[f"{name}_version"] = f"missing ({type(exc).__name__})"
    (out / "env.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))
    return 0


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def _stages(out: Path) -> list[dict[str, Any]]:
    rows = []
    path = out / "stages.tsv"
    for line in path.read_text().splitlines() if path.exists() else []:
        name, rc, seconds, note = [*line.split("\t"), "", "", ""][:4]
        rows.append({"stage": name, "rc": int(rc), "seconds": float(seconds or 0), "note": note})
    return rows


def _junit(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return {"error": f"unreadable JUnit XML: {exc}"}
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    counts["failed_tests"] = failed
    skip = next(
        (c.find("skipped") for c in root.iter("testcase") if c.find("skipped") is not None), None
    )
    counts["skip_reason"] = None if skip is None else skip.get("message")
    return counts


def _fmt(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def _bench_rows(bench: dict[str, Any]) -> list[tuple[str, str]]:
    sec = bench.get("sections", {})
    rows: list[tuple[str, str]] = []

    def res(name: str) -> dict[str, Any]:
        return sec.get(name, {}).get("results") or {}

    if res("matmul"):
        m = res("matmul")
        rows.append((f"matmul {m['n']}³ {m['dtype']}", f"{m['tflops']:.3g} TFLOP/s"))
    for key in ("train_preact_resnet18", "train_wrn_28_10"):
        grid = res(key)
        for r in grid.get("runs", []):
            label = (
                f"{grid['arch']} train {r['method']} {r['precision']}"
                f"{' channels_last' if r['channels_last'] else ''}, batch {grid['batch']}"
            )
            if "images_per_s" in r:
                mfu = f", MFU {100 * r['mfu']:.1f} %" if "mfu" in r else ""
                rows.append((label, f"{r['images_per_s']:,.0f} img/s{mfu}"))
            elif "error" in r:
                rows.append((label, f"**error**: {r['error'][:120]}"))
            else:
                rows.append((label, f"skipped ({r.get('skipped')})"))
    e = res("epoch_estimates")
    if e:
        rows.append(
            (
                f"50 000-image FGSM-RS epoch, PreActResNet-18 {e['precision']} "
                "(target < 10 s on the H200)",
                f"{e['fgsm_rs_epoch_50k_s']:.1f} s",
            )
        )
        rows.append(
            ("FGSM-RS epoch ÷ natural epoch (target ≤ 2.2 ×)", f"{e['fgsm_rs_over_natural']:.2f} ×")
        )
    for key in ("pgd_step_ratio_fp32", "pgd_step_ratio_bf16"):
        r = res(key)
        if r:
            rows.append(
                (
                    f"PGD step ÷ bare fwd+bwd, {r['precision']}, batch {r['batch']} "
                    "(evaluation / training path; target ≤ 1.10 ×)",
                    f"{r['eval_step_ratio']:.3f} × / {r['train_step_ratio']:.3f} ×",
                )
            )
    r = res("pgd_eval")
    if r:
        rows.append(
            (
                f"PGD-{r['steps']} evaluation (fp32, no early exit), {r['images']} images",
                f"{r['images_per_s']:,.0f} img/s",
            )
        )
    r = res("activations_lens")
    if r:
        rows.append(
            (
                f"activations lens, {r['images']} images",
                f"{r['lens_images_per_s']:,.0f} img/s "
                f"({r['lens_over_forward_throughput']:.2f} × forward)",
            )
        )
    r = res("fashion_mnist")
    if r.get("natural"):
        n = r["natural"]
        rows.append(
            (
                f"Fashion-MNIST 32×32×3 PreActResNet-18 natural, {n['epochs']} epochs "
                f"({n['seconds']:.0f} s), clean test accuracy on {r['test_images']:,}",
                f"{n['clean_accuracy']:.4f}",
            )
        )
    f = r.get("fgsm_rs") or {}
    if "pgd10_robust_accuracy" in f:
        rows.append(
            (
                f"same, FGSM-RS ε={f['eps']}, {f['epochs']} epochs ({f['seconds']:.0f} s): "
                f"clean / PGD-10 robust ({f['robust_images']} images)",
                f"{f['clean_accuracy']:.4f} / {f['pgd10_robust_accuracy']:.4f}",
            )
        )
    for name, s in sec.items():
        if s.get("status") != "ok":
            rows.append(
                (
                    f"benchmark section {name}",
                    f"**{s.get('status')}**: {s.get('error') or s.get('reason') or ''}".rstrip(
                        ": "
                    ),
                )
            )
    return rows


def report(out: Path) -> int:
    stages = _stages(out)
    env_info = _load(out / "env.json")
    bench = _load(out / "bench_gpu.json")
    tests = _junit(out / "gpu-tests.xml")
    # without env.json (the benchmarks run alone) the benchmarks' own record says where they ran
    meta = bench.get("meta", {}) if isinstance(bench, dict) else {}
    cuda = bool(env_info.get("cuda_available", str(meta.get("device", "")).startswith("cuda")))
    data = {
        "date_utc": _now(),
        "mode": "cuda" if cuda else "cpu (quick; CUDA-only parts skipped)",
        "env": env_info,
        "stages": stages,
        "gpu_tests": tests,
        "bench": bench,
    }
    (out / "device-check.json").write_text(json.dumps(data, indent=1, default=str))
    gpu = env_info.get("gpu") or meta.get("gpu") or "no CUDA device"
    lines = [
        "# device check",
        "",
        f"{gpu}; torch {env_info.get('torch') or meta.get('torch')} "
        f"(CUDA {env_info.get('torch_cuda')}), "
        f"Python {env_info.get('python')}; {data['date_utc']}; mode: {data['mode']}.",
        "",
        "| stage | result | seconds | note |",
        "|---|---|---|---|",
    ]
    for s in stages:
        verdict = "pass" if s["rc"] == 0 else ("timeout" if s["rc"] in (124, 137) else "FAIL")
        lines.append(f"| {s['stage']} | {verdict} | {s['seconds']:.0f} | {s['note']} |")
    if tests and "error" not in tests:
        summary = (
            f"{tests['passed']} passed, {tests['failures'] + tests['errors']} failed, "
            f"{tests['skipped']} skipped"
        )
        if tests["skipped"] and tests["skip_reason"]:
            summary += f" (skip reason: {tests['skip_reason']})"
        lines += ["", f"gpu tests: {summary}"]
        lines += [f"- failed: `{name}`" for name in tests["failed_tests"]]
    if not cuda:
        lines += [
            "",
            "No CUDA: gpu tests skipped; benchmarks in quick CPU mode without bf16 "
            "autocast or channels_last.",
        ]
    rows = _bench_rows(bench)
    if rows:
        lines += ["", "| measure | value |", "|---|---|"]
        lines += [f"| {a} | {b} |" for a, b in rows]
    (out / "device-check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("env", "report"):
        print("usage: device_check.py env|report OUT", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    return env(out) if argv[0] == "env" else report(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
