"""Bad study files through the real command line: one line, exit code 2, before any work.

Each row is a mutation of a small valid study (or a whole file), the exit code and a piece of
the message. ``robustlens study run`` runs in this process (``robustlens.cli.main``) with model
training replaced by a tripwire: a study that reaches training before failing fails the test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from robustlens import cli

VALID = """\
[study]
name = "bad-inputs"
seed = 1

[data]
dataset = "digits"
eval_n = 40

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 20 }

[[models]]
name = "linf"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "fgsm-rs", norm = "linf", eps = [0.1], epochs = 1, eval_n = 20 }

[lenses.color]
thicknesses = [1, 2]

[lenses.activations]
tau_dens = 0.9
"""


def swap(old: str, new: str, count: int = 1) -> Callable[[str, Path], str]:
    def mutate(text: str, folder: Path) -> str:
        assert old in text, old
        return text.replace(old, new, count)

    return mutate


def add(extra: str) -> Callable[[str, Path], str]:
    return lambda text, folder: text + extra


def models_before_lenses(extra: str) -> Callable[[str, Path], str]:
    return swap("[lenses.color]", extra + "\n[lenses.color]")


def checkpoint(classes: int = 10, card: str | None = None) -> Callable[[str, Path], str]:
    """A [[models]] entry loading a small digits checkpoint with ``classes`` classes (its card
    replaced by ``card`` when given)."""

    def mutate(text: str, folder: Path) -> str:
        from robustlens.models import build_model, save_checkpoint

        model = build_model(
            "small-cnn", "digits", num_classes=classes, widths=(4,), kernels=(3,), strides=(2,)
        )
        save_checkpoint(model, folder / "mine.safetensors", dataset="digits")
        if card is not None:
            (folder / "mine.json").write_text(card)
        entry = '[[models]]\nname = "mine"\ncheckpoint = "mine.safetensors"\n'
        return models_before_lenses(entry)(text, folder)

    return mutate


def latin1(text: str, folder: Path) -> bytes:
    """The study with a comment saved in Latin-1 (é is one byte, 0xe9: not UTF-8)."""
    return (text + "# caf\u00e9\n").encode("latin-1")


DEEP = "[" * 5000 + "]" * 5000
ZERO = 'name = "zero"\narch = "small-cnn"\nrecipe = { method = "natural", epochs = 1 }\n'

ROWS = [
    ("not-utf8", latin1, 2, "not UTF-8"),
    (
        "seed-text",
        swap("seed = 1", 'seed = "abc"'),
        2,
        "study.seed = 'abc' is not allowed. use a whole number ≥ 0",
    ),
    ("recipe-seed-text", swap("epochs = 1,", 'epochs = 1, seed = "abc",'), 2, "seed = 'abc'"),
    (
        "warmup-inf",
        swap("eps = [0.1],", "eps = [0.1], eps_warmup_epochs = inf,"),
        2,
        "eps_warmup_epochs = inf",
    ),
    (
        "warmup-longer-than-training",
        swap("eps = [0.1],", "eps = [0.1], eps_warmup_epochs = 5,"),
        2,
        "eps_warmup_epochs = 5",
    ),
    ("eps-1e308", swap("eps = [0.1]", "eps = [1e308]"), 2, "L∞ budget ≤ 1"),
    (
        "eps-nan",
        swap("eps = [0.1]", "eps = [nan]"),
        2,
        "models[1].recipe.eps[0] = nan is not allowed. use a finite number ≥ 0",
    ),
    ("eps-linf-above-1", swap("eps = [0.1]", "eps = 1.5"), 2, "L∞ budget ≤ 1"),
    (
        "eps-l2-beyond-the-cube",  # digits: 8 × 8 = 64 values, so at most √64 = 8
        swap('norm = "linf", eps = [0.1]', 'norm = "l2", eps = [9.0]'),
        2,
        "outside [0, 8]",
    ),
    (
        "eps-l1-beyond-the-cube",
        swap('norm = "linf", eps = [0.1]', 'norm = "l1", eps = [65]'),
        2,
        "outside [0, 64]",
    ),
    ("lr-nan", swap("epochs = 1,", "epochs = 1, lr = nan,"), 2, "lr = nan"),
    ("nesterov-text", swap("epochs = 1,", 'epochs = 1, nesterov = "yes",'), 2, "true or false"),
    ("epochs-1e9-float", swap("epochs = 1,", "epochs = 1e9,"), 2, "epochs = 1000000000.0"),
    (
        "epochs-1e9",
        swap("epochs = 1,", "epochs = 1000000000,"),
        2,
        "models[0].recipe.epochs = 1000000000 is not allowed. use a whole number in [1, 10,000]",
    ),
    (
        "num-classes",
        swap("strides = [1, 2] }", "strides = [1, 2], num_classes = 5 }"),
        2,
        "5 classes (arch_kwargs) but data set digits has 10",
    ),
    (
        "input-size",
        swap("strides = [1, 2] }", "strides = [1, 2], input_size = 28 }"),
        2,
        "inputs of shape (1, 28, 28)",
    ),
    (
        "unknown-arch-kwarg",
        swap("strides = [1, 2] }", "strides = [1, 2], depth = 3 }"),
        2,
        "model natural.arch_kwargs",
    ),
    ("nested-toml", add(f"\n[lenses.probes]\nblur_sigmas = {DEEP}\n"), 2, "nested too deeply"),
    (
        "nested-toml-40",
        add(f"\n[lenses.probes]\nblur_sigmas = {'[' * 40}1{']' * 40}\n"),
        2,
        "nested 43 deep (at most 32)",
    ),
    (
        "brackets-in-a-string-are-not-nesting",
        swap("seed = 1", f'description = "{"[" * 40}"\nseed = "one"'),
        2,
        "study.seed = 'one' is not allowed. use a whole number ≥ 0",
    ),
    (
        "duplicate-name",
        models_before_lenses('[[models]]\nname = "linf-0.1"\nadapter = "timm:resnet18"\n'),
        2,
        "model names must be unique",
    ),
    (
        "unknown-lens-model",
        swap("tau_dens = 0.9", 'models = ["natral"]'),
        2,
        "'natral' is not a model of the study",
    ),
    (
        "unknown-train-on-source",
        models_before_lenses(
            f'[[models]]\n{ZERO}train_on = {{ set = "zero", source = "ghost" }}\n'
        ),
        2,
        "'ghost' is not a model listed before",
    ),
    (
        "unknown-leakage-model",
        models_before_lenses(
            f'[[models]]\n{ZERO}train_on = {{ set = "zero", source = "natural", '
            'leakage_model = "ghost" }\n'
        ),
        2,
        "'ghost' is not a model listed before",
    ),
    (
        "train-on-eps-inf",
        models_before_lenses(
            f'[[models]]\n{ZERO}train_on = {{ set = "zero", source = "natural", eps = inf }}\n'
        ),
        2,
        "models[2].train_on.eps = inf is not allowed. use a finite number",
    ),
    (
        "train-on-eps-beyond-the-cube",
        models_before_lenses(
            f'[[models]]\n{ZERO}train_on = {{ set = "zero", source = "natural", eps = 9.0 }}\n'
        ),
        2,
        "model zero.train_on.eps: ε = 9",
    ),
    (
        "missing-checkpoint",
        models_before_lenses('[[models]]\nname = "gone"\ncheckpoint = "gone.safetensors"\n'),
        2,
        "gone.safetensors does not exist",
    ),
    (
        "missing-foreign-weights",
        models_before_lenses(
            '[[models]]\nname = "gone"\nforeign = "gone.pt"\narch = "small-cnn"\n'
        ),
        2,
        "gone.pt does not exist",
    ),
    (
        "unknown-adapter",
        models_before_lenses('[[models]]\nname = "other"\nadapter = "keras:resnet"\n'),
        2,
        "unknown model adapter 'keras:resnet'",
    ),
    ("checkpoint-for-5-classes", checkpoint(classes=5), 2, "the model has 5 classes"),
    (
        "checkpoint-card-nested-json",
        checkpoint(card="[" * 100_000 + "]" * 100_000),
        2,
        "JSON nested too deeply",
    ),
    ("checkpoint-card-not-json", checkpoint(card="{oops"), 2, "not valid JSON"),
    (
        "unknown-tap-in-the-last-lens",
        swap("tau_dens = 0.9", 'taps = ["block9"]'),
        2,
        "unknown tap 'block9'",
    ),
    (
        "bad-parameter-in-the-last-lens",
        swap("tau_dens = 0.9", "tau_dens = 1.5"),
        2,
        "tau_dens",
    ),
    (
        "attack-budget-beyond-the-cube",
        add('\n[lenses.norm_ratio]\nattacks = ["pgd linf 0.025 5", "pgd l2 9 5 @64"]\n'),
        2,
        "'pgd l2 9 5 @64' at this resolution",
    ),
    (
        "transfer-budget-beyond-the-cube",
        add("\n[lenses.transfer]\neps = 100.0\nreference_dim = 0\n"),
        2,
        "lenses.transfer.eps",
    ),
    ("unknown-lens", add("\n[lenses.colour]\n"), 2, "unknown lens"),
    (
        "no-default-sources",
        add(
            f'\n[[models]]\n{ZERO}train_on = {{ set = "zero", source = "natural" }}\n'
            '\n[lenses.universality]\nmodels = ["zero"]\n'
        ),
        2,
        "lenses.universality: no default source models",
    ),
    (
        "contour-wider-than-the-image",
        swap("thicknesses = [1, 2]", "thicknesses = [1, 5]"),
        2,
        "contour thickness 5 does not fit 8-pixel images",
    ),
    (
        "ensemble-target-unknown",
        add('\n[lenses.ensemble]\ntargets = ["digits", "cifar11"]\n'),
        2,
        "'cifar11' is not a data set with train and test splits",
    ),
]


SECONDS = 60
"""A bound on one bad study's validation, imports already done; it takes about a second, and
training, which the tripwire below forbids, would take far longer on the slowest CI machine."""


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory):
    """Validate the valid study once, so that imports are not counted in the time bound."""
    from robustlens.study.spec import load_spec
    from robustlens.study.validate import validate_study

    path = tmp_path_factory.mktemp("warm") / "study.toml"
    path.write_text(VALID)
    validate_study(load_spec(path))


@pytest.fixture
def no_training(monkeypatch):
    """Training (and constructed-set building) raise: a bad study must fail before them."""
    import robustlens.constructed
    import robustlens.train

    def tripwire(*args, **kwargs):
        raise AssertionError("work started before the study was validated")

    monkeypatch.setattr(robustlens.train, "train_model", tripwire)
    monkeypatch.setattr(robustlens.constructed, "build_targeted", tripwire)
    monkeypatch.setattr(robustlens.constructed, "build_robustified", tripwire)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``robustlens ARGS`` in this process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["robustlens", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, capsys.readouterr().err


def test_the_valid_study_passes_the_check(tmp_path, monkeypatch, capsys):
    """The rows below fail because of their mutation, not because the base study is bad."""
    (tmp_path / "study.toml").write_text(VALID)
    monkeypatch.setattr(sys, "argv", ["robustlens", "study", "check", str(tmp_path / "study.toml")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    assert "ok (2 models, 2 lenses)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_a_bad_study_file_is_one_line_and_no_work(
    tmp_path, monkeypatch, capsys, no_training, mutate, code, fragment
):
    study = tmp_path / "study.toml"
    text = mutate(VALID, tmp_path)
    if isinstance(text, bytes):
        study.write_bytes(text)
    else:
        study.write_text(text)
    out = tmp_path / "out"
    start = time.perf_counter()
    status, stderr = run_cli(monkeypatch, capsys, "study", "run", str(study), "--out", str(out))
    seconds = time.perf_counter() - start
    assert status == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:") and str(study) in lines[0], lines[0]
    assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert seconds < SECONDS, f"validation took {seconds:.1f} s"


def test_a_study_whose_last_lens_is_bad_trains_nothing(tmp_path, no_training):
    """Through the Python API too: a long study with a typo in its last lens fails in
    seconds, before training (the tripwire), and leaves no checkpoint behind."""
    from robustlens.errors import ConfigError
    from robustlens.runner import Study

    long = VALID.replace("epochs = 1,", "epochs = 400,").replace(
        "tau_dens = 0.9", 'taps = ["block1", "blockk2"]'
    )
    (tmp_path / "study.toml").write_text(long)
    study = Study.from_file(tmp_path / "study.toml", tmp_path / "out", device="cpu")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="unknown tap 'blockk2'"):
        study.run()
    assert time.perf_counter() - start < SECONDS
    assert not list(tmp_path.rglob("*.safetensors"))
    assert not (tmp_path / "out").exists()


def test_exit_codes_2_for_bad_usage_and_1_for_an_error_during_the_run(
    tmp_path, monkeypatch, capsys
):
    """0 success, 1 an error in the run, 2 bad usage or bad input (README, "Exit codes")."""
    import robustlens.train
    from robustlens.errors import NumericalError

    study = tmp_path / "study.toml"
    study.write_text(VALID)
    assert run_cli(monkeypatch, capsys, "study", "run")[0] == 2  # Typer: missing argument
    assert run_cli(monkeypatch, capsys, "study", "run", str(study), "--bogus")[0] == 2

    def diverges(*args, **kwargs):
        raise NumericalError("training loss became nan in epoch 1, batch 3", fix="lower lr")

    monkeypatch.setattr(robustlens.train, "train_model", diverges)
    out = tmp_path / "out"
    status, stderr = run_cli(monkeypatch, capsys, "study", "run", str(study), "--out", str(out))
    assert status == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "training loss became nan" in lines[0], stderr
