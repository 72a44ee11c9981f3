"""The claims of Garaev et al. (paper 004) on hand-made per-image results with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.analysis.adistance import resampled_errors
from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView, evaluate_claims
from robustlens.claims.paper004 import (
    check_a_distance,
    check_boundary,
    check_linf_hurts_more,
    check_norm_ratio,
    check_svcca,
)
from tests.claims.test_paper000 import model

N = 300
NAT = model("natural")
LINF = model("linf-0.1", "pgd", "linf", 0.1)
L2 = model("l2-1.5", "pgd", "l2", 1.5)
MODELS = [NAT, LINF, L2]


def view(arrays: dict[tuple[str, str, str], np.ndarray], lenses: set[str]) -> ResultsView:
    def names(lens: str, m: str) -> list[str]:
        return [name for (ln, mn, name) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView(
        MODELS, lambda lens, m, name: arrays.get((lens, m, name)), lenses, N, 10, names=names
    )
    v.resamples = 300
    return v


def bernoulli(p: float, seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < p


def grid(acc: dict[str, tuple[float, float]]) -> dict:
    """Per model: (accuracy under PGD L∞ 0.025, under PGD L2 0.25)."""
    out = {}
    for i, (name, (linf, l2)) in enumerate(acc.items()):
        out[("attack_grid", name, "robust/pgd linf 0.025 5")] = bernoulli(linf, 2 * i)
        out[("attack_grid", name, "robust/pgd l2 0.25 100")] = bernoulli(l2, 2 * i + 1)
        out[("attack_grid", name, "clean")] = np.ones(N, dtype=bool)
    return out


def test_linf_hurts_more():
    holds = view(
        grid({"natural": (0.1, 0.6), "linf-0.1": (0.5, 0.8), "l2-1.5": (0.4, 0.8)}),
        {"attack_grid"},
    )
    verdict = check_linf_hurts_more(holds)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["natural"]["linf"] == pytest.approx(bernoulli(0.1, 0).mean())
    fails = view(
        grid({"natural": (0.1, 0.6), "linf-0.1": (0.9, 0.5), "l2-1.5": (0.4, 0.8)}),
        {"attack_grid"},
    )
    assert check_linf_hurts_more(fails).status == FAILS
    same = grid({"natural": (0.1, 0.6), "linf-0.1": (0.7, 0.7), "l2-1.5": (0.4, 0.8)})
    same[("attack_grid", "linf-0.1", "robust/pgd l2 0.25 100")] = same[
        ("attack_grid", "linf-0.1", "robust/pgd linf 0.025 5")
    ]  # no difference for one robust model: not shown for every model
    tie = view(same, {"attack_grid"})
    assert check_linf_hurts_more(tie).status == INCONCLUSIVE
    missing = view({}, {"attack_grid"})
    assert check_linf_hurts_more(missing).status == INCONCLUSIVE


def test_rows_written_for_another_resolution_never_stand_in_for_the_cifar_rows():
    """A Table A1 row (budget set for ImageNet, ``@imagenet``) that shares the CIFAR row's
    written numbers is another budget: the claim reads the CIFAR row, or none."""
    arrays = grid({"natural": (0.1, 0.6), "linf-0.1": (0.5, 0.8), "l2-1.5": (0.4, 0.8)})
    for name in ("natural", "linf-0.1", "l2-1.5"):
        # listed first: a prefix match would take it instead of the CIFAR row
        arrays = {
            ("attack_grid", name, "robust/pgd l2 0.25 100 @imagenet"): np.zeros(N, dtype=bool),
            **arrays,
        }
    both = view(arrays, {"attack_grid"})
    verdict = check_linf_hurts_more(both)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["natural"]["l2"] == pytest.approx(bernoulli(0.6, 1).mean())
    only_a1 = view(
        {k: v for k, v in arrays.items() if "@" in k[2] or k[2] == "clean"}, {"attack_grid"}
    )
    assert check_linf_hurts_more(only_a1).status == INCONCLUSIVE
    tagged = {
        (lens, m, name.replace(" 100", " 100 @cifar10") if "@" not in name else name): v
        for (lens, m, name), v in arrays.items()
    }
    explicit = view(tagged, {"attack_grid"})
    assert check_linf_hurts_more(explicit).status == HOLDS


def ratios(linf_fraction: float, l2_fraction: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sqrt_d = 28.0
    out = {}
    for name in ("natural", "linf-0.1", "l2-1.5"):
        linf = sqrt_d * np.clip(linf_fraction + 0.02 * rng.standard_normal(N), 0.04, 1)
        l2 = sqrt_d * np.clip(l2_fraction + 0.02 * rng.standard_normal(N), 0.04, 1)
        linf[::3] = np.nan  # perturbations that were not kept
        out[("norm_ratio", name, "ratio/pgd linf 0.03 20")] = linf
        out[("norm_ratio", name, "ratio/pgd l2 0.25 20")] = l2
        out[("norm_ratio", name, "sqrt_d")] = np.array([sqrt_d])
    return out


def test_norm_ratio():
    holds = view(ratios(0.9, 0.2, 0), {"norm_ratio"})
    verdict = check_norm_ratio(holds)
    assert verdict.status == HOLDS, verdict.evidence
    kept = ~np.isnan(ratios(0.9, 0.2, 0)[("norm_ratio", "natural", "ratio/pgd linf 0.03 20")])
    assert verdict.numbers["natural"]["kept"] == {"linf": int(kept.sum()), "l2": N}
    # L∞ far from √d but still above every L2 ratio: the ranges are apart (the old "near √d"
    # cut-off said fails here; Tables 4–6 compare C1(L∞) with C2(L2))
    assert check_norm_ratio(view(ratios(0.5, 0.2, 0), {"norm_ratio"})).status == HOLDS
    # L2 ratios up to L∞'s: the ranges overlap throughout
    assert check_norm_ratio(view(ratios(0.9, 0.9, 0), {"norm_ratio"})).status == FAILS


def losses(name: str, l2: float | None, linf: float | None, seed: int) -> dict:
    """Per model, clean losses and attacked ones = clean · exp(N(shift, 0.5)) for PGD L2 and
    L∞ (None: the attacked loss equals the clean one, the two cannot be told apart)."""
    rng = np.random.default_rng(seed)
    clean = rng.gamma(2.0, 0.3, N)
    arrays = {("loss_dist", name, "loss/clean"): clean}
    for key, shift in (("pgd l2 0.5 10", l2), ("pgd linf 0.05 5", linf)):
        attacked = clean if shift is None else clean * np.exp(rng.normal(shift, 0.5, N))
        arrays[("loss_dist", name, f"loss/{key}")] = attacked
    return arrays


def a_view(shifts: dict[str, tuple[float | None, float | None]]) -> ResultsView:
    """Per model: (log-shift of the PGD L2 losses, of the PGD L∞ losses)."""
    arrays = {}
    for i, (name, (l2, linf)) in enumerate(shifts.items()):
        arrays |= losses(name, l2, linf, 10 * i)
    return view(arrays, {"loss_dist"})


def test_a_distance():
    # natural: separable (A ≈ 2); robust: closer (A ≈ 0.3 for L2, 1 for L∞)
    holds = a_view({"natural": (6.0, 6.0), "linf-0.1": (0.4, 1.0), "l2-1.5": (0.4, 1.0)})
    verdict = check_a_distance(holds)
    assert verdict.status == HOLDS, verdict.evidence
    sample = losses("l2-1.5", 0.4, 1.0, 20)
    clean, attacked = (sample[("loss_dist", "l2-1.5", f"loss/{k}")] for k in ("clean", L2_KEY))
    ref = resampled_errors(clean, attacked, np.ones((1, N)), folds=5, seed=0)[0]
    assert verdict.numbers["l2-1.5"]["l2"] == pytest.approx(2 * (1 - 2 * ref), abs=1e-12)
    # robust models further from clean than the natural one
    worse = a_view({"natural": (0.3, 0.3), "linf-0.1": (6.0, 6.0), "l2-1.5": (0.3, 0.6)})
    assert check_a_distance(worse).status == FAILS
    # all the way: the classifier is at chance for the robust models (A = 0)
    gone = a_view({"natural": (6.0, 6.0), "linf-0.1": (None, None), "l2-1.5": (None, None)})
    assert check_a_distance(gone).status != HOLDS
    # L∞ closer than L2: "least for L∞" fails
    flipped = a_view({"natural": (6.0, 6.0), "linf-0.1": (1.2, 0.2), "l2-1.5": (1.2, 0.2)})
    assert check_a_distance(flipped).status == FAILS


L2_KEY = "pgd l2 0.5 10"


def test_a_distance_of_indistinguishable_paired_copies_is_all_the_way():
    """Paired folds: when the classifier cannot tell an image's clean and attacked loss apart,
    exactly one of the two copies is wrong, A = 0 for every resample, and "not all the way"
    fails for that model."""
    arrays = losses("natural", 6.0, 6.0, 0) | losses("linf-0.1", 0.4, 1.0, 10)
    arrays |= losses("l2-1.5", None, 1.0, 20)
    v = view(arrays, {"loss_dist"})
    verdict = check_a_distance(v)
    assert verdict.numbers["l2-1.5"]["l2"] == 0.0
    assert verdict.status == FAILS, verdict.evidence
    # a robust model without loss_dist results gives no verdict rather than an error
    del arrays[("loss_dist", "linf-0.1", f"loss/{L2_KEY}")]
    del arrays[("loss_dist", "l2-1.5", f"loss/{L2_KEY}")]
    v = view(arrays, {"loss_dist"})
    assert check_a_distance(v).status == INCONCLUSIVE


def svcca_view(values: dict[str, tuple[float, float]], noise: float = 0.003) -> ResultsView:
    """Per model: (SVCCA under PGD L2, under PGD L∞), with paired bootstrap samples."""
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(100)  # paired: the same image resamples move every model
    arrays = {}
    for name, (l2, linf) in values.items():
        for key, v in (("pgd l2 0.25 20", l2), ("pgd linf 0.025 20", linf)):
            arrays[("similarity", name, f"svcca/{key}")] = np.array([v])
            boot = v + noise * shared + 0.3 * noise * rng.standard_normal(100)
            arrays[("similarity", name, f"svcca_boot/{key}")] = boot
    return view(arrays, {"similarity"})


def test_svcca():
    holds = svcca_view({"natural": (0.95, 0.80), "linf-0.1": (0.99, 0.93), "l2-1.5": (0.99, 0.9)})
    verdict = check_svcca(holds)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["linf-0.1"]["pgd linf 0.025 20"] == 0.93
    lower = svcca_view({"natural": (0.95, 0.8), "linf-0.1": (0.9, 0.7), "l2-1.5": (0.99, 0.9)})
    assert check_svcca(lower).status == FAILS
    l2_worst = svcca_view({"natural": (0.8, 0.95), "linf-0.1": (0.9, 0.97), "l2-1.5": (0.9, 0.97)})
    assert check_svcca(l2_worst).status == FAILS


def boundary_view(means: dict[str, float]) -> ResultsView:
    rng = np.random.default_rng(1)
    arrays = {}
    for name, mean in means.items():
        d = mean * rng.gamma(20.0, 1 / 20.0, N)
        d[5] = np.nan  # DeepFool did not cross for one image
        arrays[("boundary", name, "distance/l2")] = d
    return view(arrays, {"boundary"})


def test_boundary():
    holds = boundary_view({"natural": 0.5, "linf-0.1": 1.2, "l2-1.5": 2.0})
    verdict = check_boundary(holds)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["l2-1.5"]["estimate"] > 1.3
    fails = boundary_view({"natural": 0.5, "linf-0.1": 3.0, "l2-1.5": 2.0})
    assert check_boundary(fails).status == FAILS
    no_gain = boundary_view({"natural": 2.0, "linf-0.1": 1.0, "l2-1.5": 0.5})
    assert check_boundary(no_gain).status == FAILS


def test_paper004_claims_join_the_table_only_when_their_lens_ran():
    v = boundary_view({"natural": 0.5, "linf-0.1": 1.2, "l2-1.5": 2.0})
    ids = [claim.id for claim, _ in evaluate_claims(v, resamples=200)]
    assert ids == ["004-5-boundary"]


def robust_data_view(
    clean: float, retained: dict[str, float], seed: int = 40, exact: bool = False
) -> ResultsView:
    """The study's models plus a robust-data model with the given clean accuracy, keeping the
    fraction ``retained[row]`` of its correctly classified images under each attack row (a
    Bernoulli draw, or exactly that fraction of them with ``exact``)."""
    data = model("robust-data")
    data.card.source = {"train_on": {"set": "robustified", "source": "l2-1.5"}}
    arrays = grid({"natural": (0.1, 0.6), "linf-0.1": (0.6, 0.8), "l2-1.5": (0.5, 0.8)})
    correct = bernoulli(clean, seed)
    arrays[("attack_grid", "robust-data", "clean")] = correct
    for i, (row, fraction) in enumerate(retained.items()):
        if exact:
            kept = np.zeros(N, dtype=bool)
            idx = np.flatnonzero(correct)
            kept[idx[: round(fraction * idx.size)]] = True
        else:
            kept = bernoulli(fraction, seed + 1 + i)
        arrays[("attack_grid", "robust-data", f"robust/{row}")] = correct & kept

    def names(lens, m):
        return [n for (ln, mn, n) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView([*MODELS, data], lambda ln, m, n: arrays.get((ln, m, n)), {"attack_grid"},
                    N, 10, names=names)  # fmt: skip
    v.resamples = 300
    return v


def test_robust_data_model_loses_most_of_its_accuracy_under_linf_attacks():
    from robustlens.claims.paper004 import RETAINED_AT_MOST, check_robust_data

    # Table 1's robust-data model: 0.81 clean, 0.17 under PGD L∞ 0.025, 0.08 under 0.25
    rows = {"pgd linf 0.025 5": 0.2, "pgd linf 0.25 5": 0.1, "fgsm linf 0.025": 0.27}
    v = robust_data_view(0.8, rows)
    verdict = check_robust_data(v)
    assert verdict.status == HOLDS, verdict.evidence
    one = verdict.numbers["robust-data/pgd linf 0.025"]
    clean = v.array("attack_grid", "robust-data", "clean")
    attacked = v.array("attack_grid", "robust-data", "robust/pgd linf 0.025 5")
    assert one["retained"]["estimate"] == pytest.approx(attacked.mean() / clean.mean())
    assert one["retained"]["high"] < RETAINED_AT_MOST
    assert one["drop"]["estimate"] == pytest.approx(clean.mean() - attacked.mean())
    assert one["drop"]["low"] > 0.4  # the drop, 0.8 · (1 − 0.2), with its interval
    assert "robust-data/fgsm linf 0.25" not in verdict.numbers  # absent rows are skipped
    # the adversarially trained models' accuracies come along as supporting numbers
    assert "adversarially trained: linf-0.1 " in verdict.evidence


def test_robust_data_model_that_keeps_its_accuracy_fails_the_claim():
    from robustlens.claims.paper004 import check_robust_data

    # keeps 70 % of its clean accuracy under PGD L∞ 0.025: robust, like Table 2's adv. model
    v = robust_data_view(0.8, {"pgd linf 0.025 5": 0.7, "pgd linf 0.25 5": 0.1})
    verdict = check_robust_data(v)
    assert verdict.status == FAILS, verdict.evidence
    # one L∞ row holding does not rescue another that fails
    v = robust_data_view(0.8, {"pgd linf 0.025 5": 0.1, "fgsm linf 0.025": 0.8})
    assert check_robust_data(v).status == FAILS


def test_robust_data_claim_is_inconclusive_at_the_threshold_or_without_the_results():
    from robustlens.claims.paper004 import check_robust_data

    # exactly half of the clean accuracy kept: the interval straddles ½
    v = robust_data_view(0.8, {"pgd linf 0.025 5": 0.5}, exact=True)
    verdict = check_robust_data(v)
    assert verdict.status == INCONCLUSIVE, verdict.evidence
    retained = verdict.numbers["robust-data/pgd linf 0.025"]["retained"]
    assert retained["estimate"] == pytest.approx(0.5, abs=1e-3)
    assert retained["low"] < 0.5 < retained["high"]
    # holds for one row but straddles for another: not shown for every row
    v = robust_data_view(0.8, {"pgd linf 0.025 5": 0.1, "pgd linf 0.25 5": 0.5}, exact=True)
    assert check_robust_data(v).status == INCONCLUSIVE
    # the required PGD L∞ 0.025 row is missing (only the 0.25 one ran)
    v = robust_data_view(0.8, {"pgd linf 0.25 5": 0.1})
    verdict = check_robust_data(v)
    assert verdict.status == INCONCLUSIVE and "lacks the row" in verdict.evidence
    # no model trained on a robustified set
    plain = view(grid({"natural": (0.1, 0.6)}), {"attack_grid"})
    assert check_robust_data(plain).status == INCONCLUSIVE


def test_claims_see_only_the_models_their_lenses_looked_at():
    """A model a lens did not look at (a transfer victim, say) has no results there: the claim
    is checked on the other models instead of coming out inconclusive for missing results."""
    base = boundary_view({"natural": 0.5, "linf-0.1": 1.2, "l2-1.5": 2.0})
    victim = model("victim")  # natural, and listed first: the claims' natural reference
    seen = {"boundary": {m.name for m in MODELS}}
    v = ResultsView([victim, *MODELS], base._arrays, {"boundary"}, N, 10, coverage=seen)
    restricted = v.covering(("boundary",))
    assert [m.name for m in restricted.models] == ["natural", "linf-0.1", "l2-1.5"]
    assert v.covering(("transfer",)) is v  # a lens not named looked at every model
    ((_, verdict),) = evaluate_claims(v, resamples=200)
    assert verdict.status == HOLDS, verdict.evidence
    blind = ResultsView([victim, *MODELS], base._arrays, {"boundary"}, N, 10)
    ((_, blind_verdict),) = evaluate_claims(blind, resamples=200)
    assert "results missing" in blind_verdict.evidence  # what the coverage avoids
