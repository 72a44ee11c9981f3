"""Claims over settings trained with several seeds: the helpers pool a setting's replicates and
bootstrap over seeds × images, and every verdict says how many seeds stand behind it."""

from __future__ import annotations

import dataclasses

import numpy as np

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, NOT_COMPUTED, evaluate_claims
from robustlens.claims.paper000 import check_dense_grows, check_grid
from robustlens.claims.paper004 import check_linf_hurts_more
from robustlens.lenses import activations, color
from tests.claims.exact import CI, model, view
from tests.tolerances import float_tol

N = 50
TOL = float_tol(np.float64, N)


def replicate(base, seed: int):
    """``base`` trained with another seed: ``name@s<seed>`` of setting ``name``."""
    return dataclasses.replace(base, name=f"{base.name}@s{seed}", setting=base.name)


NAT = model("natural")
LINF = model("linf-0.1", "pgd", "linf", 0.1)


def grid_arrays(drops: dict[str, float]) -> dict:
    """Every image correct when clean; grid accuracy 1 − drop on every image, so only the
    seeds vary between resamples."""
    arrays = {}
    for name, drop in drops.items():
        arrays[("color", name, color.CLEAN)] = np.ones(N)
        arrays[("color", name, color.GRID)] = np.full(N, 1.0 - drop)
    return arrays


def seeded(drops: dict[str, float]):
    models = [replicate(NAT, 0), replicate(NAT, 1), replicate(LINF, 0), replicate(LINF, 1)]
    return view(models, grid_arrays(drops), N, resamples=300)


def test_two_seeds_per_setting_pool_into_one_comparison_with_a_seed_interval():
    v = seeded({"natural@s0": 0.1, "natural@s1": 0.1, "linf-0.1@s0": 0.3, "linf-0.1@s1": 0.5})
    verdict = check_grid(v)
    assert verdict.status == HOLDS, verdict.evidence
    delta = verdict.numbers["linf-0.1"]
    # mean over seeds 0.4 − 0.1; resamples draw {s0, s0} (0.2), {s1, s1} (0.4) or one of each
    assert abs(delta["delta"] - 0.3) <= TOL
    assert abs(delta["low"] - 0.2) <= TOL and abs(delta["high"] - 0.4) <= TOL
    assert verdict.numbers["natural"]["model"] == "natural"
    assert "natural (2 seeds): grid accuracy drop = 0.1" in verdict.evidence
    assert "linf-0.1 (2 seeds): Δ grid accuracy drop = 0.3 [0.2, 0.4]" in verdict.evidence
    assert "hierarchical bootstrap CI over seeds (up to 2 per setting)" in verdict.interval


def test_seeds_that_disagree_make_the_claim_inconclusive():
    """One seed shows the effect, the other the opposite: pooled over images only the mean
    difference (+0.1 on every image) would look certain; over seeds it is not."""
    v = seeded({"natural@s0": 0.0, "natural@s1": 0.0, "linf-0.1@s0": 0.4, "linf-0.1@s1": -0.2})
    verdict = check_grid(v)
    assert verdict.status == INCONCLUSIVE, verdict.evidence
    delta = verdict.numbers["linf-0.1"]
    assert abs(delta["delta"] - 0.1) <= TOL
    assert abs(delta["low"] + 0.2) <= TOL and abs(delta["high"] - 0.4) <= TOL


def test_each_replicate_as_a_model_of_its_own_would_give_another_verdict():
    """The same results without settings: every replicate is a model, and one robust model
    against the first natural one fails."""
    names = ["natural@s0", "natural@s1", "linf-0.1@s0", "linf-0.1@s1"]
    models = [
        dataclasses.replace(NAT, name=names[0]),
        dataclasses.replace(NAT, name=names[1]),
        dataclasses.replace(LINF, name=names[2]),
        dataclasses.replace(LINF, name=names[3]),
    ]
    arrays = grid_arrays(dict(zip(names, (0.0, 0.0, 0.4, -0.2), strict=True)))
    verdict = check_grid(view(models, arrays, N, resamples=300))
    assert verdict.status == FAILS and verdict.interval == CI


def test_evaluate_claims_says_how_many_seeds_stand_behind_each_verdict():
    v = seeded({"natural@s0": 0.1, "natural@s1": 0.1, "linf-0.1@s0": 0.3, "linf-0.1@s1": 0.5})
    verdicts = {c.id: verdict for c, verdict in evaluate_claims(v, resamples=300)}
    grid = verdicts["000-B-grid"]
    assert grid.status == HOLDS and grid.seeds == 2 and grid.seeds_text == "2 seeds"


def test_a_single_seed_study_says_so_and_keeps_its_interval_text():
    arrays = grid_arrays({"natural": 0.1, "linf-0.1": 0.3})
    verdicts = {
        c.id: verdict for c, verdict in evaluate_claims(view([NAT, LINF], arrays, N), resamples=300)
    }
    grid = verdicts["000-B-grid"]
    assert grid.status == HOLDS and grid.interval == CI
    assert grid.seeds == 1 and grid.seeds_text == "single seed"
    assert abs(grid.numbers["linf-0.1"]["delta"] - 0.2) <= TOL


def dense(always: int, seed: int) -> np.ndarray:
    """Per-image dense indicators with exactly ``always`` maps dense for every image."""
    out = np.random.default_rng(seed).random((N, 8)) > 0.5
    out[:, :always] = True
    out[:, always:][0] = False  # the others miss image 0
    return out


def test_growth_with_eps_ranks_settings_by_their_mean_over_seeds():
    settings = {"natural": (NAT, (1, 1)), "linf-0.1": (LINF, (2, 4))}
    settings["linf-0.2"] = (model("linf-0.2", "pgd", "linf", 0.2), (5, 6))
    models, arrays = [], {}
    for i, (base, counts) in enumerate(settings.values()):
        for seed, always in enumerate(counts):
            m = replicate(base, seed)
            models.append(m)
            arrays[("activations", m.name, activations.TAPS)] = np.array(["block1"])
            dense_name = activations.per_tap(activations.DENSE, "block1")
            arrays[("activations", m.name, dense_name)] = dense(always, 10 * i + seed)
    verdict = check_dense_grows(view(models, arrays, N, resamples=300))
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["linf"]["rho"] == 1.0
    assert "over ε = 0, 0.1, 0.2" in verdict.evidence


def test_a_claim_without_results_also_says_its_seeds():
    v = seeded({})
    v.lenses, v.planned = set(), {"color"}
    verdicts = {c.id: verdict for c, verdict in evaluate_claims(v, resamples=50)}
    grid = verdicts["000-B-grid"]
    assert grid.status == NOT_COMPUTED and grid.seeds_text == "2 seeds"


def test_a_settings_mean_interval_pools_its_seeds():
    v = seeded({})
    one = np.linspace(0, 1, N)
    single = v.setting_mean_interval([one], "natural")
    assert single == v.mean_interval(one)
    pooled = v.setting_mean_interval([np.zeros(N), np.ones(N)], "natural")
    # replicate draws {s0, s0}, {s1, s1} or one of each: means 0, 1 or ½
    assert (pooled.estimate, pooled.low, pooled.high) == (0.5, 0.0, 1.0)


def test_the_linf_claim_judges_each_setting_over_its_seeds():
    """004-3.1-linf per setting: seed 0 of linf-0.1 has L2 hurt more, seed 1 L∞ by more, so
    the setting's interval spans 0 where the natural setting's lies above it."""
    every, none = np.ones(N, dtype=bool), np.zeros(N, dtype=bool)
    half = np.arange(N) % 2 == 0
    rows = {
        "natural@s0": (none, every),
        "natural@s1": (half, every),
        "linf-0.1@s0": (every, half),
        "linf-0.1@s1": (none, every),
    }
    arrays = {}
    for name, (linf, l2) in rows.items():
        arrays[("attack_grid", name, "robust/pgd linf 0.025 5")] = linf
        arrays[("attack_grid", name, "robust/pgd l2 0.25 100")] = l2
    models = [replicate(NAT, 0), replicate(NAT, 1), replicate(LINF, 0), replicate(LINF, 1)]
    verdict = check_linf_hurts_more(view(models, arrays, N, resamples=300))
    assert verdict.status == INCONCLUSIVE, verdict.evidence
    nat, rob = verdict.numbers["natural"], verdict.numbers["linf-0.1"]
    assert abs(nat["estimate"] - 0.75) <= TOL and nat["low"] > 0
    assert abs(rob["estimate"] - 0.25) <= TOL and rob["low"] < 0 < rob["high"]
    assert "linf-0.1 (2 seeds): acc L2 − acc L∞ = 0.25" in verdict.evidence
    assert "hierarchical" in verdict.interval
