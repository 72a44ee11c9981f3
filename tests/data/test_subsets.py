"""Deterministic, class-balanced subsets."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlens.data import load_dataset
from robustlens.data.subsets import choose_subset
from robustlens.errors import ConfigError


def _labels(counts: list[int]) -> torch.Tensor:
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(7))]


def test_balanced_counts():
    labels = _labels([100, 80, 50, 5])
    idx = choose_subset(labels, 64, seed=0)
    counts = torch.bincount(labels[idx], minlength=4).tolist()
    assert sum(counts) == 64
    assert counts[3] == 5  # a small class gives all it has
    assert max(counts[:3]) - min(counts[:3]) <= 1
    assert torch.equal(idx, torch.sort(idx).values) and len(set(idx.tolist())) == 64


def test_same_seed_same_indices_different_seed_different():
    labels = _labels([60, 60, 60])
    a = choose_subset(labels, 30, seed=3)
    assert torch.equal(a, choose_subset(labels, 30, seed=3))
    assert not torch.equal(a, choose_subset(labels, 30, seed=4))
    u = choose_subset(labels, 30, seed=3, balanced=False)
    assert torch.equal(u, choose_subset(labels, 30, seed=3, balanced=False))


def test_subset_size_errors():
    with pytest.raises(ConfigError):
        choose_subset(_labels([5, 5]), 0)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    n=st.integers(1, 120),
    seed=st.integers(0, 2**31),
)
def test_balanced_property(counts, n, seed):
    labels = _labels(counts)
    idx = choose_subset(labels, n, seed=seed)
    got = torch.bincount(labels[idx], minlength=len(counts)).tolist()
    assert sum(got) == min(n, sum(counts))
    # every class that is not exhausted is within one of the largest share
    open_classes = [g for g, c in zip(got, counts, strict=True) if g < c]
    if open_classes:
        assert max(got) - min(open_classes) <= 1


def test_load_dataset_subset_is_deterministic_and_balanced():
    a = load_dataset("digits", "train", n=50, seed=1)
    b = load_dataset("digits", "train", n=50, seed=1)
    c = load_dataset("digits", "train", n=50, seed=2)
    assert torch.equal(a.indices, b.indices) and not torch.equal(a.indices, c.indices)
    assert torch.bincount(a.labels, minlength=10).tolist() == [5] * 10
    full = load_dataset("digits", "train")
    assert torch.equal(full.images[a.indices], a.images)
    assert torch.equal(full.labels[a.indices], a.labels)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
