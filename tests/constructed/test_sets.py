"""Constructed sets on disk: identical round trip, refusal of corrupt or mismatched sets,
resumable chunked generation."""

from __future__ import annotations

import json

import pytest
import torch

import robustlens.constructed.build as build_module
from robustlens.attacks.evaluate import predict
from robustlens.constructed import (
    build_in_chunks,
    build_robustified,
    load_set,
    robustify,
    save_set,
)
from robustlens.constructed.sets import CARD, TENSORS, ConstructedSet, update_card
from robustlens.errors import ConfigError, DataError
from robustlens.models import model_digest
from tests.lenses.helpers import brightness_images, make_info, trained_cnn
from tests.tolerances import close

INFO = make_info((1, 12, 12), num_classes=3)


def small_set() -> ConstructedSet:
    gen = torch.Generator().manual_seed(0)
    return ConstructedSet(
        torch.rand(5, 1, 12, 12, generator=gen),
        torch.tensor([0, 1, 2, 0, 1]),
        torch.arange(5),
        torch.tensor([1, 2, 3, 4, 0]),
        {"kind": "robustified", "dataset": "toy"},
        {"distance": torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])},
    )


def test_a_saved_set_loads_back_identical(tmp_path):
    data = small_set()
    save_set(tmp_path / "s", data)
    back = load_set(tmp_path / "s", dataset="toy", shape=(1, 12, 12))
    for name in ("images", "labels", "indices", "seeds"):
        torch.testing.assert_close(getattr(back, name), getattr(data, name), rtol=0, atol=0)
    assert list(back.measures) == ["distance"]
    torch.testing.assert_close(back.measures["distance"], data.measures["distance"], rtol=0, atol=0)
    assert back.card["kind"] == "robustified" and back.card["n"] == 5
    assert not list((tmp_path / "s").glob("*.tmp"))


def test_a_measure_needs_one_value_per_image(tmp_path):
    data = small_set()
    data.measures["distance"] = torch.zeros(4)
    with pytest.raises(ConfigError, match="one value per image"):
        save_set(tmp_path / "s", data)
    assert not (tmp_path / "s" / CARD).exists()


def test_corrupt_missing_and_mismatched_sets_are_refused(tmp_path):
    save_set(tmp_path / "s", small_set())
    with pytest.raises(ConfigError, match="made from 'toy', not 'cifar10'"):
        load_set(tmp_path / "s", dataset="cifar10")
    with pytest.raises(ConfigError, match="shape"):
        load_set(tmp_path / "s", shape=(3, 32, 32))
    raw = bytearray((tmp_path / "s" / TENSORS).read_bytes())
    raw[-10] ^= 0xFF
    (tmp_path / "s" / TENSORS).write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt"):
        load_set(tmp_path / "s")
    (tmp_path / "s" / CARD).write_text("{not json")
    with pytest.raises(DataError, match="JSON"):
        load_set(tmp_path / "s")
    with pytest.raises(DataError, match="not a constructed set"):
        load_set(tmp_path / "empty")


def test_chunked_generation_resumes_after_a_crash(tmp_path):
    calls = []

    def make(start, stop, fail_at=None):
        calls.append(start)
        if start == fail_at:
            raise KeyboardInterrupt  # a run killed while making this chunk
        return {"x": torch.arange(start, stop)}

    with pytest.raises(KeyboardInterrupt):
        build_in_chunks(tmp_path, 10, {"a": 1}, lambda s, e: make(s, e, fail_at=4), chunk=2)
    assert calls == [0, 2, 4]
    calls.clear()
    out = build_in_chunks(tmp_path, 10, {"a": 1}, make, chunk=2)
    assert calls == [4, 6, 8]  # chunks 0 and 2 were reused
    torch.testing.assert_close(out["x"], torch.arange(10))
    calls.clear()
    build_in_chunks(tmp_path, 10, {"a": 2}, make, chunk=2)
    assert calls == [0, 2, 4, 6, 8]  # other parameters: start over


def test_robustified_set_records_its_checks(tmp_path):
    net = trained_cnn(INFO)
    data = brightness_images(INFO, 12, seed=4)
    made = build_robustified(
        tmp_path / "r", net, data, model_digest="abc", steps=20, step_size=0.1, chunk=5
    )
    card = json.loads((tmp_path / "r" / CARD).read_text())
    stats = card["statistics"]
    assert stats["relative_distance_mean"] < stats["start_relative_distance_mean"]
    expected = float((predict(net, made.images, 500) == data.labels).float().mean())
    assert stats["source_model_accuracy"] == pytest.approx(expected)
    assert card["model"] == "abc" and card["dataset"] == "toy"
    torch.testing.assert_close(load_set(tmp_path / "r").images, made.images)
    assert not (tmp_path / "r" / ".parts").exists()
    back = load_set(tmp_path / "r")
    assert back.measures["distance"].mean().item() == pytest.approx(stats["relative_distance_mean"])
    assert (back.measures["distance"] < back.measures["start_distance"]).float().mean() > 0.5


def test_a_card_takes_later_checks_without_touching_the_tensors(tmp_path):
    save_set(tmp_path / "s", small_set())
    before = (tmp_path / "s" / TENSORS).read_bytes()
    card = update_card(tmp_path / "s", {"leakage": {"model": "linf", "new_label_fraction": 0.1}})
    back = load_set(tmp_path / "s")  # the hash still matches
    assert back.card["leakage"]["model"] == "linf" and card == back.card
    assert (tmp_path / "s" / TENSORS).read_bytes() == before
    with pytest.raises(ConfigError, match="sha256"):
        update_card(tmp_path / "s", {"sha256": "0"})
    with pytest.raises(DataError, match="not a constructed set"):
        update_card(tmp_path / "empty", {"x": 1})


@pytest.mark.parametrize("seed_mode", ["other-image", "noise"])
def test_a_chunked_build_equals_robustify_on_the_whole_set(tmp_path, seed_mode):
    net = trained_cnn(INFO)
    data = brightness_images(INFO, 11, seed=5)
    whole = robustify(
        net, data.images, data.labels, steps=6, step_size=0.1, seed_mode=seed_mode, seed=3
    )
    made = build_robustified(
        tmp_path / "r", net, data, steps=6, step_size=0.1, seed_mode=seed_mode, seed=3, chunk=4
    )
    assert torch.equal(made.seeds, whole.seeds)
    if seed_mode == "other-image":  # seeds come from the whole set, not only the chunk
        assert (made.seeds[:4] >= 4).any() and not (made.seeds == torch.arange(11)).any()
    # chunks of 4 and one batch of 11 may round differently (1 ulp seen): 6 steps, each a
    # gradient over 144 pixels; the distance goes through the network too, so it gets more
    torch.testing.assert_close(made.images, whole.images, **close(torch.float32, 6 * 144))
    torch.testing.assert_close(
        made.measures["distance"].double(), torch.from_numpy(whole.distance), rtol=1e-3, atol=1e-4
    )


def test_resuming_against_another_model_makes_every_chunk_again(tmp_path, monkeypatch):
    first, second = trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)
    data = brightness_images(INFO, 12, seed=4)
    calls: list[int] = []
    real = build_module.invert

    def counting(model, images, *args, **kwargs):
        calls.append(len(images))
        if fail and len(calls) == 2:
            raise KeyboardInterrupt  # killed while making the second chunk
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(build_module, "invert", counting)
    settings = {"steps": 3, "step_size": 0.1, "chunk": 4}
    fail = True
    with pytest.raises(KeyboardInterrupt):
        build_robustified(tmp_path / "r", first, data, **settings)
    assert len(list((tmp_path / "r" / ".parts").glob("*.safetensors"))) == 1
    fail, calls[:] = False, []
    made = build_robustified(tmp_path / "r", second, data, **settings)
    assert calls == [4, 4, 4]  # the chunk made against the first model was not reused
    assert made.card["model"] == model_digest(second)
    fresh = build_robustified(tmp_path / "fresh", second, data, **settings)
    torch.testing.assert_close(made.images, fresh.images, rtol=0, atol=0)
    # the control: resuming against the same model reuses the finished chunk
    fail, calls[:] = True, []
    with pytest.raises(KeyboardInterrupt):
        build_robustified(tmp_path / "again", first, data, **settings)
    fail, calls[:] = False, []
    build_robustified(tmp_path / "again", first, data, **settings)
    assert calls == [4, 4]
