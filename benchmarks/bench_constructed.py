"""Speed of representation inversion (robustified sets, Springer et al. §3.3).

Image-steps per second of ``robustify`` (the PGD engine with the representation-distance
loss, box clipping, best-iterate tracking) against a bare forward + backward of the same loss
on the same batch, for the small CNN at Fashion-MNIST resolution, batch 250. Weights do not
change the cost, so the network is freshly initialised.
"""

from __future__ import annotations

import torch

from benchmarks.common import interleaved, median, record
from robustlens.constructed.inversion import representation_distance, representations, robustify
from robustlens.data import load_dataset
from robustlens.models import build_model

BATCH, STEPS = 250, 100


def main() -> None:
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", "test", n=BATCH, seed=0)
    model = build_model("small-cnn", data.info).eval()
    x, y = data.images, data.labels
    target = representations(model, x)
    start = x.roll(1, dims=0)

    def bare() -> None:
        for _ in range(STEPS):
            xr = start.clone().requires_grad_(True)
            loss = representation_distance(model, xr, target).sum()
            torch.autograd.grad(loss, xr)

    def inversion() -> None:
        robustify(model, x, y, steps=STEPS, step_size=0.05, batch_size=BATCH)

    times = interleaved({"bare": bare, "inversion": inversion}, rounds=5, warmup=1)
    bare_rate = BATCH * STEPS / median(times["bare"])
    inv_rate = BATCH * STEPS / median(times["inversion"])
    ratio = inv_rate / bare_rate
    markdown = (
        f"## Representation inversion (small CNN, batch {BATCH}, {STEPS} steps)\n\n"
        "| measure | value | target |\n|---|---|---|\n"
        f"| bare forward+backward of ‖rep(x) − rep(x*)‖₂ | {bare_rate:,.0f} image-steps/s | |\n"
        f"| `robustify` (PGD engine, custom loss, box, best iterate) | {inv_rate:,.0f} image-steps/s | |\n"
        f"| ratio | {ratio:.2f} × | ≥ 0.9 × |\n"
    )
    record("constructed", markdown, {"bare": bare_rate, "inversion": inv_rate, "ratio": ratio})


if __name__ == "__main__":
    main()
