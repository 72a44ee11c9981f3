"""Attack speed on the small CNN (batch 256, Fashion-MNIST), as ratios taken in one run.

1. Cost of one PGD step relative to one bare forward + backward (input gradient) of the model.
2. Robust-accuracy evaluation of a natural model with PGD-20 (L∞, ε = 0.1) on 1 000 test
   images: robustlens (per-sample early exit) against Foolbox's LinfPGD with the same steps
   and step size, with both robust accuracies.
3. DeepFool L2 (50 steps at most, overshoot 0.02, all 10 classes) against PGD-20 (L2,
   ε = 1.5, per-sample early exit) on the same 1 000 images, for the natural model and an
   FGSM-RS-trained one, and against PGD-20 run to all 20 steps (no early exit, as Foolbox,
   torchattacks and the robustness library run it); also DeepFool restricted to the five
   most likely clean classes (Foolbox's ``candidates``) and with box-aware steps, each with its
   mean iterations and norms.
4. Cost of one APGD iteration (Croce & Hein 2020; 100 iterations, no early exit, so every
   image takes every iteration: one forward and backward, the checkpoint bookkeeping, two
   projections) relative to one bare forward + backward, in L∞ (the target) and in L2 (whose
   projection onto ball ∩ box sorts each image's values). Its own section (``apgd``); run it
   alone with ``python -m benchmarks.bench_attacks apgd``.
"""

from __future__ import annotations

import sys
import tempfile

import torch
import torch.nn.functional as F

from benchmarks.common import interleaved, median, record
from robustlens.attacks import APGD, L2, PGD, Linf, robust_accuracy
from robustlens.data import load_dataset
from robustlens.train import Recipe, train

EPS, STEPS, BATCH = 0.1, 20, 256


def trained_model(recipe: Recipe | None = None):
    recipe = recipe or Recipe(epochs=2, eval_n=500)
    with tempfile.TemporaryDirectory() as tmp:
        result = train("small-cnn", "fashion-mnist", recipe, tmp, train_n=20000, device="cpu")
    return result.model.eval()


def deepfool_vs_pgd(models: dict, data) -> dict:
    from robustlens.attacks import L2, DeepFool

    out = {}
    x, y = data.images, data.labels
    for name, model in models.items():
        deepfool = DeepFool(model, "l2")
        boxed = DeepFool(model, "l2", box_aware=True)
        top5 = DeepFool(model, "l2", candidates=5)
        pgd = PGD(model, L2(1.5), steps=STEPS)
        pgd_full = PGD(model, L2(1.5), steps=STEPS, early_stop=False)
        times = interleaved(
            {
                "deepfool": lambda d=deepfool: d.run(x, y, batch_size=BATCH),
                "boxed": lambda d=boxed: d.run(x, y, batch_size=BATCH),
                "top5": lambda d=top5: d.run(x, y, batch_size=BATCH),
                "pgd": lambda p=pgd: p.run(x, y, batch_size=BATCH),
                "pgd_full": lambda p=pgd_full: p.run(x, y, batch_size=BATCH),
            },
            rounds=3,
            warmup=1,
        )
        plain, box = deepfool.run(x, y, batch_size=BATCH), boxed.run(x, y, batch_size=BATCH)
        short = top5.run(x, y, batch_size=BATCH)
        found = plain.success & box.success & short.success
        t = {k: median(v) for k, v in times.items()}
        out[name] = {
            "deepfool_s": t["deepfool"],
            "boxed_s": t["boxed"],
            "top5_s": t["top5"],
            "pgd_s": t["pgd"],
            "pgd_full_s": t["pgd_full"],
            "ratio": t["deepfool"] / t["pgd"],
            "ratio_full": t["deepfool"] / t["pgd_full"],
            "boxed_ratio": t["boxed"] / t["pgd"],
            "boxed_ratio_full": t["boxed"] / t["pgd_full"],
            "top5_ratio": t["top5"] / t["pgd"],
            "top5_ratio_full": t["top5"] / t["pgd_full"],
            "deepfool_mean_iterations": plain.iterations.float().mean().item(),
            "boxed_mean_iterations": box.iterations.float().mean().item(),
            "top5_mean_iterations": short.iterations.float().mean().item(),
            "deepfool_mean_l2": plain.norms[found].mean().item(),
            "boxed_mean_l2": box.norms[found].mean().item(),
            "top5_mean_l2": short.norms[found].mean().item(),
            "top5_same_class_share": (short.norms[found] - plain.norms[found])
            .abs()
            .le(1e-4)
            .float()
            .mean()
            .item(),
        }
    return out


def bare_step(model, x, y):
    """One bare forward + backward for the input gradient."""

    def bare():
        xr = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), y, reduction="none").sum()
        torch.autograd.grad(loss, xr)

    return bare


def step_overhead(model, x, y) -> dict:
    bare = bare_step(model, x, y)
    # The evaluation path with all its bookkeeping (best iterate, success, projections),
    # but no early exit, so every sample takes every step.
    evaluation = PGD(model, Linf(EPS), steps=STEPS, early_stop=False)
    training = PGD(model, Linf(EPS), steps=STEPS, early_stop=False, track_best=False)
    times = interleaved(
        {
            "bare fwd+bwd": bare,
            "pgd step (evaluation path)": lambda: evaluation.run(x, y),
            "pgd step (training path)": lambda: training.perturb(x, y),
        },
        rounds=15,
    )
    base = median(times["bare fwd+bwd"])
    return {
        "bare_ms": base * 1e3,
        "eval_step_ratio": median(times["pgd step (evaluation path)"]) / STEPS / base,
        "train_step_ratio": median(times["pgd step (training path)"]) / STEPS / base,
    }


APGD_STEPS = 100


def apgd_step_overhead(model, x, y) -> dict:
    """One APGD iteration (evaluation path, no early exit) / one bare forward + backward."""
    linf = APGD(model, Linf(EPS), APGD_STEPS, early_stop=False)
    l2 = APGD(model, L2(1.5), APGD_STEPS, early_stop=False)
    times = interleaved(
        {
            "bare": bare_step(model, x, y),
            "apgd linf": lambda: linf.run(x, y),
            "apgd l2": lambda: l2.run(x, y),
        },
        rounds=7,
        warmup=1,
    )
    base = median(times["bare"])
    return {
        "bare_ms": base * 1e3,
        "apgd_linf_step_ratio": median(times["apgd linf"]) / APGD_STEPS / base,
        "apgd_l2_step_ratio": median(times["apgd l2"]) / APGD_STEPS / base,
    }


def record_apgd(model, x, y) -> None:
    a = apgd_step_overhead(model, x, y)
    rows = [
        ("bare forward+backward (input gradient), batch 256", f"{a['bare_ms']:.1f} ms", ""),
        (
            f"one APGD iteration / bare fwd+bwd, L∞ ε={EPS}, {APGD_STEPS} iterations, "
            "no early exit",
            f"{a['apgd_linf_step_ratio']:.3f} ×",
            "≤ 1.10 ×",
        ),
        (
            "same, L2 ε=1.5 (exact projection onto ball ∩ box)",
            f"{a['apgd_l2_step_ratio']:.3f} ×",
            "",
        ),
    ]
    markdown = (
        f"## APGD (small CNN, batch {BATCH})\n\n| measure | value | target |\n|---|---|---|\n"
    )
    markdown += "".join(f"| {m} | {v} | {t} |\n" for m, v, t in rows)
    record("apgd", markdown, a)


def versus_foolbox(model, data) -> dict:
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    fb_attack = fb.attacks.LinfPGD(steps=STEPS, abs_stepsize=2.5 * EPS / STEPS)
    ours = PGD(model, Linf(EPS), steps=STEPS)
    acc = {}

    def run_ours():
        acc["ours"] = robust_accuracy(model, data, ours, batch_size=BATCH).robust_accuracy

    def run_foolbox():
        robust = []
        for x, y in data.batches(BATCH):
            _, _, success = fb_attack(fmodel, x, y, epsilons=EPS)
            robust.append(~success)
        acc["foolbox"] = float(torch.cat(robust).float().mean())

    times = interleaved({"ours": run_ours, "foolbox": run_foolbox}, rounds=3, warmup=1)
    return {
        "ours_s": median(times["ours"]),
        "foolbox_s": median(times["foolbox"]),
        "speedup": median(times["foolbox"]) / median(times["ours"]),
        "ours_robust_accuracy": acc["ours"],
        "foolbox_robust_accuracy": acc["foolbox"],
    }


def main_apgd() -> None:
    """The APGD section alone. The model is trained briefly (one epoch on 5 000 images): a
    step's cost depends on the architecture and batch, not on the weights."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Recipe(epochs=1, eval_n=100)
        model = train("small-cnn", "fashion-mnist", recipe, tmp, train_n=5000, device="cpu").model
    model.eval()
    test = load_dataset("fashion-mnist", "test", n=BATCH, seed=0)
    record_apgd(model, test.images, test.labels)


def main() -> None:
    torch.manual_seed(0)
    model = trained_model()
    robust = trained_model(Recipe(method="fgsm-rs", eps=0.1, epochs=2, eval_n=500))
    test = load_dataset("fashion-mnist", "test", n=1000, seed=0)
    x, y = test.images[:BATCH], test.labels[:BATCH]
    step = step_overhead(model, x, y)
    fb = versus_foolbox(model, test)
    df = deepfool_vs_pgd({"natural": model, "FGSM-RS L∞ 0.1": robust}, test)
    rows = [
        ("bare forward+backward (input gradient), batch 256", f"{step['bare_ms']:.1f} ms", ""),
        (
            "one PGD step / bare fwd+bwd, evaluation path (no early exit)",
            f"{step['eval_step_ratio']:.3f} ×",
            "≤ 1.10 ×",
        ),
        (
            "one PGD step / bare fwd+bwd, training path",
            f"{step['train_step_ratio']:.3f} ×",
            "≤ 1.10 ×",
        ),
        (
            f"PGD-20 L∞ ε={EPS} evaluation of a natural model, 1 000 images: robustlens",
            f"{fb['ours_s']:.2f} s",
            "",
        ),
        ("same with Foolbox `LinfPGD` (same steps and step size)", f"{fb['foolbox_s']:.2f} s", ""),
        ("speed-up over Foolbox", f"{fb['speedup']:.1f} ×", "≥ 3 ×"),
        (
            "robust accuracy: robustlens / Foolbox",
            f"{fb['ours_robust_accuracy']:.3f} / {fb['foolbox_robust_accuracy']:.3f}",
            "within 0.005",
        ),
    ]
    for name, d in df.items():
        rows += [
            (
                f"DeepFool L2 (all classes, ≤ 50 it.) / PGD-20 L2 ε=1.5 with early exit, {name}, "
                "1 000 images",
                f"{d['ratio']:.2f} × ({d['deepfool_s']:.1f} s / {d['pgd_s']:.1f} s; "
                f"{d['deepfool_mean_iterations']:.1f} it., mean ‖δ‖₂ {d['deepfool_mean_l2']:.3f})",
                "≤ 3 ×",
            ),
            (
                f"same / PGD-20 run to all 20 steps, {name}",
                f"{d['ratio_full']:.2f} × (PGD-20 {d['pgd_full_s']:.1f} s)",
                "≤ 3 ×",
            ),
            (
                f"DeepFool, 5 most likely classes (`candidates=5`), {name}: vs early-exit / "
                "full PGD-20",
                f"{d['top5_ratio']:.2f} × / {d['top5_ratio_full']:.2f} × "
                f"({d['top5_mean_iterations']:.1f} it., mean ‖δ‖₂ {d['top5_mean_l2']:.3f}; "
                f"same norm as all classes on {100 * d['top5_same_class_share']:.1f} % of images)",
                "",
            ),
            (
                f"DeepFool with box-aware steps (opt-in), {name}: vs early-exit / full PGD-20",
                f"{d['boxed_ratio']:.2f} × / {d['boxed_ratio_full']:.2f} × "
                f"({d['boxed_mean_iterations']:.1f} it., mean ‖δ‖₂ {d['boxed_mean_l2']:.3f})",
                "",
            ),
        ]
    markdown = (
        f"## Attacks (small CNN, batch {BATCH})\n\n| measure | value | target |\n|---|---|---|\n"
    )
    markdown += "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    record("attacks", markdown, {**step, **fb, "deepfool": df})
    record_apgd(model, x, y)


if __name__ == "__main__":
    main_apgd() if sys.argv[1:] == ["apgd"] else main()
