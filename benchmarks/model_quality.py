"""Model quality on the embedded default: Fashion-MNIST, full train split, small CNN.

Trains a natural model, an L∞ (ε = 0.1) and an L2 (ε = 1.5) adversarially-trained model and
evaluates each on 1 000 class-balanced test images with PGD-20 at its training ε (the
natural model at both budgets). Targets (foundation issue): natural ≥ 90 % clean; L∞ model
≥ 80 % clean and ≥ 70 % robust; L2 model ≥ 80 % clean and ≥ 60 % robust.

Usage: python -m benchmarks.model_quality [OUT_DIR]   (about 40 minutes on 2 CPU cores)
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import record
from robustlens.attacks import L2, PGD, Linf, robust_accuracy
from robustlens.data import load_dataset
from robustlens.train import Recipe, train

RECIPES = {
    "natural": Recipe(method="natural", epochs=8),
    "linf-0.1": Recipe(method="pgd", norm="linf", eps=0.1, steps=3, epochs=10),
    "l2-1.5": Recipe(method="pgd", norm="l2", eps=1.5, steps=3, epochs=10),
}
TARGETS = {"natural": (0.90, None), "linf-0.1": (0.80, 0.70), "l2-1.5": (0.80, 0.60)}


def main(out_dir: Path) -> None:
    test = load_dataset("fashion-mnist", "test", n=1000, seed=0)
    rows = {}
    for name, recipe in RECIPES.items():
        result = train("small-cnn", "fashion-mnist", recipe, out_dir / name, progress=True)
        model = result.model.eval()
        row = {"minutes": sum(h["seconds"] for h in result.history) / 60, "reused": result.reused}
        for label, threat in (("linf-0.1", Linf(0.1)), ("l2-1.5", L2(1.5))):
            res = robust_accuracy(model, test, PGD(model, threat, steps=20))
            row["clean"] = res.clean_accuracy
            row[label] = res.robust_accuracy
        rows[name] = row
        print(name, row, flush=True)

    def verdict(name: str) -> str:
        clean_target, robust_target = TARGETS[name]
        ok = rows[name]["clean"] >= clean_target
        if robust_target is not None:
            ok &= rows[name][name] >= robust_target
        return "meets" if ok else "**misses**"

    lines = [
        "## Model quality (Fashion-MNIST, full train split, small CNN, 1 000 test images)",
        "",
        "| model | recipe | clean | PGD-20 L∞ ε=0.1 | PGD-20 L2 ε=1.5 | target | train time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        recipe = RECIPES[name]
        how = (
            "natural"
            if not recipe.adversarial
            else (f"PGD-{recipe.steps} {recipe.norm} ε={recipe.eps:g}")
        )
        how += f", {recipe.epochs} epochs, {recipe.schedule}, lr {recipe.lr:g}"
        clean_t, robust_t = TARGETS[name]
        target = f"clean ≥ {clean_t:.0%}" + (f", robust ≥ {robust_t:.0%}" if robust_t else "")
        lines.append(
            f"| {name} | {how} | {row['clean']:.3f} | {row['linf-0.1']:.3f} | "
            f"{row['l2-1.5']:.3f} | {target}: {verdict(name)} | {row['minutes']:.1f} min |"
        )
    record("model_quality", "\n".join(lines) + "\n", rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/out/models"))
