"""000-4.1-dense: N_k under resampling. "Densely active on every image of the sample" is an
extreme of the sample that duplicates in a bootstrap resample inflate; the claims count maps
densely active on ≥ 99 % of the images instead, a threshold on a mean over images."""

from __future__ import annotations

import numpy as np

from robustlens.analysis.bootstrap import frequent_count, full_weights, resample_weights
from robustlens.claims import HOLDS
from robustlens.claims.paper000 import ALWAYS, check_dense_more, dense_total
from tests.claims.coverage import covers_nominal
from tests.claims.exact import model, view

NAT = model("natural")
ROB = model("linf-0.1", "pgd", "linf", 0.1)


def _arrays(dense: dict[str, np.ndarray]) -> dict:
    out = {}
    for name, d in dense.items():
        out[("activations", name, "taps")] = np.array(["b0"])
        out[("activations", name, "dense/b0")] = d
    return out


def test_frequent_count_threshold_on_both_sides():
    """100 images: a map dense on 99 of them counts at 0.99, one on 98 does not."""
    d = np.ones((100, 3), dtype=bool)
    d[0, 1] = False
    d[:2, 2] = False
    assert frequent_count(d, full_weights(100), 0.99)[0] == 2.0
    assert frequent_count(d, full_weights(100), 0.98)[0] == 3.0
    assert frequent_count(d, full_weights(100), 1.0)[0] == 1.0


def test_interval_contains_the_estimate_when_maps_miss_a_few_images():
    """The natural model has 20 maps dense on all but one image each (dense on 99.5 % of 200
    images), the robust one 20 maps dense on every image: the same N_k. Counting "dense on
    every drawn image" puts the natural count at 0 on the data but ≈ 7 on a resample, so the
    interval of Δ lay below the estimate 20; the frequency threshold keeps Δ = 0 inside."""
    n = 200
    nat = np.ones((n, 20), dtype=bool)
    nat[np.arange(20), np.arange(20)] = False
    rob = np.ones((n, 20), dtype=bool)
    v = view([NAT, ROB], _arrays({"natural": nat, "linf-0.1": rob}), n, resamples=500)
    verdict = check_dense_more(v)
    got = verdict.numbers["linf-0.1"]
    assert got["delta"] == 0.0
    assert got["low"] <= got["delta"] <= got["high"]
    assert verdict.status != HOLDS
    assert "on every image (Fig. 1, no interval): natural 0, linf-0.1 20" in verdict.evidence


def test_interval_covers_the_true_count_on_simulated_maps():
    """200 simulated studies: per map a probability of being densely active on an image
    (some always, some nearly, some clearly not); the true N = #maps with probability ≥ 0.99.
    The 95 % interval of N(robust) − N(natural) covers the true difference at the nominal
    rate (99.9 % Wilson band) and always contains its own estimate."""
    p_nat = np.array([1.0, 0.999, 0.996, 0.97, 0.9, 0.5, 0.2, 0.0])
    p_rob = np.array([1.0, 1.0, 0.998, 0.995, 0.98, 0.95, 0.5, 0.1])
    truth = int((p_rob >= ALWAYS).sum() - (p_nat >= ALWAYS).sum())
    n, sims, resamples = 300, 200, 200
    rng = np.random.default_rng(2026)
    w = resample_weights(n, resamples, 7)  # independent data per simulation, same resamples
    one = full_weights(n)
    hits = contains = 0
    widths = []
    for _ in range(sims):
        dense = {
            "natural": rng.random((n, p_nat.size)) < p_nat,
            "linf-0.1": rng.random((n, p_rob.size)) < p_rob,
        }
        v = view([NAT, ROB], _arrays(dense), n)
        est = dense_total(v, "linf-0.1", one)[0] - dense_total(v, "natural", one)[0]
        boot = dense_total(v, "linf-0.1", w) - dense_total(v, "natural", w)
        low, high = np.quantile(boot, [0.025, 0.975])
        hits += low <= truth <= high
        contains += low <= est <= high
        widths.append(high - low)
    assert contains == sims
    assert covers_nominal(hits, sims), hits
    assert np.mean(widths) > 0  # maps near the threshold make real intervals, not points
