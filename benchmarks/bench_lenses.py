"""Speed and memory of the activations lens (Carletti et al. §3.1–3.2) on the small CNN.

1. Throughput relative to a bare forward pass over the same 1 000 Fashion-MNIST test images
   (target ≥ 0.5 ×), both interleaved in one run.
2. Peak memory at 10 000 images against 1 000 (target: within 10 %), each measured in a fresh
   process that loads the same data and model before running the lens, as the peak resident
   set size of the whole process and as the lens's own increase over the loaded baseline.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import torch

from benchmarks.common import interleaved, median, record
from robustlens.data import load_dataset
from robustlens.lenses import LENSES, LensContext, StudyModel
from robustlens.models import ModelCard, build_model

BATCH = 250


def setup(n: int):
    torch.manual_seed(0)
    test = load_dataset("fashion-mnist", "test")  # all 10 000, so the baseline is the same
    data = test.subset(n, seed=0)
    model = build_model("small-cnn", data.info).eval()
    card = ModelCard.for_model(model, recipe={"method": "natural"})
    study_model = StudyModel("natural", model, card, "bench")
    ctx = LensContext(data.info, 0, torch.device("cpu"), lambda s, k: data)
    spec = LENSES.get("activations")
    params = spec.resolve_params(data.info, {"batch_size": BATCH}, "bench")
    return data, model, study_model, ctx, spec, params


def memory_child(n: int) -> None:
    data, _, study_model, ctx, spec, params = setup(n)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec.compute(study_model, data, params, ctx)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "peak_kib": peak, "lens_kib": peak - baseline}))


def memory(n: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_lenses", "--memory", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    data, model, study_model, ctx, spec, params = setup(1000)

    def bare() -> None:
        with torch.no_grad():
            for x, _ in data.batches(BATCH):
                model(x)

    times = interleaved(
        {"forward": bare, "lens": lambda: spec.compute(study_model, data, params, ctx)}, rounds=7
    )
    ratio = median(times["forward"]) / median(times["lens"])
    small, large = memory(1000), memory(10000)
    growth = large["peak_kib"] / small["peak_kib"] - 1
    markdown = f"""## Activations lens (small CNN, Fashion-MNIST, batch {BATCH})

| measure | value | target |
|---|---|---|
| bare forward, 1 000 images | {median(times["forward"]) * 1e3:.0f} ms | |
| activations lens, 1 000 images | {median(times["lens"]) * 1e3:.0f} ms | |
| lens throughput / forward throughput | {ratio:.2f} × | ≥ 0.5 × |
| peak RSS at 1 000 / 10 000 images | {small["peak_kib"] / 1024:.0f} / {large["peak_kib"] / 1024:.0f} MiB | |
| growth of peak RSS from 1 000 to 10 000 images | {growth * 100:+.1f} % | within 10 % |
| lens's own increase over the loaded baseline, 1 000 / 10 000 | {small["lens_kib"] / 1024:.1f} / {large["lens_kib"] / 1024:.1f} MiB | |
"""
    record("activations_lens", markdown, {"ratio": ratio, "memory": [small, large]})


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory_child(int(sys.argv[2]))
    else:
        main()
