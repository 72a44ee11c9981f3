"""A constructed set whose files were edited by hand is one DataError, never a traceback."""

from __future__ import annotations

import json

import pytest
import torch

from robustlens.constructed.sets import ConstructedSet, load_set, save_set, update_card
from robustlens.errors import DataError


@pytest.fixture
def saved(tmp_path):
    n = 3
    data = ConstructedSet(
        torch.rand(n, 1, 4, 4), torch.arange(n), torch.arange(n), torch.arange(n),
        {"kind": "robustified", "dataset": "digits"},
    )  # fmt: skip
    return save_set(tmp_path / "set", data)


def edit_card(folder, **changes):
    card = json.loads((folder / "card.json").read_text())
    card.update(changes)
    (folder / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n": 30}, "says the set holds 30 images"),
        ({"n": "3"}, "n = '3' is not a count"),
        ({"image_shape": 5}, "image_shape = 5 is not"),
        ({"image_shape": [1, 4]}, "image_shape = [1, 4] is not"),
        ({"sha256": None}, "no sha256"),
        ({"format": 2}, "not a robustlens constructed-set card"),
    ],
)
def test_an_edited_card_is_one_clear_error(saved, changes, message):
    edit_card(saved, **changes)
    with pytest.raises(DataError) as err:
        load_set(saved)
    assert message in str(err.value)
    assert "construct the set again" in str(err.value)


@pytest.mark.parametrize("text", [b"\xff\xfe{", b"[1, 2]", b'"a string"', b"[" * 100_000])
def test_a_card_that_is_not_a_json_object_is_one_clear_error(saved, text):
    (saved / "card.json").write_bytes(text)
    with pytest.raises(DataError, match=r"card\.json"):
        load_set(saved)
    with pytest.raises(DataError, match=r"card\.json"):
        update_card(saved, {"leakage": {}})


def test_edited_tensors_fail_their_hash(saved):
    with (saved / "images.safetensors").open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    with pytest.raises(DataError, match="sha256 differs"):
        load_set(saved)


def test_an_untouched_set_loads(saved):
    loaded = load_set(saved, dataset="digits", shape=(1, 4, 4))
    assert loaded.images.shape == (3, 1, 4, 4) and loaded.card["n"] == 3
