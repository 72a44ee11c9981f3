"""AutoAttack ``standard`` against torchattacks 3.5.1 on the quickstart models.

For each model (an L∞-trained one at its training ε, an L2-trained one at its ε) the same
test images go through our :class:`robustlens.attacks.AutoAttack` and two torchattacks
sequences: its ``AutoAttack(version="standard")`` as shipped, whose APGD, APGD-T and FAB-T run
10 iterations (the class defaults; the authors' AutoAttack runs 100), and the same four attacks
at the authors' settings (100 iterations, 9 targets, Square 5 000 queries) in torchattacks'
``MultiAttack``, which also attacks only the images still robust. Per model: the time ratios
(theirs / ours; target ≥ 2 at equal or lower robust accuracy) and the robust accuracies,
compared image by image: b = the images robust under ours but broken by theirs, c = the
reverse, and McNemar's paired test (:func:`robustlens.proportions.mcnemar`).

Run: ``python -m benchmarks.bench_autoattack STORE [N]`` (a quickstart study's store, e.g.
``runs/quickstart``, and 100 images). AutoAttack on a few hundred images takes minutes on the
CPU; the three alternate on chunks of 25 images, so the ratios survive a change of load.
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

STORE = Path("runs/quickstart")
MODELS = {"linf-0.1": ("linf", 0.1), "l2-1.5": ("l2", 1.5)}
BATCH = 500
CHUNK = 25


def theirs_at_paper_settings(model, norm: str, eps: float):
    """torchattacks' four attacks with the authors' iteration counts, in its MultiAttack."""
    import torchattacks as ta

    kw = dict(eps=eps, norm="Linf" if norm == "linf" else "L2", seed=0, n_restarts=1)
    return ta.MultiAttack(
        [
            ta.APGD(model, loss="ce", steps=100, **kw),
            ta.APGDT(model, n_classes=10, steps=100, **kw),
            ta.FAB(model, multi_targeted=True, n_classes=10, steps=100, **kw),
            ta.Square(model, n_queries=5000, **kw),
        ]
    )


def compare(model, norm: str, eps: float, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The three sequences on the same images, chunk by chunk in turn (``CHUNK`` images
    each), so that a change of load on the shared machine hits all alike."""
    import torchattacks as ta

    ours = AutoAttack(model, norm, eps, version="standard", seed=0)
    theirs = {
        "shipped": ta.AutoAttack(
            model,
            norm="Linf" if norm == "linf" else "L2",
            eps=eps,
            version="standard",
            n_classes=10,
            seed=0,
        ),
        "paper": theirs_at_paper_settings(model, norm, eps),
    }
    seconds = {"ours": 0.0, **dict.fromkeys(theirs, 0.0)}
    success, adv, counts = [], {k: [] for k in theirs}, {}
    for i in range(0, len(x), CHUNK):
        xc, yc = x[i : i + CHUNK], y[i : i + CHUNK]
        t = time.perf_counter()
        result = ours.run(xc, yc, batch_size=BATCH)
        seconds["ours"] += time.perf_counter() - t
        success.append(result.success)
        for k, v in result.counts().items():
            counts[k] = counts.get(k, 0) + v
        for name, attack in theirs.items():
            t = time.perf_counter()
            adv[name].append(attack(xc, yc))
            seconds[name] += time.perf_counter() - t
        done = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
        print(f"  {i + len(xc)} / {len(x)}: {done}", flush=True)
    ours_robust = ~torch.cat(success)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    out = {
        "n": len(x),
        "clean": float(clean.float().mean()),
        "ours_s": seconds["ours"],
        "ours_robust_accuracy": float(ours_robust.float().mean()),
        "broken_by": counts,
    }
    for name in theirs:
        with torch.no_grad():
            robust = clean & (model(torch.cat(adv[name])).argmax(1) == y)
        paired = mcnemar(ours_robust, robust)
        out[name] = {
            "seconds": seconds[name],
            "speedup": seconds[name] / seconds["ours"],
            "robust_accuracy": float(robust.float().mean()),
            "ours_only_robust": paired.only_a,
            "theirs_only_robust": paired.only_b,
            "mcnemar_p": paired.p_value,
            "mcnemar_method": paired.method,
        }
    return out


def main() -> None:
    store = Path(sys.argv[1]) if len(sys.argv) > 1 else STORE
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
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
        for variant, title in (("shipped", "as shipped (10 it.)"), ("paper", "at 100 it.")):
            t = r[variant]
            rows.append(
                f"| {name} ({label} ε={eps:g}), {r['n']} images | {title} | "
                f"{r['ours_s']:.1f} s | {t['seconds']:.1f} s | {t['speedup']:.2f} × | "
                f"{r['ours_robust_accuracy']:.3f} / {t['robust_accuracy']:.3f} | "
                f"{t['ours_only_robust']} / {t['theirs_only_robust']} "
                f"(McNemar p = {t['mcnemar_p']:.3g}) |"
            )
    out["load_after"] = os.getloadavg()
    markdown = (
        "## AutoAttack standard vs torchattacks 3.5.1 (quickstart models, Fashion-MNIST)\n\n"
        "| model | torchattacks | ours | theirs | speed-up (target ≥ 2 ×) "
        "| robust acc. ours / theirs | robust under ours only / theirs only |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Load average (1 min) {load[0]:.2f} before, {out['load_after'][0]:.2f} after; the "
        f"three sequences alternated on chunks of {CHUNK} images, "
        f"{torch.get_num_threads()} threads each.\n"
    )
    record("autoattack", markdown, out)


if __name__ == "__main__":
    main()
