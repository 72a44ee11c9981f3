"""`robustlens eval --record` writes the evaluation of record into the model's card (and only
that field), atomically; a missing or damaged card is one clear error before any work; the
report's models table shows the record."""

from __future__ import annotations

import json

import pytest
import torch

from robustlens.errors import CheckpointError
from robustlens.models import ModelCard, build_model, load_checkpoint, save_checkpoint
from robustlens.models.record import card_to_record, evaluation_record, record_evaluation
from robustlens.proportions import proportion, wilson_interval
from robustlens.report.builder import of_record
from tests.test_cli import _run_main

ARGS = ("--n", "40", "--steps", "2", "--eps", "0.05")


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("mlp", "digits").eval()
    stem = tmp_path / "m"
    save_checkpoint(
        model,
        stem,
        dataset="digits",
        notes="the user's own notes",
        metrics=[{"name": "clean_accuracy", "value": 0.5, "n": 10, "attack": None}],
        source={"where": "a test", "user_field": [1, 2]},
    )
    return stem


def test_eval_record_writes_the_result_and_keeps_every_other_field(checkpoint, monkeypatch, capsys):
    card_path = checkpoint.with_name("m.json")
    before = json.loads(card_path.read_text())
    code = _run_main(monkeypatch, "eval", str(checkpoint), *ARGS, "--record", "--json")
    assert code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    after = json.loads(card_path.read_text())
    record = after.pop("evaluation")
    assert after == before  # nothing else changed
    assert summary["recorded_in"] == str(card_path)
    assert (record["attack"], record["norm"], record["eps"], record["n"]) == (
        "pgd",
        "linf",
        0.05,
        40,
    )
    k = round(summary["robust_accuracy"] * 40)  # the summary's is float32, the record's k / n
    assert record["robust_accuracy"] == k / 40
    assert record["robust_ci"] == list(wilson_interval(k, 40)) == summary["robust_ci"]
    assert record["clean_ci"] == summary["clean_ci"]
    assert record["label"] == "PGD-2, L∞ 0.05"
    assert record["weights_sha256"] == before["weights_sha256"]
    assert record["robustlens"] and record["date"].startswith("20")
    # the card still loads, with its record, and the weights still match it
    _, card = load_checkpoint(checkpoint)
    assert card.evaluation == record and card.notes == "the user's own notes"
    # a second --record replaces the first record, not the other fields
    assert _run_main(monkeypatch, "eval", str(checkpoint), *ARGS, "--eps", "0.1", "--record") in (
        0,
        None,
    )
    assert "recorded as the evaluation of record" in capsys.readouterr().out
    again = json.loads(card_path.read_text())
    assert again.pop("evaluation")["eps"] == 0.1 and again == before
    assert not [p for p in card_path.parent.iterdir() if p.name.startswith(".")]  # no temp


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda card: card.write_text("{not json"), "not valid JSON"),
        (lambda card: card.unlink(), "no model card"),
        (lambda card: card.write_text(json.dumps({"format": "other"})), "unknown model card"),
    ],
)
def test_a_missing_or_damaged_card_is_one_clear_error_before_work(checkpoint, damage, match):
    damage(checkpoint.with_name("m.json"))
    with pytest.raises(CheckpointError, match=match):
        card_to_record(checkpoint)


def test_cli_refuses_record_without_a_card_before_evaluating(
    checkpoint, tmp_path, monkeypatch, capsys
):
    checkpoint.with_name("m.json").write_text("{not json")
    assert _run_main(monkeypatch, "eval", str(checkpoint), *ARGS, "--record") == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "Traceback" not in err
    bad = tmp_path / "nowhere" / "x"
    assert _run_main(monkeypatch, "eval", str(bad), *ARGS, "--record") == 2
    err = capsys.readouterr().err
    assert "no model card" in err and "Traceback" not in err


def test_a_card_changed_to_other_weights_is_not_overwritten(checkpoint):
    card_path = checkpoint.with_name("m.json")
    entry = evaluation_record(
        attack={"attack": "pgd", "norm": "linf", "eps": 0.1, "steps": 2},
        label="PGD-2, L∞ 0.1",
        clean=proportion(30, 40),
        robust=proportion(12, 40),
        data="digits",
        split="test",
        seed=0,
        weights_sha256="0" * 64,
    )
    text = card_path.read_text()
    with pytest.raises(CheckpointError, match="other weights"):
        record_evaluation(card_path, entry)
    assert card_path.read_text() == text


def test_cards_validate_their_record():
    card = ModelCard.for_model(build_model("mlp", "digits"))
    data = card.to_dict()
    assert "evaluation" not in data  # cards without a record keep their old shape
    for bad in (
        "yes",
        {"robust_accuracy": 0.9, "robust_ci": [0.1, 0.2], "n": 10},
        {"robust_accuracy": 0.15, "robust_ci": [0.1, 0.2], "n": 0},
    ):
        with pytest.raises(CheckpointError, match="evaluation"):
            ModelCard.from_dict({**data, "evaluation": bad})


def test_the_report_line_of_a_record():
    record = evaluation_record(
        attack={"attack": "autoattack", "version": "standard", "norm": "linf", "eps": 0.1},
        label="autoattack standard, L∞ 0.1",
        clean=proportion(800, 1000),
        robust=proportion(612, 1000),
        data="fashion-mnist",
        split="test",
        seed=0,
        weights_sha256=None,
    )
    low, high = wilson_interval(612, 1000)
    line = of_record(record)
    assert line.startswith(f"autoattack standard, L∞ 0.1: 0.612 [{low:.3f}, {high:.3f}] (n = 1000")
    assert record["date"][:10] in line and f"robustlens {record['robustlens']}" in line
    assert of_record(None) == ""


def test_the_models_table_shows_the_record_only_when_present():
    import dataclasses

    from robustlens.report.html import render_report
    from tests.report.test_html import sample_document

    doc = sample_document()
    assert "of record:" not in render_report(doc)
    line = "autoattack standard, L∞ 0.1: 0.612 [0.581, 0.642] (n = 1000, 2026-12-05)"
    doc.models[1] = dataclasses.replace(doc.models[1], of_record=line)
    html = render_report(doc)
    assert html.count("of record:") == 1 and "0.612 [0.581, 0.642]" in html
