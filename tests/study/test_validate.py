"""validate_study: a study checked against its data, checkpoints and architectures up front."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from robustlens.errors import CheckpointError, ConfigError
from robustlens.study.spec import load_spec
from robustlens.study.validate import eps_limit, validate_study

STUDY = """\
[study]
name = "checked"

[data]
dataset = "digits"
eval_n = 30

[[models]]
name = "robust"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "pgd", norm = "NORM", eps = [EPS], steps = 2, epochs = 1 }
"""


def check(tmp_path: Path, text: str) -> None:
    path = tmp_path / "study.toml"
    path.write_text(text)
    validate_study(load_spec(path))


def test_eps_limits_are_the_diameters_of_the_unit_cube():
    """The ε-ball around any image in [0, 1]^d holds the whole cube at these radii."""
    assert eps_limit("linf", 784) == 1.0
    assert eps_limit("l2", 784) == 28.0
    assert eps_limit("l1", 784) == 784.0
    assert eps_limit("l2", 3 * 32 * 32) == math.sqrt(3072)


@pytest.mark.parametrize(("norm", "limit"), [("l2", 8.0), ("l1", 64.0)])
def test_a_budget_up_to_the_limit_passes_and_above_it_is_refused(tmp_path, norm, limit):
    """digits: 8 × 8 = 64 values, so L2 ≤ √64 = 8 and L1 ≤ 64."""
    check(tmp_path, STUDY.replace("NORM", norm).replace("EPS", repr(limit)))
    above = math.nextafter(limit, math.inf)
    with pytest.raises(ConfigError, match=r"model robust-.*recipe.eps: ε = .* is outside") as info:
        check(tmp_path, STUDY.replace("NORM", norm).replace("EPS", repr(above)))
    assert "for inputs of 64 values" in str(info.value)


def save(tmp_path: Path, dataset: str, name: str = "mine") -> Path:
    from robustlens.models import build_model, save_checkpoint

    model = build_model("small-cnn", dataset, widths=(4,), kernels=(3,), strides=(2,))
    save_checkpoint(model, tmp_path / f"{name}.safetensors", dataset=dataset)
    return tmp_path / f"{name}.safetensors"


LOADED = STUDY.replace("NORM", "linf").replace("EPS", "0.1") + (
    '\n[[models]]\nname = "mine"\ncheckpoint = "mine.safetensors"\n'
)


def test_a_checkpoint_is_checked_by_its_card_alone(tmp_path):
    """Validation reads the card, not the weights: damaged weights pass here (and are caught,
    with their hash, when the model is loaded), a missing or damaged card does not."""
    weights = save(tmp_path, "digits")
    weights.write_bytes(b"damaged")
    check(tmp_path, LOADED)
    weights.with_suffix(".json").write_text('{"format": "something else"}')
    with pytest.raises(CheckpointError, match=r"model mine\.checkpoint: .*unknown model card"):
        check(tmp_path, LOADED)
    weights.with_suffix(".json").unlink()
    with pytest.raises(ConfigError, match="no model card"):
        check(tmp_path, LOADED)


def test_a_checkpoint_made_for_other_inputs_is_refused(tmp_path):
    save(tmp_path, "fashion-mnist")
    with pytest.raises(ConfigError, match=r"model mine: .*\(1, 28, 28\).*digits has \(1, 8, 8\)"):
        check(tmp_path, LOADED)


def test_taps_are_checked_for_every_model_a_lens_looks_at(tmp_path):
    save(tmp_path, "digits")
    lens = '\n[lenses.featviz]\nmodels = ["mine"]\ntaps = ["block1", "block2"]\n'
    with pytest.raises(
        ConfigError, match=r"lenses\.featviz\.taps: model mine: unknown tap 'block2'"
    ):
        check(tmp_path, LOADED + lens)
    check(tmp_path, LOADED + lens.replace(', "block2"', ""))  # one block: block1 only


def test_a_lens_that_does_not_fit_the_anatomy_is_left_to_the_run(tmp_path):
    # No 7×7 convolution anywhere: not a mistake in the study file but a lens that does not
    # apply to this model, which the run records as not applicable (issue 21).
    save(tmp_path, "digits")
    check(tmp_path, LOADED + "\n[lenses.filters]\nkernel_sizes = [7]\n")


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("studies/*.toml")))
def test_shipped_study_files_pass_the_whole_check(path):
    validate_study(load_spec(path))
