"""`robustlens eval` prints every accuracy with its 95 % Wilson interval, n and the attack."""

from __future__ import annotations

import json
import re

import pytest
import torch

from robustlens.cli import accuracy_line, attack_brief
from robustlens.proportions import proportion, wilson_interval
from tests.test_cli import _run_main


def test_the_line_reads_as_the_issue_writes_it():
    attack = {"attack": "pgd", "norm": "linf", "eps": 0.1, "steps": 20}
    line = accuracy_line("robust accuracy", proportion(734, 1000), attack)
    assert line == "robust accuracy 0.734 [0.706, 0.760] (n = 1000, PGD-20, L∞ 0.1)"
    assert accuracy_line("clean accuracy", proportion(3, 4)) == (
        "clean accuracy 0.750 [0.301, 0.954] (n = 4)"
    )


@pytest.mark.parametrize(
    ("attack", "brief"),
    [
        ({"attack": "fgsm", "norm": "l2", "eps": 0.5, "steps": 1}, "FGSM, L2 0.5"),
        ({"attack": "deepfool", "norm": "l2", "eps": 0.25, "steps": 50}, "DeepFool, L2 0.25"),
        ({"attack": "cw-l2", "norm": "l2", "eps": 1.0}, "C&W, L2 1"),
        (
            {"attack": "autoattack", "version": "standard", "norm": "linf", "eps": 0.1},
            "autoattack standard, L∞ 0.1",
        ),
    ],
)
def test_attack_briefs(attack, brief):
    assert attack_brief(attack) == brief


def _fake_adapter(monkeypatch):
    import robustlens.models.adapters as adapters
    from robustlens.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp", "digits").eval()  # one model: both runs below evaluate it
    monkeypatch.setattr(adapters, "load_adapter", lambda spec: model)


def test_eval_prints_intervals_and_stores_them_in_json(monkeypatch, capsys):
    _fake_adapter(monkeypatch)
    args = ("eval", "fake:mlp", "--data", "digits", "--n", "40", "--steps", "2", "--eps", "0.05")
    assert _run_main(monkeypatch, *args, "--json") in (0, None)
    summary = json.loads(capsys.readouterr().out)
    for name in ("clean", "robust"):
        k = round(summary[f"{name}_accuracy"] * 40)
        assert summary[f"{name}_ci"] == list(wilson_interval(k, 40))
    assert summary["confidence"] == 0.95

    assert _run_main(monkeypatch, *args) in (0, None)
    text = capsys.readouterr().out
    number = r"(\d\.\d{3})"
    found = re.search(
        rf"robust accuracy {number} \[{number}, {number}\] \(n = 40, PGD-2, L∞ 0.05\)", text
    )
    assert found, text
    k = round(summary["robust_accuracy"] * 40)
    assert [float(v) for v in found.groups()] == pytest.approx(
        [k / 40, *wilson_interval(k, 40)], abs=5e-4
    )
    assert re.search(rf"clean accuracy +{number} \[{number}, {number}\] \(n = 40\)", text), text
