"""GPU benchmarks of issue 18 §3: training throughput, PGD cost, evaluation and lens speed, MFU.

Run by ``scripts/device-check.sh`` (``python -m benchmarks.bench_gpu --out DIR``). Every section
writes its figures to ``DIR/bench_gpu.json`` as soon as it finishes, so a run cut short keeps
what it measured. Data are CIFAR-shaped (3 × 32 × 32, 10 classes) and generated, kept on the
device; Fashion-MNIST padded to 32 × 32 and repeated to 3 channels gives one accuracy figure.

Training runs through the library's own epoch (``robustlens.train.loop._Trainer.run_epoch``,
PGD/FGSM-RS from ``robustlens.attacks``). bf16 autocast and channels_last are not recipe options
(yet): this benchmark applies them around the library calls (``torch.autocast`` around the
epoch, the model and the resident images converted to channels_last). Without CUDA (or with
``--quick``) everything shrinks to seconds and the CUDA-only variants (bf16, channels_last) are
recorded as skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import interleaved, machine, median
from robustlens.attacks import PGD, Linf, robust_accuracy
from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.models import build_model
from robustlens.train.loop import _Trainer
from robustlens.train.recipe import Recipe

EPS = 8 / 255
FASHION_EPS = 0.1
BF16_MATMUL = 8192


# ------------------------------------------------------------------------------- settings


class Settings:
    """Sizes of every section: full on CUDA, seconds-long on the CPU or with ``--quick``."""

    def __init__(self, device: torch.device, quick: bool, budget_s: float) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.quick = quick or not self.cuda
        self.budget_s = budget_s
        self.start = time.perf_counter()
        q = self.quick
        self.batch = 8 if q else 512
        self.wrn_batch = 4 if q else 256
        self.timed_batches = 1 if q else 8
        self.pgd_timed_batches = 1 if q else 2
        self.matmul_n = 256 if q else BF16_MATMUL
        self.matmul_reps = 3 if q else 20
        self.prn_kwargs: dict[str, Any] = {"width": 2} if q else {}
        self.wrn_arch = "wrn" if q else "wrn-28-10"
        self.wrn_kwargs: dict[str, Any] = {"depth": 10, "widen_factor": 1} if q else {}
        self.eval_n = 16 if q else 1024
        self.eval_steps = 3 if q else 100
        self.lens_n = 16 if q else 2048
        self.fashion_train_n = 64 if q else None  # None: all 60 000
        self.fashion_test_n = 64 if q else None  # None: all 10 000
        self.fashion_robust_n = 16 if q else 1000

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def precisions(self) -> list[str]:
        return ["fp32", "bf16"] if self.cuda else ["fp32"]

    def layouts(self) -> list[bool]:
        return [False, True] if self.cuda else [False]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def forward_autocast(model: nn.Module, device: torch.device, precision: str):
    """Run ``model``'s forward passes (and only those) under ``autocast``, as PyTorch advises:
    with the whole training epoch inside autocast, the library's loop stopped learning in bf16
    (2026-12-04 on the H200: 8 % train accuracy against 73 % in fp32 after one epoch, while a
    plain loop with autocast around forward and loss learned in both)."""
    if precision != "bf16":
        yield
        return
    plain = model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        with autocast(device, precision):
            return plain(*args, **kwargs)

    model.forward = forward
    try:
        yield
    finally:
        del model.forward  # back to the class's forward


# ---------------------------------------------------------------------------------- data


def cifar_info(name: str = "cifar-shaped") -> DatasetInfo:
    return DatasetInfo(
        name=name,
        num_classes=10,
        class_names=tuple(f"c{i}" for i in range(10)),
        shape=(3, 32, 32),
        mean=(0.49, 0.48, 0.45),
        std=(0.25, 0.24, 0.26),
        splits=("train", "test"),
    )


def generated(n: int, device: torch.device, *, seed: int = 0, channels_last: bool = False):
    """``n`` CIFAR-shaped images with labels a network can learn (a class-dependent colour
    shift on noise), resident on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    noise = torch.rand(n, 3, 32, 32, generator=gen)
    tint = torch.linspace(0, 1, 10)[labels].view(n, 1, 1, 1)
    images = (0.6 * noise + 0.4 * tint).clamp(0, 1).to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return ImageSet(images, labels.to(device), cifar_info(), "train", torch.arange(n))


# ------------------------------------------------------------------------------- FLOPs


def forward_flops(model: nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """Forward FLOPs of one image: 2 × the multiply–accumulates of every conv and linear layer
    (BatchNorm, activations and pooling are left out: a few per cent of a ResNet's work)."""
    macs = [0]

    def conv_hook(module: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        macs[0] += out[0].numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        macs[0] += out[0].numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model.eval()(torch.rand(1, *shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return 2.0 * macs[0]


def training_flops(forward: float, method: str) -> float:
    """FLOPs per training image: a weight update ≈ 3 forwards (forward, and a backward of
    twice its cost); each attack step ≈ 2 forwards (forward and an input-gradient backward,
    which skips the weight gradients)."""
    attack_steps = {"natural": 0, "fgsm-rs": 1, "pgd-10": 10}[method]
    return forward * (3 + 2 * attack_steps)


# -------------------------------------------------------------------------------- sections


def section_matmul(s: Settings) -> dict[str, Any]:
    """Measured bf16 matrix-multiply rate (the MFU denominator)."""
    n = s.matmul_n
    dtype = torch.bfloat16 if s.cuda else torch.float32
    a = torch.randn(n, n, device=s.device, dtype=dtype)
    b = torch.randn(n, n, device=s.device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(s.device)
    t = time.perf_counter()
    for _ in range(s.matmul_reps):
        a @ b
    sync(s.device)
    seconds = (time.perf_counter() - t) / s.matmul_reps
    return {"n": n, "dtype": str(dtype), "reps": s.matmul_reps, "tflops": 2 * n**3 / seconds / 1e12}


def _recipe(method: str, batch: int) -> Recipe:
    if method == "natural":
        return Recipe(epochs=1, batch_size=batch, schedule="constant", lr=0.05)
    if method == "fgsm-rs":
        return Recipe(
            method="fgsm-rs", eps=EPS, epochs=1, batch_size=batch, schedule="constant", lr=0.05
        )
    return Recipe(
        method="pgd",
        eps=EPS,
        steps=10,
        step_size=2 / 255,
        epochs=1,
        batch_size=batch,
        schedule="constant",
        lr=0.05,
    )


def time_epoch(
    model: nn.Module,
    data: ImageSet,
    warm: ImageSet,
    method: str,
    precision: str,
    device: torch.device,
    folder: Path,
) -> float:
    """Seconds of one library training epoch over ``data`` (after one over ``warm``)."""
    recipe = _recipe(method, warm.images.shape[0])
    for which in (warm, data):
        trainer = _Trainer(model, which, recipe, folder, None, device, False)
        sync(device)
        t = time.perf_counter()
        with forward_autocast(trainer.model, device, precision):
            trainer.run_epoch()
        sync(device)
        seconds = time.perf_counter() - t
    return seconds


def training_grid(
    s: Settings,
    arch: str,
    kwargs: dict[str, Any],
    batch: int,
    configs: list[tuple[str, str, bool]],
    matmul_tflops: float | None,
    emit: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Throughput (images/s) of each (method, precision, channels_last) configuration."""
    out: dict[str, Any] = {"arch": arch, "arch_kwargs": kwargs, "batch": batch, "runs": []}
    torch.manual_seed(0)
    base = build_model(arch, cifar_info(), allow_large=True, **kwargs).to(s.device)
    fwd = forward_flops(base, (3, 32, 32), s.device)
    out["forward_gflops_per_image"] = fwd / 1e9
    state = {k: v.clone() for k, v in base.state_dict().items()}
    sets: dict[tuple[bool, int], tuple[ImageSet, ImageSet]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method, precision, channels_last in configs:
            if s.left() < 20:
                out["runs"].append(
                    {
                        "method": method,
                        "precision": precision,
                        "channels_last": channels_last,
                        "skipped": "time budget",
                    }
                )
                continue
            n_batches = s.pgd_timed_batches if method == "pgd-10" else s.timed_batches
            key = (channels_last, n_batches)
            if key not in sets:
                sets[key] = (
                    generated(n_batches * batch, s.device, seed=1, channels_last=channels_last),
                    generated(batch, s.device, seed=2, channels_last=channels_last),
                )
            data, warm = sets[key]
            base.load_state_dict(state)
            model = base.to(
                memory_format=torch.channels_last if channels_last else torch.contiguous_format
            )
            try:
                seconds = time_epoch(model, data, warm, method, precision, s.device, Path(tmp))
            except Exception as exc:  # e.g. out of memory: keep the grid's other figures
                traceback.print_exc()
                out["runs"].append(
                    {
                        "method": method,
                        "precision": precision,
                        "channels_last": channels_last,
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                )
                if s.cuda:
                    torch.cuda.empty_cache()
                emit(out)
                continue
            ips = len(data) / seconds
            run = {
                "method": method,
                "precision": precision,
                "channels_last": channels_last,
                "images": len(data),
                "seconds": seconds,
                "images_per_s": ips,
                "tflops": ips * training_flops(fwd, method) / 1e12,
            }
            if matmul_tflops:
                run["mfu"] = run["tflops"] / matmul_tflops
            out["runs"].append(run)
            emit(out)
    return out


def epoch_estimates(grid: dict[str, Any]) -> dict[str, Any]:
    """A 50 000-image FGSM-RS epoch and FGSM-RS ÷ natural, from the fastest layout in bf16
    (fp32 where bf16 was not run)."""
    runs = [r for r in grid["runs"] if "images_per_s" in r]
    out: dict[str, Any] = {}
    for precision in ("bf16", "fp32"):
        best = {}
        for m in ("natural", "fgsm-rs"):
            rates = [
                r["images_per_s"] for r in runs if r["method"] == m and r["precision"] == precision
            ]
            if rates:
                best[m] = max(rates)
        if len(best) == 2:
            out = {
                "precision": precision,
                "fgsm_rs_epoch_50k_s": 50_000 / best["fgsm-rs"],
                "natural_epoch_50k_s": 50_000 / best["natural"],
                "fgsm_rs_over_natural": best["natural"] / best["fgsm-rs"],
            }
            break
    return out


def section_step_ratio(s: Settings, precision: str) -> dict[str, Any]:
    """One PGD step ÷ one bare forward + input-gradient backward (interleaved, as in
    bench_attacks), PreActResNet-18, batch ``s.batch``."""
    torch.manual_seed(0)
    model = build_model("preact-resnet18", cifar_info(), **s.prn_kwargs).to(s.device).eval()
    data = generated(s.batch, s.device, seed=3)
    x, y = data.images, data.labels
    steps = 10

    def bare() -> None:
        with autocast(s.device, precision):
            xr = x.clone().requires_grad_(True)
            loss = F.cross_entropy(model(xr), y, reduction="none").sum()
            torch.autograd.grad(loss, xr)
        sync(s.device)

    evaluation = PGD(model, Linf(EPS), steps=steps, early_stop=False)
    training = PGD(model, Linf(EPS), steps=steps, early_stop=False, track_best=False)

    def run(fn: Callable[[], Any]) -> Callable[[], None]:
        def go() -> None:
            with autocast(s.device, precision):
                fn()
            sync(s.device)

        return go

    times = interleaved(
        {
            "bare": bare,
            "eval": run(lambda: evaluation.run(x, y)),
            "train": run(lambda: training.perturb(x, y)),
        },
        rounds=2 if s.quick else 10,
    )
    base = median(times["bare"])
    return {
        "precision": precision,
        "batch": s.batch,
        "bare_ms": base * 1e3,
        "eval_step_ratio": median(times["eval"]) / steps / base,
        "train_step_ratio": median(times["train"]) / steps / base,
    }


def section_pgd_eval(s: Settings) -> dict[str, Any]:
    """PGD-``eval_steps`` robust-accuracy evaluation (fp32, every image all steps: no early
    exit) of PreActResNet-18 through ``robust_accuracy``."""
    torch.manual_seed(0)
    model = build_model("preact-resnet18", cifar_info(), **s.prn_kwargs).to(s.device).eval()
    data = generated(s.eval_n, s.device, seed=4)
    attack = PGD(model, Linf(EPS), steps=s.eval_steps, early_stop=False)
    warm = generated(min(s.batch, s.eval_n), s.device, seed=5)
    robust_accuracy(model, (warm.images, warm.labels), attack, batch_size=s.batch)
    sync(s.device)
    t = time.perf_counter()
    result = robust_accuracy(model, (data.images, data.labels), attack, batch_size=s.batch)
    sync(s.device)
    seconds = time.perf_counter() - t
    return {
        "steps": s.eval_steps,
        "images": s.eval_n,
        "batch": s.batch,
        "seconds": seconds,
        "images_per_s": s.eval_n / seconds,
        "robust_accuracy": result.robust_accuracy,
    }


def section_lens(s: Settings) -> dict[str, Any]:
    """The activations lens on PreActResNet-18 (fp32), against a bare forward pass."""
    from robustlens.lenses import LENSES, LensContext, StudyModel
    from robustlens.models import ModelCard

    torch.manual_seed(0)
    model = build_model("preact-resnet18", cifar_info(), **s.prn_kwargs).to(s.device).eval()
    data = generated(s.lens_n, s.device, seed=6)
    cpu_data = ImageSet(data.images.cpu(), data.labels.cpu(), data.info, "test", data.indices)
    card = ModelCard.for_model(model, recipe={"method": "natural"})
    study_model = StudyModel("natural", model, card, "bench")
    ctx = LensContext(cpu_data.info, 0, s.device, lambda split, n: cpu_data)
    spec = LENSES.get("activations")
    batch = min(256, s.lens_n)
    params = spec.resolve_params(cpu_data.info, {"batch_size": batch}, "bench")

    def bare() -> None:
        with torch.no_grad():
            for x, _ in cpu_data.batches(batch, device=s.device):
                model(x)
        sync(s.device)

    def lens() -> None:
        spec.compute(study_model, cpu_data, params, ctx)
        sync(s.device)

    times = interleaved({"forward": bare, "lens": lens}, rounds=1 if s.quick else 3, warmup=1)
    return {
        "images": s.lens_n,
        "batch": batch,
        "lens_images_per_s": s.lens_n / median(times["lens"]),
        "forward_images_per_s": s.lens_n / median(times["forward"]),
        "lens_over_forward_throughput": median(times["forward"]) / median(times["lens"]),
    }


def fashion_32x3(split: str, n: int | None, device: torch.device) -> ImageSet:
    """Fashion-MNIST padded to 32 × 32 and repeated to 3 channels, on ``device``."""
    from robustlens.data import load_dataset

    raw = load_dataset("fashion-mnist", split, n=n, seed=0, download=False)
    images = F.pad(raw.images, (2, 2, 2, 2)).repeat(1, 3, 1, 1).to(device)
    info = DatasetInfo(
        name="fashion-mnist-32x3",
        num_classes=10,
        class_names=raw.info.class_names,
        shape=(3, 32, 32),
        mean=(raw.info.mean[0],) * 3,
        std=(raw.info.std[0],) * 3,
        splits=("train", "test"),
    )
    return ImageSet(images, raw.labels.to(device), info, split, raw.indices)


def nonfinite(model: nn.Module) -> dict[str, Any]:
    """The parameters and buffers of ``model`` that hold NaN or infinite values."""
    named = list(model.named_parameters()) + list(model.named_buffers())
    bad = [n for n, t in named if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    return {"nonfinite": bad[:8], "nonfinite_count": len(bad)}


def train_fashion(
    s: Settings,
    train: ImageSet,
    method: str,
    epochs: int,
    channels_last: bool,
    precision: str | None = None,
) -> tuple[nn.Module, float]:
    torch.manual_seed(0)
    model = build_model("preact-resnet18", train.info, **s.prn_kwargs).to(s.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    extra = {"method": "fgsm-rs", "eps": FASHION_EPS} if method == "fgsm-rs" else {}
    recipe = Recipe(
        epochs=epochs,
        batch_size=s.batch,
        lr=0.2 if not s.quick else 0.05,
        weight_decay=5e-4,
        schedule="one-cycle",
        warmup_fraction=0.2,
        augment="crop-flip",
        **extra,
    )
    precision = precision or ("bf16" if s.cuda else "fp32")
    sync(s.device)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _Trainer(model, train, recipe, Path(tmp), None, s.device, False)
        with forward_autocast(trainer.model, s.device, precision):
            while trainer.epoch < recipe.epochs:
                trainer.history.append(trainer.run_epoch())
                trainer.epoch += 1
    sync(s.device)
    return trainer.model.eval(), time.perf_counter() - t


def section_fashion(
    s: Settings, natural_ips: float | None, emit: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """PreActResNet-18 on Fashion-MNIST 32 × 32 × 3 (bf16 on CUDA): natural training, clean
    accuracy on the test images; then FGSM-RS ε = 0.1 with PGD-10 robust accuracy when the
    time budget allows. Epochs are sized from the measured natural throughput."""
    from robustlens.attacks.evaluate import predict

    train = fashion_32x3("train", s.fashion_train_n, s.device)
    test = fashion_32x3("test", s.fashion_test_n, s.device)
    channels_last = s.cuda
    if channels_last:
        train.images = train.images.contiguous(memory_format=torch.channels_last)
    if s.quick or not natural_ips:
        epochs = 1
    else:  # about 40 s of natural training (crop-flip augmentation costs a little more)
        budget = min(40.0, max(10.0, s.left() - 60))
        epochs = max(2, min(15, math.floor(budget * natural_ips / len(train))))
    out: dict[str, Any] = {"train_images": len(train), "test_images": len(test)}
    model, seconds = train_fashion(s, train, "natural", epochs, channels_last)
    out["natural"] = {"epochs": epochs, "seconds": seconds, **nonfinite(model)}
    emit(out)
    if out["natural"]["nonfinite"]:
        # the bf16 + channels_last model is not finite: say where, and train again in fp32
        # (no channels_last) so that the accuracy figure still exists
        out["natural"]["precision"] = "bf16, channels_last: not finite"
        model, seconds = train_fashion(s, train, "natural", epochs, False, precision="fp32")
        out["natural_fp32"] = {"epochs": epochs, "seconds": seconds, **nonfinite(model)}
        emit(out)
    acc = float((predict(model, test.images, 1000) == test.labels).float().mean())
    out["natural" if "natural_fp32" not in out else "natural_fp32"]["clean_accuracy"] = acc
    emit(out)
    per_epoch = seconds / epochs
    fgsm_epochs = epochs if s.quick else max(1, min(epochs, math.floor(35 / (2.2 * per_epoch))))
    if s.left() < 2.5 * per_epoch * fgsm_epochs + 15:
        out["fgsm_rs"] = {"skipped": "time budget"}
        return out
    fallback = "natural_fp32" in out  # then FGSM-RS trains in fp32 too
    model, seconds = train_fashion(
        s,
        train,
        "fgsm-rs",
        fgsm_epochs,
        channels_last and not fallback,
        precision="fp32" if fallback else None,
    )
    sub = test.subset(s.fashion_robust_n, seed=0)
    attack = PGD(model, Linf(FASHION_EPS), steps=10)
    result = robust_accuracy(model, (sub.images, sub.labels), attack, batch_size=500)
    acc = float((predict(model, test.images, 1000) == test.labels).float().mean())
    out["fgsm_rs"] = {
        "eps": FASHION_EPS,
        "epochs": fgsm_epochs,
        "seconds": seconds,
        "clean_accuracy": acc,
        "pgd10_robust_accuracy": result.robust_accuracy,
        "precision": "fp32" if fallback else ("bf16" if s.cuda else "fp32"),
        **nonfinite(model),
        "robust_images": len(sub),
    }
    return out


# ------------------------------------------------------------------------------------ run


class Recorder:
    """bench_gpu.json, rewritten atomically after every change."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {"meta": meta, "sections": {}}
        self.write()

    def write(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def section(self, name: str, status: str, **fields: Any) -> None:
        self.data["sections"][name] = {"status": status, **fields}
        self.write()

    def run(self, name: str, s: Settings, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one section, recording its result, its error or its skip; never raises."""
        if s.left() < 10:
            self.section(name, "skipped", reason="time budget spent")
            return None
        print(f"[bench_gpu] {name} …", flush=True)
        t = time.perf_counter()

        def emit(partial: dict[str, Any]) -> None:
            self.section(name, "running", results=partial, seconds=time.perf_counter() - t)

        try:
            takes_emit = "emit" in fn.__code__.co_varnames[: fn.__code__.co_argcount]
            result = fn(s, *args, emit) if takes_emit else fn(s, *args)
        except Exception as exc:  # one failing section must not cost the others
            traceback.print_exc()
            self.section(
                name, "error", error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t
            )
            return None
        self.section(name, "ok", results=result, seconds=time.perf_counter() - t)
        print(f"[bench_gpu] {name}: {json.dumps(result, default=str)[:400]}", flush=True)
        return result


def grid_configs(s: Settings, wide: bool) -> list[tuple[str, str, bool]]:
    if wide:  # WRN-28-10: natural and FGSM-RS, fp32 and bf16 + channels_last
        pairs = [("fp32", False), ("bf16", True)] if s.cuda else [("fp32", False)]
        return [(m, p, c) for m in ("natural", "fgsm-rs") for p, c in pairs]
    return [
        (m, p, c)
        for m in ("natural", "fgsm-rs", "pgd-10")
        for p in s.precisions()
        for c in s.layouts()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="seconds-long sizes")
    parser.add_argument("--budget", type=float, default=170.0, help="seconds for all sections")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if any)")
    parser.add_argument("--only", default=None, help="run this one section (fashion_mnist)")
    parser.add_argument(
        "--natural-ips", type=float, default=None, help="with --only: natural images/s measured"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    s = Settings(device, args.quick or os.environ.get("DEVICE_CHECK_QUICK") == "1", args.budget)
    if s.cuda:
        torch.backends.cudnn.benchmark = True
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": machine(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if s.cuda else None,
        "torch": torch.__version__,
        "quick": s.quick,
        "budget_s": s.budget_s,
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cuda_only_skipped": None if s.cuda else "bf16 autocast and channels_last (no CUDA)",
    }
    rec = Recorder(args.out / "bench_gpu.json", meta)
    if args.only == "fashion_mnist":
        rec.run("fashion_mnist", s, section_fashion, args.natural_ips)
        return 0 if rec.data["sections"]["fashion_mnist"]["status"] == "ok" else 1
    mm = rec.run("matmul", s, section_matmul)
    tflops = mm["tflops"] if mm else None
    prn = rec.run(
        "train_preact_resnet18",
        s,
        training_grid,
        "preact-resnet18",
        s.prn_kwargs,
        s.batch,
        grid_configs(s, wide=False),
        tflops,
    )
    if prn:
        rec.section("epoch_estimates", "ok", results=epoch_estimates(prn))
    rec.run(
        "train_wrn_28_10",
        s,
        training_grid,
        s.wrn_arch,
        s.wrn_kwargs,
        s.wrn_batch,
        grid_configs(s, wide=True),
        tflops,
    )
    rec.run("pgd_step_ratio_fp32", s, section_step_ratio, "fp32")
    if s.cuda:
        rec.run("pgd_step_ratio_bf16", s, section_step_ratio, "bf16")
    rec.run("pgd_eval", s, section_pgd_eval)
    rec.run("activations_lens", s, section_lens)
    natural_ips = None
    if prn:
        rates = [
            r["images_per_s"]
            for r in prn["runs"]
            if r.get("method") == "natural" and "images_per_s" in r
        ]
        natural_ips = max(rates) if rates else None
    rec.run("fashion_mnist", s, section_fashion, natural_ips)
    failed = [k for k, v in rec.data["sections"].items() if v["status"] == "error"]
    print(f"[bench_gpu] done in {time.perf_counter() - s.start:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
