"""Evaluations report their progress when asked: one bar named after the attack, advanced by
every image once."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from robustlens.attacks import L2, PGD, DeepFool, epsilon_sweep, robust_accuracy
from robustlens.attacks import evaluate as evaluate_module
from tests.attacks.test_minimal_norm import binary_linear


def recording_bars(monkeypatch):
    bars: list[dict] = []

    @contextmanager
    def fake(enabled, *, total, description):
        bar = {"enabled": enabled, "total": total, "description": description, "steps": []}
        bars.append(bar)
        yield bar["steps"].append

    monkeypatch.setattr(evaluate_module, "progress_bar", fake)
    return bars


def test_an_evaluation_advances_its_bar_by_every_chunk(monkeypatch):
    bars = recording_bars(monkeypatch)
    model, _, x, y = binary_linear(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    robust_accuracy(model, (x, y), DeepFool(model), eps=0.1, batch_size=1, progress=True)
    # chunks of 8 batches of 1: all five images in one chunk
    assert bars == [
        {"enabled": True, "total": 5, "description": "deepfool evaluation", "steps": [5]}
    ]
    robust_accuracy(model, (x, y), PGD(model, L2(0.1), steps=1))
    assert bars[1] == {"enabled": False, "total": 5, "description": "pgd evaluation", "steps": [5]}


def test_a_sweep_passes_its_progress_flag_on(monkeypatch):
    bars = recording_bars(monkeypatch)
    model, _, x, y = binary_linear(torch.tensor([0.1, 0.2]))
    epsilon_sweep(model, (x, y), lambda e: PGD(model, L2(e), steps=1), [0.1, 0.2], progress=True)
    epsilon_sweep(model, (x, y), DeepFool(model), [0.1, 0.2], progress=True)
    assert [b["enabled"] for b in bars] == [True, True, True]
    assert [b["description"] for b in bars] == ["pgd evaluation"] * 2 + ["deepfool evaluation"]


def test_chunks_hold_eight_batches(monkeypatch):
    bars = recording_bars(monkeypatch)
    model, _, x, y = binary_linear(torch.linspace(0.1, 1.0, 20))
    robust_accuracy(model, (x, y), PGD(model, L2(0.01), steps=1), batch_size=2)
    assert bars[0]["steps"] == [16, 4]
