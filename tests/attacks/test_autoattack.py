"""AutoAttack: the versions' sequences, robust-only passes, the worst case over the sequence,
the per-point record of which attack broke it, the re-check of every break, and clear errors."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from torch import nn

from robustlens.attacks import autoattack
from robustlens.attacks.apgd import APGD
from robustlens.attacks.autoattack import CLEAN, ROBUST, AutoAttack, AutoAttackResult
from robustlens.attacks.threat import Linf
from robustlens.errors import ConfigError
from tests.attacks.tiny_models import TinyCNN


@pytest.fixture(autouse=True)
def small_budgets(monkeypatch):
    """The authors' budgets (100 iterations, 5 000 queries) cost minutes on the CPU; the
    sequence's logic is the same at 20 iterations and 200 queries."""
    monkeypatch.setattr(autoattack, "STEPS", 20)
    monkeypatch.setattr(autoattack, "QUERIES", 200)


def images(n: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(seed))


def model_and_labels(n: int = 24) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tiny CNN and labels that make about half the points correct to begin with."""
    net = TinyCNN(channels=1, classes=10, seed=0).eval()
    x = images(n)
    with torch.no_grad():
        pred = net(x).argmax(1)
    labels = pred.clone()
    labels[::2] = (pred[::2] + 1) % 10  # every other point misclassified from the start
    return net, x, labels


@pytest.mark.parametrize(
    ("version", "names"),
    [
        ("standard", ["apgd-ce", "apgd-t", "fab-t", "square"]),
        ("plus", ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]),
        ("rand", ["apgd-ce", "apgd-dlr"]),
    ],
)
def test_each_version_runs_the_authors_sequence(version, names):
    attack = AutoAttack(TinyCNN(), "linf", 0.1, version=version)
    assert [name for name, _ in attack.components()] == names
    assert attack.describe()["components"] == names


def test_plus_restarts_and_rand_averages_the_gradient_over_draws():
    plus = dict(AutoAttack(TinyCNN(), "l2", 0.5, version="plus").components())
    assert plus["apgd-ce"].restarts == plus["apgd-dlr"].restarts == 5
    assert plus["fab"].restarts == 5
    rand = dict(AutoAttack(TinyCNN(), "linf", 0.1, version="rand").components())
    assert rand["apgd-ce"].eot == rand["apgd-dlr"].eot == 20


@pytest.mark.parametrize(
    ("norm", "version", "match"),
    [
        ("l1", "plus", "not defined in L1"),
        ("l3", "standard", "unknown norm"),
        ("linf", "fast", "unknown AutoAttack version"),
    ],
)
def test_unsupported_settings_are_one_clear_error(norm, version, match):
    with pytest.raises(ConfigError, match=match):
        AutoAttack(TinyCNN(), norm, 0.1, version=version)


def test_clean_errors_are_not_attacked_and_every_break_is_real():
    net, x, y = model_and_labels()
    eps = 0.05
    result = AutoAttack(net, "linf", eps, seed=0).run(x, y)
    assert isinstance(result, AutoAttackResult)
    assert len(result.broken_by) == len(x)
    for i, name in enumerate(result.broken_by):
        if i % 2 == 0:
            assert name == CLEAN and bool(result.success[i])
            assert torch.equal(result.adversarial[i], x[i])
    delta = result.adversarial - x
    assert float(delta.abs().max()) <= eps * (1 + 1e-6)
    assert float(result.adversarial.min()) >= 0 and float(result.adversarial.max()) <= 1
    with torch.no_grad():
        pred = net(result.adversarial).argmax(1)
    assert torch.equal(result.success, pred != y)
    assert all(
        (name == ROBUST) == (not bool(s))
        for name, s in zip(result.broken_by, result.success, strict=True)
    )


def test_the_sequence_is_the_worst_case_of_its_attacks():
    """A point robust to AutoAttack is robust to its first attack run alone on the same
    points with the same seed (the first component sees exactly the clean-correct points)."""
    net, x, y = model_and_labels(40)
    eps = 0.08
    full = AutoAttack(net, "linf", eps, seed=3).run(x, y)
    with torch.no_grad():
        correct = net(x).argmax(1) == y
    alone = APGD(net, Linf(eps), autoattack.STEPS, loss="ce", seed=3).run(x[correct], y[correct])
    broken_alone = torch.zeros_like(correct)
    broken_alone[correct.nonzero().flatten()] = alone.success
    assert bool((full.success | ~broken_alone).all())  # broken alone ⇒ broken by the sequence
    assert int(full.success.sum()) >= int((~correct).sum() + alone.success.sum())


def test_each_later_attack_sees_only_the_points_still_robust(monkeypatch):
    net, x, y = model_and_labels()
    seen: list[tuple[str, int]] = []
    attack = AutoAttack(net, "linf", 0.1)
    parts = attack.components()
    for name, component in parts:

        def recording(xs, ys, targets=None, *, batch_size=None, _run=component.run, _name=name):
            seen.append((_name, xs.shape[0]))
            return _run(xs, ys, targets, batch_size=batch_size)

        component.run = recording
    monkeypatch.setattr(attack, "components", lambda: parts)
    counts = attack.run(x, y).counts()
    left = len(x) - counts.get(CLEAN, 0)
    assert seen and seen[0] == ("apgd-ce", left)
    for (name, size), (_, next_size) in pairwise(seen):
        assert next_size == size - counts.get(name, 0)


def test_a_break_that_does_not_hold_is_counted_robust():
    """The final re-check: an adversarial outside the ball (or no longer misclassified) is
    returned as the clean image and the point counts robust."""
    net, x, y = model_and_labels(6)
    attack = AutoAttack(net, "linf", 0.05)
    far = (x + 0.5).clamp(0, 1)
    attacked = torch.ones(len(x), dtype=torch.bool)
    bad = attack._unconfirmed(x, far, y, attacked, None)
    assert set(bad.tolist()) == set(range(len(x)))  # every δ is far outside ε = 0.05
    same = attack._unconfirmed(x, x.clone(), y, attacked, None)
    with torch.no_grad():
        correct = (net(x).argmax(1) == y).nonzero().flatten()
    assert set(same.tolist()) == set(correct.tolist())  # not misclassified: not a break


def test_targets_are_refused():
    net, x, y = model_and_labels(4)
    with pytest.raises(ConfigError, match="untargeted"):
        AutoAttack(net, "linf", 0.1).run(x, y, targets=y)


def test_the_authors_budgets_are_the_defaults():
    """Outside the test's small budgets: 100 iterations, 9 targets, 5 000 queries."""
    assert (autoattack.TARGETS, autoattack.EOT_DRAWS, autoattack.PLUS_RESTARTS) == (9, 20, 5)
    # the fixture lowered STEPS and QUERIES; the module's own values are in its source
    import inspect

    source = inspect.getsource(autoattack)
    assert "\nSTEPS = 100\n" in source and "\nQUERIES = 5000\n" in source


def test_spec_text_builds_autoattack():
    from robustlens.attacks.spec import AttackSpec

    spec = AttackSpec.parse("autoattack-plus l2 0.5")
    attack = spec.build(TinyCNN())
    assert isinstance(attack, AutoAttack) and attack.version == "plus"
    assert spec.label() == "AutoAttack+ L2 ε=0.5"
    assert AttackSpec.parse("autoattack linf 8/255").build(TinyCNN()).eps == pytest.approx(8 / 255)
    with pytest.raises(ConfigError, match="fix their own iterations"):
        AttackSpec.parse("autoattack linf 0.1 100")
