"""Representation inversion (Springer et al. §3.3): it must get closer to the target's
representation from its seed, with Table 4's schedule and the engine's box."""

from __future__ import annotations

import math

import pytest
import torch

from robustlens.constructed.inversion import (
    default_schedule,
    derangement,
    representations,
    robustify,
    seed_assignment,
    seed_images,
)
from robustlens.errors import ConfigError
from tests.lenses.helpers import brightness_images, make_info, trained_cnn

INFO = make_info((1, 12, 12), num_classes=3)
DATA = brightness_images(INFO, 24, seed=3)


def test_table_4_schedule_scaled_to_resolution():
    # Table 4's rows: CIFAR-10 (3·32·32) and ImageNet-9 at 64 × 64 (3·64·64), §3.4 / App. A.1
    assert default_schedule(3 * 32 * 32) == (400, 0.05)
    assert default_schedule(3 * 64 * 64) == (200, 0.1)
    steps, step = default_schedule(784)
    assert steps == 400 and step == pytest.approx(0.05 * math.sqrt(784 / 3072))
    # the rows agree on moving the step like an L2 budget: 0.05 at 3072 is 0.1 at 12288
    assert 0.05 * math.sqrt(3 * 64 * 64 / 3072) == pytest.approx(0.1)
    # larger inputs take the ImageNet-9 row, moved from 64 × 64 (not from 224 × 224)
    steps, step = default_schedule(3 * 224 * 224)
    assert steps == 200 and step == pytest.approx(0.1 * 224 / 64)
    assert default_schedule(6143)[0] == 400 and default_schedule(6144)[0] == 200


def test_derangement_moves_every_index():
    gen = torch.Generator().manual_seed(0)
    for n in (2, 5, 64):
        perm = derangement(n, gen)
        assert sorted(perm.tolist()) == list(range(n)) and not (perm == torch.arange(n)).any()


def test_inversion_reduces_the_distance_it_reports_and_stays_in_the_box():
    net = trained_cnn(INFO)
    result = robustify(net, DATA.images, DATA.labels, steps=60, step_size=0.1, batch_size=10)
    assert result.images.shape == DATA.images.shape
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert (result.distance <= result.start_distance + 1e-9).all()
    assert result.distance.mean() < 0.5 * result.start_distance.mean()
    # the reported distance is the real one
    target = representations(net, DATA.images)
    reached = (representations(net, result.images) - target).norm(dim=1) / target.norm(dim=1)
    torch.testing.assert_close(
        torch.from_numpy(result.distance).float(), reached, rtol=1e-4, atol=1e-5
    )
    # each image started from another image of the set
    assert not (result.seeds == torch.arange(len(DATA))).any()


def test_noise_seeds_and_bad_settings():
    net = trained_cnn(INFO)
    result = robustify(net, DATA.images[:4], DATA.labels[:4], steps=3, seed_mode="noise")
    assert (result.seeds == -1).all()
    with pytest.raises(ConfigError, match="seed mode"):
        robustify(net, DATA.images, DATA.labels, seed_mode="zeros")
    with pytest.raises(ConfigError, match="steps"):
        robustify(net, DATA.images, DATA.labels, steps=0)


def test_seeds_do_not_depend_on_how_the_set_is_cut():
    images = DATA.images
    for mode in ("other-image", "noise"):
        assignment = seed_assignment(len(images), mode, seed=5)
        whole = seed_images(images, assignment, 0, len(images), seed=5)
        pieces = torch.cat([seed_images(images, assignment, a, min(a + 7, 24), 5)
                            for a in range(0, 24, 7)])  # fmt: skip
        torch.testing.assert_close(pieces, whole, rtol=0, atol=0)
        if mode == "noise":
            assert (assignment == -1).all() and whole.min() >= 0 and whole.max() <= 1
            other = seed_images(images, assignment, 0, len(images), seed=6)
            assert not torch.equal(other, whole)  # the noise follows the seed
        else:
            torch.testing.assert_close(whole, images[assignment], rtol=0, atol=0)
