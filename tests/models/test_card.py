"""Model cards: JSON round trip and validation with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustlens.errors import CheckpointError
from robustlens.models import CARD_FORMAT, ModelCard, build_model

from .helpers import FMNIST

PGD = {
    "name": "pgd",
    "norm": "linf",
    "eps": 0.1,
    "steps": 20,
    "step_size": 0.01,
    "restarts": 1,
    "random_start": True,
    "library": "robustlens 0.1.0.dev0",
}


def _card() -> ModelCard:
    model = build_model("small-cnn", FMNIST, widths=(4, 8, 8))
    card = ModelCard.for_model(
        model,
        dataset=FMNIST,
        recipe={"method": "pgd", "norm": "linf", "eps": 0.1, "steps": 7, "epochs": 2},
        seed=7,
    )
    card.add_metric("clean_accuracy", 0.91, n=1000)
    card.add_metric("robust_accuracy", 0.72, n=1000, attack=PGD)
    return card


def test_describes_the_model() -> None:
    card = _card()
    assert card.format == CARD_FORMAT
    assert card.arch == "small-cnn" and card.dataset == "fashion-mnist"
    assert card.input_shape == (1, 28, 28) and card.num_classes == 10
    assert card.mean == pytest.approx((0.286,)) and card.std == pytest.approx((0.353,))
    assert card.arch_kwargs["widths"] == [4, 8, 8]
    assert card.versions["torch"] and card.created.endswith("+00:00")
    assert card.metric("robust_accuracy")["attack"]["eps"] == 0.1
    assert card.metric("clean_accuracy")["attack"] is None


def test_json_round_trip_is_exact() -> None:
    card = _card()
    text = card.to_json()
    data = json.loads(text)
    assert next(iter(data)) == "format"
    assert ModelCard.from_json(text) == card


def test_notes_accumulate() -> None:
    card = _card()
    card.add_note("first")
    card.add_note("second")
    assert card.notes == "first\nsecond"


def _broken(**changes: object) -> str:
    data = _card().to_dict()
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"format": "robustlens-model-card/99"}, "unknown model card format"),
        ({"format": ...}, "unknown model card format None"),
        ({"arch": ...}, "missing required field \\['arch'\\]"),
        ({"mean": ..., "std": ...}, "missing required fields"),
        ({"num_classes": "ten"}, "num_classes"),
        ({"input_shape": [1, 28]}, "input_shape"),
        ({"mean": [0.1, 0.2]}, "2 values for 1 channels"),
        ({"weights_sha256": "abc"}, "64 lowercase hex"),
        ({"metrics": [{"name": "x"}]}, "numeric value"),
        ({"colour": "red"}, "unknown fields \\['colour'\\]"),
        ({"recipe": [1, 2]}, "recipe must be a dict"),
    ],
)
def test_invalid_cards_raise_checkpoint_errors(changes: dict, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        ModelCard.from_json(_broken(**changes))


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(_broken(arch=...))
    with pytest.raises(CheckpointError, match=f"model card {path}: missing"):
        ModelCard.read(path)
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ModelCard.read(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ModelCard.read(tmp_path / "absent.json")
