"""Zero- and negative-robust sets (Springer et al. §3.2): targeted PGD toward new labels."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from robustlens.constructed import build_targeted, load_set, targeted_examples
from robustlens.constructed.sets import CARD
from robustlens.constructed.targeted import leakage, new_labels
from robustlens.errors import ConfigError
from tests.lenses.helpers import brightness_images, make_info, trained_cnn
from tests.tolerances import close

INFO = make_info((1, 12, 12), num_classes=3)
DATA = brightness_images(INFO, 30, seed=7)


def test_new_labels_per_mode():
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 2])
    source, y = new_labels(labels, "negative", 3, gen)
    assert source.tolist() == [0, 1, 2, 3] and y.tolist() == [1, 2, 0, 0]
    source, y = new_labels(labels, "zero-all", 3, gen)
    assert source.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert y.tolist() == [0, 1, 2] * 4
    _, y = new_labels(torch.zeros(3000, dtype=torch.long), "zero", 3, gen)
    counts = torch.bincount(y, minlength=3).float() / 3000
    assert torch.all((counts - 1 / 3).abs() < 0.04)  # uniform over the classes
    with pytest.raises(ConfigError, match="mode"):
        new_labels(labels, "positive", 3, gen)


def test_a_targeted_attack_reaches_its_target_where_that_is_easy():
    # brightness decides the class: a large L2 budget moves any image to any band
    net = trained_cnn(INFO)
    result = targeted_examples(
        net, DATA.images, DATA.labels, "negative", 3, eps=6.0, steps=60, step_size=0.5
    )
    assert result.success.float().mean() > 0.9
    assert torch.equal(result.labels, (DATA.labels + 1) % 3)
    delta = (result.images - DATA.images).flatten(1).norm(dim=1)
    assert torch.all(delta <= 6.0 + 1e-4) and result.images.min() >= 0 and result.images.max() <= 1


def test_default_budget_is_table_4_unscaled():
    # Table 4 keeps ε = 0.5 (steps of 0.1) for 3072 and 12288 values alike: not rescaled to
    # the 144 values here (which would give 0.5 · √(144 / 3072) ≈ 0.11)
    net = trained_cnn(INFO)
    result = targeted_examples(net, DATA.images[:6], DATA.labels[:6], "negative", 3, steps=12)
    delta = (result.images - DATA.images[:6]).flatten(1).norm(dim=1)
    assert torch.all(delta <= 0.5 + 1e-5)
    assert delta.max() > 0.45  # 12 steps of 0.1 reach the 0.5 ball, not a smaller one
    with pytest.raises(ConfigError, match="ε > 0"):
        targeted_examples(net, DATA.images[:2], DATA.labels[:2], "zero", 3, eps=0.0)


def test_a_chunked_build_equals_one_call_on_the_whole_set(tmp_path):
    # the random new labels are drawn for the whole set once, not per chunk
    net = trained_cnn(INFO)
    whole = targeted_examples(
        net, DATA.images, DATA.labels, "zero", 3, eps=1.0, steps=4, step_size=0.3, seed=2
    )
    made = build_targeted(
        tmp_path / "z", net, DATA, "zero", eps=1.0, steps=4, step_size=0.3, seed=2, chunk=7
    )
    assert torch.equal(made.labels, whole.labels) and torch.equal(made.seeds, whole.source)
    # chunks of 7 and one batch may round differently: 4 steps, each a gradient over 144 pixels
    torch.testing.assert_close(made.images, whole.images, **close(torch.float32, 4 * 144))


class _ReadsThePixel(nn.Module):
    """Predicts the class written (as k / 10) into the first pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = (x[:, 0, 0, 0] * 10).round().long()
        return nn.functional.one_hot(k, 3).float() * self.scale


def test_leakage_counts_new_and_original_labels():
    images = torch.zeros(10, 1, 4, 4)
    predicted = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    images[:, 0, 0, 0] = predicted / 10
    new = torch.tensor([0, 1, 2, 1, 2, 0, 1, 2, 0, 1])  # agrees on the first 3
    original = torch.tensor([2, 0, 1, 0, 1, 2, 0, 1, 2, 1])  # agrees on 3 … 8
    out = leakage(_ReadsThePixel(), images, new, original, batch_size=3)
    assert out == {
        "new_label_fraction": pytest.approx(0.3),
        "original_label_fraction": pytest.approx(0.6),
        "examples": 10,
    }
    with pytest.raises(ConfigError, match="one new and one original label"):
        leakage(_ReadsThePixel(), images, new[:4], original)


def test_built_set_records_success_and_labels(tmp_path):
    net = trained_cnn(INFO)
    made = build_targeted(
        tmp_path / "z", net, DATA, "zero-all", eps=6.0, steps=30, step_size=0.5, chunk=10
    )
    card = json.loads((tmp_path / "z" / CARD).read_text())
    assert card["kind"] == "zero-robust" and card["statistics"]["examples"] == 90
    assert card["statistics"]["label_distribution"] == [30, 30, 30]
    assert 0.5 < card["statistics"]["attack_success_rate"] <= 1.0
    back = load_set(tmp_path / "z", dataset="toy", shape=(1, 12, 12))
    torch.testing.assert_close(back.labels, made.labels)
    assert back.seeds.tolist() == [i for i in range(30) for _ in range(3)]
