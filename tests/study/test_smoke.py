"""Smoke runs (``study run --smoke``): every study file scales down to a valid study with the
same models and lenses and bounded work, which reads back from its own text; one of them runs
end to end."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from robustlens.study.smoke import CAPS, EVAL_N, STEPS, TRAIN_N, dump_toml, smoke_spec
from robustlens.study.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "studies").glob("*.toml"))
FULL_SIZE = ["garaev2024", "springer2021", "filters-resnet20", "filters-resnet20-cifar10"]


def test_the_full_size_studies_are_there():
    assert {f"{name}.toml" for name in FULL_SIZE} <= {path.name for path in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_toml_dump_reads_back_as_the_study_file(path):
    raw = tomllib.loads(path.read_text())
    assert tomllib.loads(dump_toml(raw)) == raw


def attack_steps(setting: str) -> int | None:
    words = [w for w in setting.split() if not w.startswith("@")]
    return int(words[3]) if words[0] in ("pgd", "cw") and len(words) > 3 else None


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_a_smoke_study_keeps_the_study_and_bounds_its_work(path):
    full = load_spec(path)
    smoke = smoke_spec(full)
    assert smoke.name == f"{full.name}-smoke" and smoke.description.startswith("SMOKE RUN")
    assert [m.name for m in smoke.models] == [m.name for m in full.models]
    assert [(lens.name, lens.models) for lens in smoke.lenses] == [
        (lens.name, lens.models) for lens in full.lenses
    ]
    assert smoke.eval_n <= EVAL_N and smoke.seed == full.seed
    assert smoke.eval_seed == full.eval_seed
    for small, big in zip(smoke.models, full.models, strict=True):
        if big.recipe is None:
            assert small == big
            continue
        assert small.recipe.epochs == 1 and small.recipe.seed == big.recipe.seed
        assert small.recipe.eval_n <= EVAL_N and small.recipe.eval_steps <= STEPS
        assert (small.train_n or smoke.train_n) <= TRAIN_N
        if big.recipe.adversarial:
            assert small.recipe.steps <= STEPS
            assert (small.recipe.method, small.recipe.eps) == (big.recipe.method, big.recipe.eps)
        if big.train_on is not None:
            assert small.train_on.steps <= CAPS["steps"]
            assert small.train_on.source == big.train_on.source
    for lens in smoke.lenses:
        for field in dataclasses.fields(lens.params):
            value = getattr(lens.params, field.name)
            if field.name in CAPS and type(value) in (int, float):
                assert value <= CAPS[field.name], (lens.name, field.name)
            if field.name == "attacks":
                assert all((attack_steps(a) or 0) <= STEPS for a in value), lens.name
            if field.name.endswith("_attack") and isinstance(value, str):
                assert (attack_steps(value) or 0) <= STEPS, (lens.name, field.name)
    # the text stored with the results is the smoke study itself
    again = parse_spec(tomllib.loads(smoke.text), smoke.source, smoke.text)
    assert again == smoke


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_a_full_size_study_runs_end_to_end_in_smoke_mode(tmp_path):
    """filters-resnet20, the cheapest of the full-size studies (two ResNet-20s, one lens):
    136 s on the shared 2-core machine (2026-12-04)."""
    from robustlens.data import locate_dataset
    from robustlens.runner import Study

    if locate_dataset("fashion-mnist") is None:
        pytest.skip("Fashion-MNIST is not installed")
    spec = smoke_spec(load_spec(ROOT / "studies" / "filters-resnet20.toml"))
    summary = Study(spec, tmp_path / spec.name, device="cpu").run()
    assert not summary.failed
    assert len(summary.trained) == 2 and summary.computed
    report = Path(summary.report).read_text()
    assert "SMOKE RUN" in report
    reopened = Study.open(tmp_path / spec.name)
    assert reopened.spec.name == "filters-resnet20-smoke"
    assert all(m["done"] for m in reopened.status()["models"])
