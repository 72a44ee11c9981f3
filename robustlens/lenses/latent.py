"""Retraining the linear head on natural data (Carletti et al. 2022, §3.3, §4.3, Tables 1–2).

The feature extractor f is frozen; the head g is re-initialised and retrained on natural
training images (15 epochs by default). Since f is frozen (BatchNorm in eval mode), the
training features are computed once. Natural and robust accuracy (PGD-20 at ε_te = ε_tr) are
measured with the original and the retrained head on the same evaluation images.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robustlens.attacks import PGD, robust_accuracy, threat_model
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.output import interval_columns, palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import CARLETTI
from robustlens.params import Interval
from robustlens.plotting import new_figure
from robustlens.proportions import mcnemar

# Names of the per-image correctness arrays the claims read.
NATURAL, ROBUST = "natural", "robust"
"""Correct on clean images; correct under the model's own PGD (robust models only)."""
ORIGINAL, RETRAINED = "original", "retrained"
"""The model's own head; the head retrained on natural data."""


def correct_name(kind: str, head: str) -> str:
    """The name of the per-image correctness ``kind`` (``NATURAL``/``ROBUST``) of ``head``."""
    return f"{kind}/{head}"


@dataclass(frozen=True)
class LatentParams(LensParams):
    """§4.3: 15 epochs of head retraining; PGD-20 at ε_te = ε_tr (step 2.5·ε/20 by default;
    the paper used step 1 for its L2 models with ε up to 4 on CIFAR)."""

    epochs: int = field(default=15, metadata=rule(Interval(int, 1, None)))
    lr: float = field(default=0.1, metadata=rule(Interval(float, 0, None, closed="right")))
    batch_size: int = field(default=256, metadata=rule(Interval(int, 1, None)))
    weight_decay: float = 5e-4
    train_n: int | None = None
    attack_steps: int = field(default=20, metadata=rule(Interval(int, 1, None)))
    attack_step_size: float | None = None


def extract_features(net: nn.Module, data: ImageSet, batch_size: int, device) -> torch.Tensor:
    """Penultimate representations f(x) of every image (model in eval mode)."""
    out = []
    with torch.no_grad():
        for x, _ in data.batches(batch_size, device=device):
            out.append(net.features(x).cpu())
    return torch.cat(out)


def retrain_head(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    params: LatentParams,
    seed: int,
) -> nn.Linear:
    """A freshly initialised linear head trained by SGD (cosine schedule) on fixed features."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = nn.Linear(features.shape[1], num_classes)
    opt = torch.optim.SGD(
        head.parameters(), lr=params.lr, momentum=0.9, weight_decay=params.weight_decay
    )
    n = features.shape[0]
    steps = params.epochs * math.ceil(n / params.batch_size)
    step = 0
    for _ in range(params.epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, params.batch_size):
            idx = order[i : i + params.batch_size]
            for group in opt.param_groups:
                group["lr"] = params.lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = F.cross_entropy(head(features[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return head


def compute(
    model: StudyModel, data: ImageSet, params: LatentParams, ctx: LensContext
) -> LensResult:
    net = model.model
    train = ctx.load_split("train", params.train_n)
    feats = extract_features(net, train, 500, ctx.device)
    head = retrain_head(feats, train.labels, net.num_classes, params, ctx.seed)
    retrained = copy.deepcopy(net)
    retrained.head.load_state_dict({k: v.to(ctx.device) for k, v in head.state_dict().items()})
    retrained.eval()

    rows, arrays = [], {}
    eps = model.train_eps
    for setting, m in ((ORIGINAL, net), (RETRAINED, retrained)):
        with torch.no_grad():
            correct = []
            for x, y in data.batches(500, device=ctx.device):
                correct.append((m(x).argmax(1) == y).cpu())
        clean = torch.cat(correct).numpy()
        arrays[correct_name(NATURAL, setting)] = clean
        rows.append(
            {
                "model": model.name,
                "layer": "head",
                "setting": setting,
                "metric": "natural_accuracy",
                "value": float(clean.mean()),
                "n": len(clean),
                **interval_columns(clean),
            }
        )
        if model.is_robust:
            attack = PGD(
                m,
                threat_model(model.train_norm, eps),
                steps=params.attack_steps,
                step_size=params.attack_step_size,
                seed=ctx.seed,
            )
            result = robust_accuracy(m, data, attack)
            arrays[correct_name(ROBUST, setting)] = result.robust.numpy()
            rows.append(
                {
                    "model": model.name,
                    "layer": "head",
                    "setting": setting,
                    "metric": "robust_accuracy",
                    "value": result.robust_accuracy,
                    "n": result.n,
                    **result.robust_proportion.columns(),
                    "eps": eps,
                    "norm": model.train_norm,
                }
            )
    notes = []
    if not model.is_robust:
        notes.append(
            f"{model.name} is not adversarially trained: robust accuracy needs a training ε, so "
            "only "
            "natural accuracy is compared"
        )
    frame = tidy(rows)
    for metric, kind in (("natural_accuracy", NATURAL), ("robust_accuracy", ROBUST)):
        part = frame[frame.metric == metric].set_index("setting")
        if {"original", "retrained"} <= set(part.index):
            delta = float(part.loc["retrained", "value"] - part.loc["original", "value"])
            # the two heads saw the same images: McNemar's paired test, not two intervals
            test = mcnemar(
                arrays[correct_name(kind, RETRAINED)], arrays[correct_name(kind, ORIGINAL)]
            )
            rows.append(
                {
                    "model": model.name,
                    "layer": "head",
                    "setting": "retrained - original",
                    "metric": metric,
                    "value": delta,
                    "n": len(data),
                    "p_value": test.p_value,
                    "test": f"McNemar ({test.method}; {test.only_a} vs {test.only_b} images)",
                }
            )
    arrays["train_eps"] = np.array([eps])
    return LensResult(tables={"latent": tidy(rows)}, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: LatentParams, arrays=None) -> dict:
    frame = tables["latent"]
    colors = palette(models)
    fig, axes = new_figure(ncols=2)
    for ax, metric in zip(axes, ("natural_accuracy", "robust_accuracy"), strict=True):
        names, before, after, cols = [], [], [], []
        for m in models:
            part = frame[(frame.model == m.name) & (frame.metric == metric)].set_index("setting")
            if {"original", "retrained"} <= set(part.index):
                names.append(m.name)
                before.append(part.loc["original", "value"])
                after.append(part.loc["retrained", "value"])
                cols.append(colors[m.name])
        x = np.arange(len(names))
        ax.bar(x - 0.2, before, 0.4, color=cols, alpha=0.45, label="original head g")
        ax.bar(x + 0.2, after, 0.4, color=cols, label="retrained head g̃")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(metric.replace("_", " "))
        ax.set_xlabel("model")
        ax.set_ylabel("accuracy (fraction of images)")
        ax.legend(fontsize="small")
    return {"Natural and robust accuracy before and after retraining the head (Tables 1–2)": fig}


SPEC = register_lens(
    LensSpec(
        name="latent",
        title="Retraining the linear head on natural data",
        paper=CARLETTI.label,
        section="§3.3, §4.3, Tables 1–2",
        description=(
            "The feature extractor f is kept; the linear head g is re-initialised and retrained "
            "on natural training images. Natural accuracy and robust accuracy (PGD at the "
            "model's training ε and norm) with the original and the retrained head."
        ),
        params=LatentParams,
        compute=compute,
        plot=plot,
        version=2,  # accuracies carry their 95 % Wilson interval (ci_low, ci_high)
    )
)
