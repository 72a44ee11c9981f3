"""AutoAttack ``standard`` against torchattacks 3.5.1's AutoAttack on the quickstart models.

For each model (an L∞-trained one at its training ε, an L2-trained one at its ε) the same
test images go through our :class:`robustlens.attacks.AutoAttack` and torchattacks'
``AutoAttack(version="standard")``, one after the other in the same process: the time ratio
(theirs / ours; target ≥ 2) and both robust accuracies, compared image by image: b = the
images robust under ours but broken by theirs, c = the reverse, and McNemar's paired test
(:func:`robustlens.proportions.mcnemar`); ours is "not weaker" when b ≤ c or p ≥ 0.01.

Run: ``python -m benchmarks.bench_autoattack [STORE] [N]`` (default the quickstart store
``/work/main/runs/qs-p001`` and 200 images). One run per attack: AutoAttack on a few hundred
images takes minutes, and the two are timed back to back on the same (possibly loaded) machine.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import record
from robustlens.attacks import AutoAttack
from robustlens.data import load_dataset
from robustlens.models.checkpoint import load_checkpoint
from robustlens.proportions import mcnemar

STORE = Path("/work/main/runs/qs-p001")
MODELS = {"linf-0.1": ("linf", 0.1), "l2-1.5": ("l2", 1.5)}
BATCH = 500


def compare(model, norm: str, eps: float, x: torch.Tensor, y: torch.Tensor) -> dict:
    import torchattacks as ta

    ours = AutoAttack(model, norm, eps, version="standard", seed=0)
    t = time.perf_counter()
    result = ours.run(x, y, batch_size=BATCH)
    ours_s = time.perf_counter() - t
    ours_robust = ~result.success

    theirs = ta.AutoAttack(
        model,
        norm="Linf" if norm == "linf" else "L2",
        eps=eps,
        version="standard",
        n_classes=10,
        seed=0,
    )
    t = time.perf_counter()
    adv = torch.cat([theirs(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)])
    theirs_s = time.perf_counter() - t
    with torch.no_grad():
        clean = model(x).argmax(1) == y
        theirs_robust = clean & (model(adv).argmax(1) == y)
    paired = mcnemar(ours_robust, theirs_robust)
    return {
        "n": len(x),
        "clean": float(clean.float().mean()),
        "ours_s": ours_s,
        "theirs_s": theirs_s,
        "speedup": theirs_s / ours_s,
        "ours_robust_accuracy": float(ours_robust.float().mean()),
        "theirs_robust_accuracy": float(theirs_robust.float().mean()),
        "ours_only_robust": paired.only_a,
        "theirs_only_robust": paired.only_b,
        "mcnemar_p": paired.p_value,
        "mcnemar_method": paired.method,
        "broken_by": result.counts(),
    }


def main() -> None:
    store = Path(sys.argv[1]) if len(sys.argv) > 1 else STORE
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    test = load_dataset("fashion-mnist", "test", n=n, seed=0)
    load = os.getloadavg()
    out = {"load_before": load}
    rows = []
    for name, (norm, eps) in MODELS.items():
        model, _ = load_checkpoint(store / "models" / name / "model")
        r = compare(model, norm, eps, test.images, test.labels)
        out[name] = r
        print(name, r, "load", os.getloadavg(), flush=True)  # partial results as they come
        label = "L∞" if norm == "linf" else "L2"
        rows.append(
            f"| {name} ({label} ε={eps:g}), {r['n']} images | {r['ours_s']:.1f} s | "
            f"{r['theirs_s']:.1f} s | {r['speedup']:.2f} × | "
            f"{r['ours_robust_accuracy']:.3f} / {r['theirs_robust_accuracy']:.3f} | "
            f"{r['ours_only_robust']} / {r['theirs_only_robust']} (McNemar p = {r['mcnemar_p']:.3g}) |"
        )
    out["load_after"] = os.getloadavg()
    markdown = (
        "## AutoAttack standard vs torchattacks 3.5.1 (quickstart models, Fashion-MNIST)\n\n"
        "| model | ours | torchattacks | speed-up (target ≥ 2 ×) | robust acc. ours / theirs "
        "| robust under ours only / theirs only (McNemar, two-sided) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Load average (1 min) {load[0]:.2f} before, {out['load_after'][0]:.2f} after "
        "(the machine is shared; both attacks ran back to back under the same load).\n"
    )
    record("autoattack", markdown, out)


if __name__ == "__main__":
    main()
