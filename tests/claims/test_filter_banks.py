"""003-4.3-quality on synthetic filter banks: the filter lens's quality statistics computed
from hand-built convolution weights, and the claim's verdict on them (§4.3, Eq. 7–9)."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE
from robustlens.claims.paper003 import check_filter_quality
from robustlens.lenses import filters
from tests.claims.exact import model, run, view

NAT = model("natural")
ROB = model("linf-0.1", "pgd", "linf", 0.1)
C_OUT, C_IN, RESAMPLES = 16, 8, 200


def diverse(seed: int, sparse: float = 0.0) -> np.ndarray:
    """I.i.d. Gaussian 3×3 filters: variance spread over all nine directions, nearly orthogonal
    filterbanks; the first ``sparse`` share of the filters shrunk to 1e-4 (sparse, Eq. 7)."""
    w = np.random.default_rng(seed).standard_normal((C_OUT, C_IN, 3, 3))
    flat = w.reshape(-1, 9)
    flat[: round(sparse * len(flat))] *= 1e-4
    return w


def degenerate(seed: int, sparse: float = 0.0) -> np.ndarray:
    """Filters from two basis filters only (low variance entropy), every filterbank a copy of
    one bank plus a little noise (low orthogonality); a ``sparse`` share shrunk as above."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((2, 9))
    bank = rng.standard_normal((C_IN, 2)) @ basis  # [C_IN, 9]
    w = bank[None] * rng.uniform(0.5, 1.5, (C_OUT, 1, 1))
    w = w + 0.05 * rng.standard_normal((C_OUT, C_IN, 2)) @ basis
    flat = w.reshape(-1, 9)
    flat[: round(sparse * len(flat))] *= 1e-4
    return w.reshape(C_OUT, C_IN, 3, 3)


def arrays_of(name: str, layers: list[np.ndarray], seed: int) -> dict:
    """The quality arrays the filter lens writes for these layers (values and bootstrap)."""
    rng = np.random.default_rng(seed)
    out = {}
    for metric, fn in filters.metrics(filters.FiltersParams()).items():
        values = np.array([fn(w) for w in layers], dtype=np.float64)
        boots = np.stack([filters._bootstrap(w, metric, fn, RESAMPLES, rng) for w in layers])
        out[("filters", name, filters.quality_name(metric))] = values
        out[("filters", name, filters.quality_boot_name(metric))] = boots
    return out


def verdict_of(natural: list[np.ndarray], robust: list[np.ndarray]):
    arrays = arrays_of("natural", natural, 1) | arrays_of("linf-0.1", robust, 2)
    return run(check_filter_quality, view([NAT, ROB], arrays, 4))


@pytest.mark.parametrize(
    ("natural", "robust", "status"),
    [
        # the paper's picture: natural sparse, homogeneous and redundant; robust diverse
        ([degenerate(0, 0.25), degenerate(1, 0.25)], [diverse(2), diverse(3)], HOLDS),
        # the opposite on every metric
        ([diverse(2), diverse(3)], [degenerate(0, 0.25), degenerate(1, 0.25)], FAILS),
        # no sparse filters anywhere: entropy and orthogonality decide (was inconclusive for
        # ever, since "fewer than none" cannot hold)
        ([degenerate(0), degenerate(1)], [diverse(2), diverse(3)], HOLDS),
        # natural without sparse filters, the robust model with some: more sparse, fails
        ([degenerate(0), degenerate(1)], [diverse(2, 0.25), diverse(3, 0.25)], FAILS),
        # two draws of the same kind of filters: no difference to show
        ([diverse(4), diverse(5)], [diverse(6), diverse(7)], INCONCLUSIVE),
    ],
    ids=["holds", "fails", "no-sparse-holds", "more-sparse-fails", "same-inconclusive"],
)
def test_filter_quality_on_synthetic_banks(natural, robust, status):
    verdict = verdict_of(natural, robust)
    assert verdict.status == status, verdict.evidence
    for metric in filters.METRICS:
        d = verdict.numbers[metric]["linf-0.1"]
        assert d["low"] <= d["estimate"] <= d["high"]


def test_the_synthetic_banks_differ_as_built():
    """The statistics see what the banks were built to show (so the cases above test the
    claim, not the generators)."""
    nat, rob = degenerate(0, 0.25), diverse(2)
    assert filters.METRICS["sparsity"](nat) == pytest.approx(0.25, abs=1 / (C_OUT * C_IN))
    assert filters.METRICS["sparsity"](rob) == 0.0
    assert filters.METRICS["variance_entropy"](nat) < filters.METRICS["variance_entropy"](rob)
    assert filters.METRICS["orthogonality"](nat) < filters.METRICS["orthogonality"](rob)
