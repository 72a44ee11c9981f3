"""Zero- and negative-robust sets (Springer et al. §3.2): targeted PGD toward new labels."""

from __future__ import annotations

import json
import math

import pytest
import torch

from robustlens.constructed import build_targeted, load_set, targeted_examples
from robustlens.constructed.sets import CARD
from robustlens.constructed.targeted import new_labels
from robustlens.errors import ConfigError
from tests.lenses.helpers import brightness_images, make_info, trained_cnn

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


def test_default_budget_is_table_4_moved_to_the_resolution():
    net = trained_cnn(INFO)
    result = targeted_examples(net, DATA.images[:4], DATA.labels[:4], "zero", 3, steps=5)
    eps = 0.5 * math.sqrt(144 / 3072)
    delta = (result.images - DATA.images[:4]).flatten(1).norm(dim=1)
    assert torch.all(delta <= eps + 1e-5)


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
