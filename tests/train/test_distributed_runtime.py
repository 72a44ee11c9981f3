"""The data-parallel pieces that need no process group: how batches are shared between ranks,
how the loss is weighted, what is refused or ignored on the CPU, and what the recipe and card
record (tests/train/test_distributed.py runs two real ranks)."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from torch import nn

from robustlens import distributed
from robustlens.attacks.evaluate import _as_chunks
from robustlens.errors import ConfigError
from robustlens.train import Recipe
from robustlens.train.parallel import Runtime, epoch_seed
from tests.train.helpers import FAST, small_model, stripes

CPU = torch.device("cpu")
ONE = distributed.Rank()


def runtime(rank: int, world: int, recipe: Recipe = FAST) -> Runtime:
    return Runtime.for_run(recipe, CPU, distributed.Rank(rank, world, rank))


@pytest.mark.parametrize(("n", "batch", "world"), [(129, 32, 2), (100, 10, 3), (7, 8, 4)])
def test_the_ranks_shares_make_up_the_unsharded_batches(n, batch, world):
    data = stripes(n, 0)
    recipe = dataclasses.replace(FAST, batch_size=batch)
    _, single = runtime(0, 1, recipe).batches(data, recipe, epoch=3)
    shares = [
        list(runtime(r, world, recipe).batches(data, recipe, epoch=3)[1]) for r in range(world)
    ]
    for i, (x, y, total) in enumerate(single):
        parts = [share[i] for share in shares]
        assert [p[2] for p in parts] == [total] * world  # every rank knows the global size
        assert sum(p[0].shape[0] for p in parts) == total == x.shape[0]
        # the same images as the unsharded batch, rank r holding positions r, r + N, ...
        for r, (xr, yr, _) in enumerate(parts):
            assert torch.equal(xr, x[r::world]) and torch.equal(yr, y[r::world])
    assert all(len(share) == -(-n // batch) for share in shares)


def test_each_rank_draws_its_own_stream_and_one_process_keeps_the_old_one():
    data = stripes(64, 0)
    gen_one, _ = runtime(0, 1).batches(data, FAST, epoch=2)
    old = torch.Generator().manual_seed(epoch_seed(FAST.seed, 2))
    torch.randperm(64, generator=old)  # what ImageSet.batches draws first
    expected = torch.rand(5, generator=old)
    list(_)  # the permutation is drawn when the batches start
    assert torch.equal(torch.rand(5, generator=gen_one), expected)
    draws = [torch.rand(5, generator=runtime(r, 2).batches(data, FAST, 2)[0]) for r in (0, 1)]
    assert not torch.equal(draws[0], draws[1])
    again = torch.rand(5, generator=runtime(1, 2).batches(data, FAST, 2)[0])
    assert torch.equal(again, draws[1])


def test_the_weighted_losses_average_to_the_global_mean():
    """DDP averages the ranks' gradients: the weighted losses must average to the global mean
    (shares of 3, 2 and 0 images of a batch of 5; the empty share adds an exact zero)."""
    torch.manual_seed(0)
    values = torch.rand(5, dtype=torch.float64)
    shares = [values[:3], values[3:], values[:0]]
    world = len(shares)
    weighted = [
        runtime(r, world).weighted(s.mean(), s.unsqueeze(1), s.numel(), 5)
        for r, s in enumerate(shares)
    ]
    assert weighted[2] == 0
    mean = sum(weighted) / world
    assert torch.allclose(mean, values.mean(), rtol=8 * torch.finfo(torch.float64).eps)
    mean = values.mean()
    assert runtime(0, 1).weighted(mean, values, 5, 5) is mean  # one process: as it was


def test_bf16_is_refused_on_the_cpu():
    with pytest.raises(ConfigError, match=r"bf16.*CUDA"):
        runtime(0, 1, dataclasses.replace(FAST, precision="bf16"))


def test_sync_batchnorm_is_refused_for_several_cpu_processes_only():
    recipe = dataclasses.replace(FAST, sync_batchnorm=True)
    with pytest.raises(ConfigError, match="SyncBatchNorm runs on GPUs only"):
        runtime(0, 2, recipe)
    alone = runtime(0, 1, recipe)  # one process: nothing to synchronise
    assert alone.card()["sync_batchnorm"] is False
    model, net = alone.prepare(small_model())
    assert net is model and not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def test_channels_last_is_ignored_on_the_cpu_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="robustlens.train.parallel"):
        chosen = runtime(0, 1, dataclasses.replace(FAST, channels_last=True))
    assert "channels_last ignored" in caplog.text
    card = chosen.card()
    assert card == {
        "device": "cpu",
        "world_size": 1,
        "backend": None,
        "precision": "fp32",
        "channels_last": False,
        "sync_batchnorm": False,
    }
    x = torch.rand(2, 1, 8, 8)
    assert chosen.layout(x) is x


def test_runtime_fields_stay_out_of_the_digest_at_their_defaults():
    plain = Recipe(epochs=3)
    assert "precision" not in plain.to_dict() and "sync_batchnorm" not in plain.to_dict()
    bf16 = dataclasses.replace(plain, precision="bf16")
    assert bf16.to_dict()["precision"] == "bf16" and bf16.digest() != plain.digest()
    assert Recipe.from_dict(bf16.to_dict()) == bf16
    with pytest.raises(ConfigError, match="precision"):
        Recipe(precision="fp16")


def test_sync_batchnorm_converts_and_reverts():
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
    plain = distributed.revert_sync_batchnorm(synced)
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in plain.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules()) == sum(
        isinstance(m, nn.BatchNorm2d) for m in small_model().modules()
    )
    after = plain.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_evaluation_chunks_go_round_robin():
    images, labels = torch.rand(300, 1, 8, 8), torch.arange(300) % 2
    n, chunks = _as_chunks((images, labels), 64, CPU, distributed.Rank(1, 2, 1))
    got = list(chunks)
    assert n == 300 and [k for k, _, _ in got] == [1, 3]
    assert torch.equal(got[1][1], images[192:256]) and torch.equal(got[1][2], labels[192:256])


def test_one_rank_is_the_identity():
    assert distributed.current() == ONE and not ONE.sharded and ONE.is_main
    assert distributed.gather_by_index({2: "c", 0: "a", 1: "b"}, ONE) == ["a", "b", "c"]
    assert distributed.all_sum([1.5, 2.0], ONE) == [1.5, 2.0]
    model = small_model()
    assert distributed.wrap(model, CPU, ONE) is model
    if not distributed.launched():
        assert distributed.init_from_env("cpu") == (ONE, CPU)


def test_bf16_wraps_the_forward_pass_only_and_finish_undoes_it():
    """On the CPU (where for_run refuses bf16, so the runtime is built by hand): the forward
    runs under autocast and returns float32 logits, with bf16's rounding (relative 2⁻⁸ per
    operation, far above float32's); finish() restores the class's forward."""
    model = small_model().eval()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        exact = model(x)
    chosen = Runtime(ONE, CPU, "bf16", channels_last=False, sync_batchnorm=False)
    wrapped, net = chosen.prepare(model)
    assert net is wrapped and "forward" in vars(wrapped)
    with torch.no_grad():
        mixed = wrapped(x)
    assert mixed.dtype == torch.float32 and not torch.equal(mixed, exact)
    bf16 = torch.finfo(torch.bfloat16).eps
    torch.testing.assert_close(mixed, exact, rtol=0, atol=64 * bf16 * float(exact.abs().max()))
    plain = chosen.finish(wrapped)
    assert "forward" not in vars(plain)
    with torch.no_grad():
        assert torch.equal(plain(x), exact)
