"""Robust and natural features combined (Itazuri et al. 2019, §4.2, Fig. 7).

Every model of the study is a frozen feature extractor (its penultimate representation f).
Late fusion concatenates the features of two extractors and trains a new linear classifier on
a target data set; single extractors get the same treatment. Pairs are labelled STD+ADV,
STD+STD or ADV+ADV by how their members were trained. The paper trains the fused layer for 30
epochs with SGD; here the linear classifier is a multinomial logistic regression on
standardised features (the same model class, fitted to convergence), so results do not depend
on a learning-rate schedule.

Targets of different resolutions that work offline: ``digits`` (scikit-learn's 8 × 8 digits,
resized to the models' input), ``lowres-<px>`` (the study's own data set shrunk to px × px and
resized back, e.g. ``lowres-14``), or the name of any registered data set the user has.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from robustlens.data import load_dataset
from robustlens.data.imageset import ImageSet
from robustlens.data.probes import resize
from robustlens.errors import ConfigError, RobustlensError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import representations, subset
from robustlens.lenses.output import interval_columns, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import ITAZURI
from robustlens.params import Interval, ListOf, Satisfies
from robustlens.plotting import new_figure

# Names of the per-image arrays the claims read.


def members_name(names: list[str]) -> str:
    """The name of a feature extractor or a fusion of several: "natural+linf"."""
    return "+".join(names)


def correct_name(target: str, members: str) -> str:
    """[N_target] whether the probe on ``members``' features is correct on ``target``."""
    return f"correct/{target}/{members}"


def target_of(name: str) -> str | None:
    """The target data set of a :func:`correct_name`, or None for any other array."""
    kind, _, rest = name.partition("/")
    target, _, members = rest.partition("/")
    return target if kind == "correct" and target and members else None


KINDS = ("STD", "ADV", "STD+STD", "ADV+ADV", "STD+ADV")


def _lowres_ok(target: str) -> bool:
    """True unless ``target`` is a ``lowres-<pixels>`` target without whole pixels ≥ 2."""
    if not target.startswith("lowres-"):
        return True
    size = target.split("-", 1)[1]
    return size.isdigit() and int(size) >= 2


@dataclass(frozen=True)
class EnsembleParams(LensParams):
    targets: tuple[str, ...] = field(
        default=("digits", "lowres-14", "lowres-7"),
        metadata=rule(
            ListOf(
                Satisfies(
                    lambda t: isinstance(t, str) and _lowres_ok(t),
                    "a data set name or lowres-<pixels> with pixels ≥ 2",
                ),
                min_len=1,
            ),
            hint='e.g. targets = ["digits", "lowres-14"]',
        ),
    )
    train_n: int = field(default=2000, metadata=rule(Interval(int, 10, None)))
    test_n: int = field(default=1000, metadata=rule(Interval(int, 10, None)))
    regularization: float = field(
        default=1.0, metadata=rule(Interval(float, 0, None, closed="right"))
    )
    """Inverse L2 strength C of the logistic regression (scikit-learn's convention)."""


def kind(members: tuple[StudyModel, ...]) -> str:
    tags = ["STD" if m.is_natural else ("ADV" if m.is_robust else "CON") for m in members]
    if len(tags) == 1:
        return tags[0]
    if sorted(tags) == ["ADV", "STD"]:
        return "STD+ADV"
    return "+".join(sorted(tags, key=["STD", "ADV", "CON"].index))


def fit_to_models(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images moved to the models' channels and size (grey ↔ RGB by repetition / mean)."""
    c, h, w = shape
    if images.shape[1] != c:
        if images.shape[1] == 1:
            images = images.repeat(1, c, 1, 1)
        elif c == 1:
            images = images.mean(dim=1, keepdim=True)
        else:
            raise ConfigError(f"cannot feed {images.shape[1]}-channel images to {c}-channel models")
    if tuple(images.shape[2:]) != (h, w):
        images = resize(images, (h, w))
    return images


def target_sets(
    target: str, data: ImageSet, params: EnsembleParams, ctx: LensContext
) -> tuple[ImageSet, ImageSet]:
    """(train, test) images of a target at the models' input shape."""
    shape = ctx.info.shape
    if target.startswith("lowres-"):
        px = int(target.split("-", 1)[1])
        train, test = ctx.load_split("train", params.train_n), subset(data, params.test_n)

        def shrink(s: ImageSet) -> ImageSet:
            small = resize(s.images, (px, px))
            return ImageSet(resize(small, shape[1:]), s.labels, s.info, s.split, s.indices)

        return shrink(train), shrink(test)

    try:
        train = load_dataset(target, "train", n=params.train_n, seed=ctx.seed)
        test = load_dataset(target, "test", n=params.test_n, seed=ctx.seed)
    except RobustlensError as exc:
        raise ConfigError(
            f"ensemble target {target!r}: {exc.problem}",
            fix=exc.fix or "use 'digits', 'lowres-<px>' or a data set with train and test splits",
        ) from exc

    def fit(s: ImageSet) -> ImageSet:
        return ImageSet(fit_to_models(s.images, shape), s.labels, s.info, s.split, s.indices)

    return fit(train), fit(test)


def linear_probe(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray, c: float
) -> np.ndarray:
    """Per test image, whether a logistic regression on standardised features is right."""
    scaler = StandardScaler().fit(train)
    # tol 1e-3: on the quickstart's features 3x fewer iterations than the default 1e-4, and
    # test accuracy within 0.01 of the tighter fit
    clf = LogisticRegression(C=c, max_iter=2000, tol=1e-3)
    clf.fit(scaler.transform(train), y_train)
    return clf.predict(scaler.transform(test)) == y_test


def compute(
    models: list[StudyModel], data: ImageSet, params: EnsembleParams, ctx: LensContext
) -> LensResult:
    rows, arrays, notes = [], {}, []
    combos = [(m,) for m in models] + list(itertools.combinations(models, 2))
    kinds = {kind(c) for c in combos}
    missing = [k for k in KINDS if k not in kinds]
    if missing:
        notes.append(f"no {', '.join(missing)} combination: the study lacks the models for it")
    for target in params.targets:
        train, test = target_sets(target, data, params, ctx)
        feats = {
            m.name: (
                representations(m, train.images, ctx.device),
                representations(m, test.images, ctx.device),
            )
            for m in models
        }
        for combo in combos:
            name = members_name([m.name for m in combo])
            tr = np.concatenate([feats[m.name][0] for m in combo], axis=1)
            te = np.concatenate([feats[m.name][1] for m in combo], axis=1)
            correct = linear_probe(
                tr, train.labels.numpy(), te, test.labels.numpy(), params.regularization
            )
            arrays[correct_name(target, name)] = correct
            rows.append(
                {
                    "model": name,
                    "setting": target,
                    "metric": "accuracy",
                    "value": float(correct.mean()),
                    "kind": kind(combo),
                    "members": len(combo),
                    "n_train": len(train),
                    "n": len(test),
                    **interval_columns(correct),
                }
            )
    return LensResult(tables={"ensemble": tidy(rows)}, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: EnsembleParams, arrays=None) -> dict:
    frame = tables["ensemble"]
    targets = list(dict.fromkeys(frame.setting))
    colors = {"STD": "0.3", "ADV": "tab:red", "STD+STD": "0.6", "ADV+ADV": "tab:orange",
              "STD+ADV": "tab:blue"}  # fmt: skip
    fig, axes = new_figure(1, len(targets), figsize=(4.2 * len(targets), 3.6))
    axes = np.atleast_1d(axes)
    for ax, target in zip(axes, targets, strict=True):
        part = frame[frame.setting == target]
        for i, k in enumerate(KINDS):
            values = part[part.kind == k].value.to_numpy()
            if values.size:
                jitter = np.linspace(-0.15, 0.15, values.size) if values.size > 1 else [0.0]
                ax.scatter(i + np.asarray(jitter), values, color=colors[k], s=18)
                ax.hlines(values.max(), i - 0.25, i + 0.25, color=colors[k], lw=1.5)
        ax.set_xticks(range(len(KINDS)), KINDS, fontsize="x-small")
        ax.set_title(target, fontsize="small")
        ax.set_xlabel("extractors (STD natural, ADV robust)")
        ax.set_ylabel("accuracy of a linear classifier\non frozen features (fraction)")
    return {"Late fusion of frozen extractors by kind and target (Fig. 7)": fig}


SPEC = register_lens(
    LensSpec(
        name="ensemble",
        title="Late fusion of robust and natural feature extractors",
        paper=ITAZURI.label,
        section="§4.2, Fig. 7",
        description=(
            "Every model and every pair of models as frozen feature extractors: features "
            "concatenated, a new linear classifier (logistic regression) trained on each target "
            "data set — scikit-learn's digits and the study's data shrunk to lower resolutions "
            "by default — and the accuracy per target and combination (STD, ADV, STD+STD, "
            "ADV+ADV, STD+ADV)."
        ),
        params=EnsembleParams,
        compute=compute,
        plot=plot,
        scope="study",
        version=2,  # accuracies carry their 95 % Wilson interval (ci_low, ci_high)
    )
)
