"""Claims read the arrays lenses write, by the names the lens modules export.

Every lens a claim needs runs on tiny models (a few images, one attack step), and each claim's
check runs on the results through a view that records every array it asks for: it must ask
only for arrays the lens wrote, and for at least one of each lens it needs. A lens that renames
an array it writes (or a claim that spells a name by hand) fails here, not in a report.
The lens-side tests check the exported names and parsers against what each lens writes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from robustlens.claims import CLAIMS, ResultsView
from robustlens.lenses import (
    LENSES,
    activations,
    attack_grid,
    boundary,
    color,
    ensemble,
    filters,
    latent,
    loss_dist,
    norm_ratio,
    probes,
    saliency,
    similarity,
    transfer,
    universality,
)
from robustlens.lenses.base import LensResult, StudyModel
from robustlens.lenses.common import attack_array, attack_keys
from robustlens.models import build_model
from tests.lenses.helpers import make_images, make_info, run_lens_like_a_study, small_cnn
from tests.lenses.helpers import study_model as wrap

INFO = make_info((1, 12, 12), num_classes=3)
N = 12


def _model(name: str, seed: int, recipe: dict | None = None, train_on: dict | None = None):
    m = wrap(small_cnn(INFO, seed=seed), name, recipe or {"method": "natural"})
    if train_on is not None:
        m.card.source = {"train_on": train_on}
    return m


def _pgd(norm: str, eps: float) -> dict:
    return {"method": "pgd", "norm": norm, "eps": eps}


def _models() -> dict[str, StudyModel]:
    victim = build_model("mlp", INFO, hidden=(8,)).eval()
    found = [
        _model("natural", 0),
        _model("natural2", 1),
        _model("linf-0.1", 2, _pgd("linf", 0.1)),
        _model("linf-0.2", 3, _pgd("linf", 0.2)),
        _model("linf-0.3", 4, _pgd("linf", 0.3)),
        _model("l2-0.5", 5, _pgd("l2", 0.5)),
        _model("zero", 6, train_on={"set": "zero", "source": "linf-0.1"}),
        _model("robust-data", 7, train_on={"set": "robustified", "source": "linf-0.1"}),
        wrap(victim, "victim"),
    ]
    return {m.name: m for m in found}


PGD_PAIR = ["pgd linf 0.025 1", "pgd l2 0.25 1"]
"""The PGD rows the paper-004 claims look for (any number of steps), in CIFAR-10 units."""

RUNS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "activations": (["natural", "linf-0.1", "linf-0.2"], {"batch_size": 8}),
    "color": (["natural", "linf-0.1"], {"thicknesses": [1], "grid_copies": 2}),
    "latent": (
        ["linf-0.1", "linf-0.2", "linf-0.3"],
        {"epochs": 1, "batch_size": 8, "train_n": 10, "attack_steps": 1},
    ),
    "universality": (
        ["natural", "natural2", "linf-0.1", "zero"],
        {"n": 4, "steps": 1, "step_size": 0.1, "sources": ["natural", "natural2", "linf-0.1"]},
    ),
    "transfer": (
        ["natural", "linf-0.1", "victim"],
        {"n": 4, "steps": 1, "eps": 1.0, "step_size": 0.5, "reference_dim": 0},
    ),
    "ensemble": (
        ["natural", "linf-0.1"],
        {"targets": ["lowres-7"], "train_n": 10, "test_n": 10},
    ),
    "saliency": (
        ["natural", "linf-0.1"],
        {"n": 2, "show": 1, "methods": ["vanilla", "guided"], "sanity_images": 2},
    ),
    "probes": (
        ["natural", "linf-0.1"],
        {"blur_sigmas": [0, 1.0], "median_times": [0, 1], "n": 4, "reversal": False},
    ),
    "filters": (
        ["natural", "linf-0.1"],
        {"reference_dim": 0, "threshold_attack": "pgd linf 0.03 1", "resamples": 3},
    ),
    "attack_grid": (
        ["natural", "linf-0.1", "robust-data"],
        {"attacks": PGD_PAIR, "reference_dim": 0, "n": 4},
    ),
    "norm_ratio": (["natural"], {"attacks": PGD_PAIR, "reference_dim": 0, "n": 4}),
    "loss_dist": (
        ["natural", "linf-0.1"],
        {"attacks": PGD_PAIR, "reference_dim": 0, "folds": 2, "n": 4},
    ),
    "similarity": (
        ["natural", "linf-0.1"],
        {"attacks": PGD_PAIR, "reference_dim": 0, "bootstrap": 3, "keep": 0.5},
    ),
    "boundary": (["natural", "linf-0.1", "l2-0.5"], {"steps": 2, "norms": ["l2"], "n": 4}),
}
"""Per lens: the models it runs on (what its claims need to reach a verdict) and tiny
parameters."""


def _split(split: str, n: int | None) -> Any:
    return make_images(INFO, n or N, seed=5, split=split)


@functools.cache
def _results() -> dict[str, dict[str | None, LensResult]]:
    """Per lens, its result per model (model-scope lenses) or under None (study-scope)."""
    models, data = _models(), make_images(INFO, N, seed=1)
    out: dict[str, dict[str | None, LensResult]] = {}
    for lens, (names, params) in RUNS.items():
        spec = LENSES.get(lens)
        chosen = [models[n] for n in names]
        if spec.scope == "study":
            out[lens] = {None: run_lens_like_a_study(spec, chosen, data, params, load_split=_split)}
        else:
            out[lens] = {
                m.name: run_lens_like_a_study(spec, [m], data, params, load_split=_split)
                for m in chosen
            }
    return out


def _written(lens: str, model: str) -> dict[str, np.ndarray]:
    found = _results()[lens]
    return {**found.get(None, LensResult()).arrays, **found.get(model, LensResult()).arrays}


def _recording_view() -> tuple[ResultsView, list[tuple[str, str, str, bool]]]:
    """A view of the lens results that records (lens, model, name, found) for every array
    asked for; each lens covers the models it ran on."""
    asked: list[tuple[str, str, str, bool]] = []

    def array(lens: str, model: str, name: str) -> np.ndarray | None:
        value = _written(lens, model).get(name) if lens in RUNS else None
        asked.append((lens, model, name, value is not None))
        return value

    def names(lens: str, model: str) -> list[str]:
        return sorted(_written(lens, model)) if lens in RUNS else []

    models = list(_models().values())
    view = ResultsView(
        models,
        array,
        set(RUNS),
        N,
        INFO.num_classes,
        names=names,
        coverage={lens: set(names) for lens, (names, _) in RUNS.items()},
    )
    view.resamples = 20
    return view, asked


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # random nets: DeepFool finds none
@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_a_claim_reads_only_arrays_its_lenses_wrote(claim):
    view, asked = _recording_view()
    verdict = claim.check(view.covering(claim.needs))  # a KeyError names the array it missed
    missing = sorted({f"{lens}/{model}/{name}" for lens, model, name, ok in asked if not ok})
    assert not missing, f"{claim.id} asked for arrays no lens wrote: {missing}"
    for lens in claim.needs:
        assert any(a[0] == lens and a[3] for a in asked), (
            f"{claim.id} read nothing of {lens}: {verdict.evidence}"
        )


# ------------------------------------------------------- the lenses' names and parsers


@pytest.mark.slow
def test_activation_color_and_latent_names_are_what_the_lenses_write():
    act = _written("activations", "natural")
    taps = list(act[activations.TAPS])
    assert taps
    expected = {activations.TAPS} | {
        activations.per_tap(what, tap)
        for tap in taps
        for what in (activations.DENSE, activations.REDUNDANT_MAPS, activations.MEAN_SIMILARITY)
    }
    assert expected <= set(act)
    assert {color.CLEAN, color.PIXEL_AVERAGE, color.CONTOUR, color.GRID} <= set(
        _written("color", "natural")
    )
    heads = {
        latent.correct_name(kind, head)
        for kind in (latent.NATURAL, latent.ROBUST)
        for head in (latent.ORIGINAL, latent.RETRAINED)
    }
    assert heads <= set(_written("latent", "linf-0.1"))


@pytest.mark.slow
def test_study_lens_names_round_trip_through_their_parsers():
    uni = _written("universality", "natural")
    for evaluator in ("natural", "natural2", "linf-0.1", "zero"):
        for source in ("natural", "natural2", "linf-0.1", universality.TEST):
            assert universality.correct_name(evaluator, source) in uni
    names = _written("transfer", "natural")
    hits = sorted(h for n in names if (h := transfer.parse_hit(n)) is not None)
    assert hits and all(transfer.hit_name(v, s) in names for v, s in hits)
    assert {v for v, _ in hits} == {"natural", "linf-0.1", "victim"}
    assert all(transfer.clean_hit_name(v) in names for v, _ in hits)
    assert transfer.parse_hit("error/victim/natural") is None
    assert transfer.parse_hit(transfer.clean_hit_name("victim")) is None
    fused = _written("ensemble", "natural")
    assert {n for n in fused if ensemble.target_of(n)} == {
        ensemble.correct_name("lowres-7", ensemble.members_name(members))
        for members in (["natural"], ["linf-0.1"], ["natural", "linf-0.1"])
    }


@pytest.mark.slow
def test_per_model_lens_names_round_trip_through_their_parsers():
    sal = _written("saliency", "natural")
    assert saliency.high_frequency_methods(list(sal)) == ["vanilla", "guided"]  # written order
    assert {saliency.sanity_name("guided"), saliency.SANITY_THRESHOLD} <= set(sal)
    found = sorted(p for n in _written("probes", "natural") if (p := probes.parse_correct(n)))
    assert found == sorted(
        [(probes.GAUSSIAN_BLUR, s) for s in (0.0, 1.0)]
        + [(probes.MEDIAN_FILTER, t) for t in (0.0, 1.0)]
        + [(p, 1.0) for p in probes.TEXTURE_PROBES]
    )
    assert all(probes.correct_name(p, level) in _written("probes", "natural") for p, level in found)
    fil = _written("filters", "natural")
    for metric in filters.METRICS:
        assert {filters.quality_name(metric), filters.quality_boot_name(metric)} <= set(fil)
    grid = _written("attack_grid", "natural")
    assert attack_grid.CLEAN in grid
    assert attack_keys(sorted(grid), attack_grid.ROBUST) == sorted(PGD_PAIR)
    ratio = _written("norm_ratio", "natural")
    assert norm_ratio.SQRT_D in ratio
    assert attack_keys(sorted(ratio), norm_ratio.RATIO) == sorted(PGD_PAIR)
    loss = _written("loss_dist", "natural")
    assert attack_keys(sorted(loss), loss_dist.A_ERRORS) == sorted(PGD_PAIR)
    sim = _written("similarity", "natural")
    for stem in (similarity.SVCCA, similarity.SVCCA_BOOT):
        assert attack_keys(sorted(sim), stem) == sorted(PGD_PAIR)
        assert all(attack_array(stem, k) in sim for k in PGD_PAIR)
    assert boundary.distance_name("l2") in _written("boundary", "natural")


def test_attack_keys_take_the_whole_key_after_the_stem():
    names = ["robust/pgd linf 0.025 10 @imagenet", "robust2/x", "clean", "robust/fgsm l2 0.5"]
    assert attack_keys(names, "robust") == ["pgd linf 0.025 10 @imagenet", "fgsm l2 0.5"]
    assert attack_array("robust", "fgsm l2 0.5") == "robust/fgsm l2 0.5"
