"""The latent lens (Carletti et al. 2022, §3.3): retraining the linear head on natural data."""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest
import torch

from robustlens.attacks import L2, PGD, Linf, robust_accuracy
from robustlens.errors import ConfigError
from robustlens.lenses import get_lens, latent
from robustlens.lenses.latent import LatentParams, compute, correct_name, retrain_head
from robustlens.lenses.output import TIDY_COLUMNS
from robustlens.params import invalid
from robustlens.proportions import mcnemar
from tests.lenses.helpers import (
    TOY,
    brightness_images,
    check_intervals,
    correct,
    fit_full_batch,
    make_ctx,
    rows,
    small_cnn,
    study_model,
    value,
)

INFO = TOY
FAST = LatentParams(epochs=5, batch_size=32, attack_steps=10)


# images of varied brightness labelled by brightness tertile (learnable from features)
TRAIN = brightness_images(INFO, 96, seed=10, split="train")
TEST = brightness_images(INFO, 40, seed=11, split="test")


class SplitLoader:
    """ctx.load_split that serves TRAIN and records how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []

    def __call__(self, split: str, n: int | None):
        self.calls.append((split, n))
        assert split == "train"
        return TRAIN if n is None else TRAIN.take(torch.arange(n))


def snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def retrained_copy(net, train, params: LatentParams, seed: int):
    """The retrained model built independently of the lens: same features, new head."""
    with torch.no_grad():
        feats = net.features(train.images)
    head = retrain_head(feats, train.labels, net.num_classes, params, seed)
    other = copy.deepcopy(net)
    other.head.load_state_dict(head.state_dict())
    return other.eval()


@pytest.fixture
def record_copies(monkeypatch):
    """Record the models ``latent.compute`` deep-copies (its retrained model)."""
    made = []

    def deepcopy(obj, memo=None):
        out = copy.deepcopy(obj, memo)
        made.append(out)
        return out

    monkeypatch.setattr(latent, "copy", types.SimpleNamespace(deepcopy=deepcopy))
    return made


# --------------------------------------------------------------------------- retrain_head


def separable(n: int = 240, dim: int = 6, classes: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(dim, classes, generator=gen)
    x = torch.randn(n * 3, dim, generator=gen)
    scores = x @ w
    top2 = scores.topk(2, dim=1).values
    keep = (top2[:, 0] - top2[:, 1]) > 0.5  # a margin, so a linear head can fit all points
    x, y = x[keep][:n], scores[keep][:n].argmax(1)
    assert len(y) == n and len(set(y.tolist())) == classes
    return x, y


def test_retrain_head_fits_linearly_separable_features():
    x, y = separable()
    head = retrain_head(x, y, 4, LatentParams(epochs=20, batch_size=32), seed=0)
    assert isinstance(head, torch.nn.Linear)
    assert head.in_features == 6 and head.out_features == 4
    with torch.no_grad():
        acc = (head(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.95


def test_retrain_head_is_deterministic_for_a_seed():
    x, y = separable(seed=1)
    params = LatentParams(epochs=3, batch_size=50)
    torch.manual_seed(123)
    a = retrain_head(x, y, 4, params, seed=7)
    torch.manual_seed(456)  # the global state must not matter
    _ = torch.rand(10)
    b = retrain_head(x, y, 4, params, seed=7)
    c = retrain_head(x, y, 4, params, seed=8)
    for key, value_a in a.state_dict().items():
        assert torch.equal(value_a, b.state_dict()[key])
    assert not torch.equal(a.weight, c.weight)


# --------------------------------------------------------------------------- compute


def test_compute_natural_model(record_copies):
    net = small_cnn(INFO, seed=0)
    before = snapshot(net)
    loader = SplitLoader()
    params = LatentParams(epochs=5, batch_size=32, train_n=64)
    model = study_model(net, "nat", recipe={"method": "natural"})
    result = compute(model, TEST, params, make_ctx(INFO, loader, seed=3))
    frame = result.tables["latent"]

    assert loader.calls == [("train", 64)]
    assert list(frame.columns[: len(TIDY_COLUMNS)]) == list(TIDY_COLUMNS)
    assert set(frame.metric) == {"natural_accuracy"}  # no robust rows
    assert set(frame.setting) == {"original", "retrained", "retrained - original"}
    assert set(frame.model) == {"nat"} and set(frame.layer) == {"head"}
    assert not any(k.startswith("robust/") for k in result.arrays)
    assert len(result.notes) == 1 and "nat" in result.notes[0] and "natural" in result.notes[0]

    original = correct(net, TEST)
    np.testing.assert_array_equal(result.arrays["natural/original"], original)
    assert value(frame, setting="original", metric="natural_accuracy") == original.mean()

    other = retrained_copy(net, TRAIN.take(torch.arange(64)), params, seed=3)
    retrained = correct(other, TEST)
    np.testing.assert_array_equal(result.arrays["natural/retrained"], retrained)
    assert value(frame, setting="retrained", metric="natural_accuracy") == pytest.approx(
        retrained.mean()
    )
    delta = value(frame, setting="retrained - original", metric="natural_accuracy")
    assert delta == pytest.approx(retrained.mean() - original.mean())
    assert (frame.n == len(TEST)).all()
    assert result.arrays["train_eps"].tolist() == [0.0]

    # the original model is untouched; the retrained one shares its feature extractor only
    after = snapshot(net)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    (copied,) = record_copies
    assert copied is not net
    with torch.no_grad():
        assert torch.equal(copied.features(TEST.images), net.features(TEST.images))
    assert not torch.equal(copied.head.weight, net.head.weight)
    assert torch.equal(copied.head.weight, other.head.weight)
    assert torch.equal(copied.head.bias, other.head.bias)
    assert not copied.training


ROBUST_RECIPE = {"method": "pgd", "norm": "linf", "eps": 0.1, "steps": 10}


@pytest.fixture(scope="module")
def trained_net():
    """A small CNN fitted to TRAIN in a few full-batch steps (accurate, and not robust)."""
    return fit_full_batch(small_cnn(INFO, seed=1), TRAIN, steps=30, lr=0.05)


def test_compute_robust_model_matches_independent_pgd(record_copies, trained_net):
    net = copy.deepcopy(trained_net)
    before = snapshot(net)
    model = study_model(net, "rob", recipe=ROBUST_RECIPE)
    assert not model.is_natural
    ctx = make_ctx(INFO, SplitLoader(), seed=5)
    result = compute(model, TEST, FAST, ctx)
    frame = result.tables["latent"]
    assert result.notes == []
    assert set(frame.metric) == {"natural_accuracy", "robust_accuracy"}
    assert len(frame) == 6
    metrics = ("natural_accuracy", "robust_accuracy")
    assert check_intervals(frame, metrics, ("retrained - original",)) == 4
    for metric, kind in zip(metrics, ("natural", "robust"), strict=True):
        change = rows(frame, setting="retrained - original", metric=metric).iloc[0]
        expected = mcnemar(
            result.arrays[correct_name(kind, "retrained")],
            result.arrays[correct_name(kind, "original")],
        )
        assert change.p_value == expected.p_value and change.test.startswith("McNemar")

    other = retrained_copy(net, TRAIN, FAST, seed=5)
    expected = {}
    for setting, m in (("original", net), ("retrained", other)):
        attack = PGD(m, Linf(0.1), steps=FAST.attack_steps, step_size=None, seed=5)
        ref = robust_accuracy(m, TEST, attack)
        expected[setting] = ref.robust_accuracy
        np.testing.assert_array_equal(result.arrays[f"robust/{setting}"], ref.robust.numpy())
        row = rows(frame, setting=setting, metric="robust_accuracy")
        assert float(row.value.iloc[0]) == pytest.approx(ref.robust_accuracy)
        assert float(row.eps.iloc[0]) == 0.1 and row.norm.iloc[0] == "linf"
        assert int(row.n.iloc[0]) == len(TEST)
        natural = value(frame, setting=setting, metric="natural_accuracy")
        assert natural == pytest.approx(correct(m, TEST).mean())
        assert ref.robust_accuracy <= natural + 1e-6
    assert value(frame, setting="retrained - original", metric="robust_accuracy") == (
        pytest.approx(expected["retrained"] - expected["original"])
    )
    # PGD at ε = 0.1 must actually bite on this toy model, or the comparison proves little
    assert expected["original"] < value(frame, setting="original", metric="natural_accuracy")
    assert result.arrays["train_eps"].tolist() == [0.1]

    after = snapshot(net)
    for key in before:
        assert torch.equal(before[key], after[key]), key
    (copied,) = record_copies
    with torch.no_grad():
        assert torch.equal(copied.features(TEST.images), net.features(TEST.images))


def test_compute_l2_model_with_a_given_step_size(trained_net):
    net = trained_net
    model = study_model(net, "l2", recipe={"method": "fgsm-rs", "norm": "l2", "eps": 0.5})
    params = LatentParams(epochs=2, batch_size=64, attack_steps=2, attack_step_size=0.2)
    result = compute(model, TEST, params, make_ctx(INFO, SplitLoader(), seed=0))

    def reference(steps: int, step_size: float):
        attack = PGD(net, L2(0.5), steps=steps, step_size=step_size, random_start=True, seed=0)
        return robust_accuracy(net, TEST, attack).robust.numpy()

    ref = reference(2, 0.2)
    # the comparison is sensitive to both settings in this example
    assert (reference(3, 0.2) != ref).any() and (reference(2, 0.1) != ref).any()
    np.testing.assert_array_equal(result.arrays["robust/original"], ref)
    frame = result.tables["latent"]
    assert value(frame, setting="original", metric="robust_accuracy") == pytest.approx(ref.mean())
    robust = rows(frame, metric="robust_accuracy").set_index("setting")
    assert robust.loc[["original", "retrained"], "norm"].tolist() == ["l2", "l2"]
    assert robust.loc[["original", "retrained"], "eps"].tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    "recipe",
    [None, {"method": "natural", "norm": "linf", "eps": 0.3}, {"method": "pgd", "eps": 0.0}],
    ids=["no-recipe", "natural-with-eps", "pgd-eps-0"],
)
def test_models_without_a_training_eps_get_no_robust_rows(recipe):
    net = small_cnn(INFO, seed=0)
    model = study_model(net, "n", recipe=recipe or {})
    result = compute(model, TEST, LatentParams(epochs=1), make_ctx(INFO, SplitLoader()))
    assert set(result.tables["latent"].metric) == {"natural_accuracy"}
    assert len(result.notes) == 1


def test_compute_is_deterministic():
    net = small_cnn(INFO, seed=1)
    model = study_model(net, "rob", recipe=ROBUST_RECIPE)
    params = LatentParams(epochs=2, batch_size=32, attack_steps=3)
    a = compute(model, TEST, params, make_ctx(INFO, SplitLoader(), seed=9))
    b = compute(model, TEST, params, make_ctx(INFO, SplitLoader(), seed=9))
    assert a.tables["latent"].equals(b.tables["latent"])


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": 0}, {"batch_size": 0}, {"attack_steps": 0}, {"lr": 0.0}, {"lr": -0.1}],
)
def test_invalid_params_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        LatentParams(**kwargs)


def test_resolve_params_accepts_valid_overrides():
    spec = get_lens("latent")
    p = spec.resolve_params(
        INFO, {"epochs": 3, "lr": 1, "train_n": None, "attack_step_size": 0.01}, "w"
    )
    assert p == LatentParams(epochs=3, lr=1.0, train_n=None, attack_step_size=0.01)
    assert isinstance(p.lr, float)
    assert spec.resolve_params(INFO, {"train_n": 500}, "w").train_n == 500
    assert spec.resolve_params(INFO, {}, "w") == LatentParams()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"epochs": "15"}, "w.epochs"),
        ({"epochs": 2.0}, "w.epochs"),
        ({"lr": "fast"}, "w.lr"),
        ({"lr": float("inf")}, "w.lr"),
        ({"batch_size": False}, "w.batch_size"),
    ],
)
def test_resolve_params_rejects_wrong_types_naming_the_key(overrides, named):
    with pytest.raises(ConfigError) as err:
        get_lens("latent").resolve_params(INFO, overrides, "w")
    assert named in str(err.value)


def test_resolve_params_rejects_unknown_keys_and_bad_values():
    spec = get_lens("latent")
    with pytest.raises(ConfigError, match="epoch") as err:
        spec.resolve_params(INFO, {"epoch": 3}, "w")
    assert "unknown" in str(err.value) and "'latent'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        spec.resolve_params(INFO, {"epochs": 0}, "w")
    assert str(err.value) == str(invalid("", "w.epochs", 0, "a whole number ≥ 1"))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"train_n": "abc"}, "w.train_n"),
        ({"train_n": 2.5}, "w.train_n"),
        ({"attack_step_size": "big"}, "w.attack_step_size"),
    ],
)
def test_resolve_params_rejects_wrong_types_for_optional_params(overrides, named):
    with pytest.raises(ConfigError) as err:
        get_lens("latent").resolve_params(INFO, overrides, "w")
    assert named in str(err.value)
