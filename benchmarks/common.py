"""Shared helpers for the benchmarks: the machine's description, interleaved timing, recording.

Speed is measured as ratios taken in one run, with the compared variants interleaved round by
round and summarised by their medians, because these machines are noisy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
OUT = HERE / "out"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads){gpu}, {platform.system()} {platform.release()}"
    )


def interleaved(
    variants: dict[str, Callable[[], None]], rounds: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Run each variant once per round, in turn, and return all timings (seconds)."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def record(section: str, markdown: str, data: dict) -> None:
    """Replace (or add) ``section`` in RESULTS.md and save the raw numbers as JSON."""
    OUT.mkdir(exist_ok=True)
    (OUT / f"{section}.json").write_text(json.dumps(data, indent=2))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- bench:{section} -->\n{markdown.rstrip()}\n\n"
        f"_Measured {stamp} on {machine()}._\n<!-- /bench:{section} -->"
    )
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"<!-- bench:{section} -->.*?<!-- /bench:{section} -->", re.S)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
    )
    RESULTS.write_text(text)
    print(markdown)
