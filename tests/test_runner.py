"""The study runner end to end on a tiny Fashion-MNIST study: caching, force, determinism,
resuming after SIGKILL (during training, its final evaluation and lenses), reading results
back."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.models import load_checkpoint
from robustlens.runner import Study
from robustlens.train.killpoint import ENV as KILL_ENV

pytestmark = pytest.mark.slow

TINY = """
[study]
name = "tiny"
seed = 0

[data]
dataset = "fashion-mnist"
eval_n = 120
train_n = 1500

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "natural", epochs = 2, eval_n = 60 }

[[models]]
name = "linf"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "fgsm-rs", norm = "linf", eps = [0.1], epochs = 2, eval_n = 60 }

[lenses.activations]

[lenses.latent]
epochs = 1
train_n = 600
attack_steps = 5

[lenses.color]
thicknesses = [1, 3]
"""
UNITS = 6  # 3 lenses × 2 models


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread here and in the study run in a child process (OMP_NUM_THREADS below): the
    same numbers in both, and no threads spinning against each other on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def study_file(fashion_mnist_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def reference(study_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = Study.from_file(study_file, out, device="cpu").run()
    return out, summary


def tables(out) -> dict[str, pd.DataFrame]:
    study = Study.open(out)
    return {lens: study.table(lens) for lens in ("activations", "latent", "color")}


def test_a_run_writes_results_and_a_report(reference):
    out, summary = reference
    assert sorted(summary.trained) == ["linf-0.1", "natural"]
    assert len(summary.computed) == UNITS and not summary.cached
    assert summary.report == out / "report.html" and summary.report.exists()
    activations = Study.open(out).table("activations")
    assert set(activations.model) == {"natural", "linf-0.1"}
    assert {"always_dense_maps", "redundant_maps", "mean_similarity"} <= set(activations.metric)
    html = summary.report.read_text()
    for lens in ("activations", "latent", "color"):
        assert f'data-lens="{lens}"' in html
    assert "000-4.1-dense" in html


def test_a_second_run_reuses_everything(study_file, reference):
    out, _ = reference
    again = Study.from_file(study_file, out, device="cpu").run()
    assert sorted(again.reused) == ["linf-0.1", "natural"] and not again.trained
    assert not again.computed and len(again.cached) == UNITS


def test_force_recomputes_one_lens_only(study_file, reference):
    out, _ = reference
    before = tables(out)["color"]
    forced = Study.from_file(study_file, out, device="cpu").run(force=("color",))
    assert sorted(forced.computed) == ["color:linf-0.1", "color:natural"]
    pd.testing.assert_frame_equal(tables(out)["color"], before)
    with pytest.raises(ConfigError, match="no lens"):
        Study.from_file(study_file, out, device="cpu").run(force=("filters",))


def run_in_subprocess(study_file, out, kill_at: str | None = None):
    """``robustlens study run`` in a child process; with ``kill_at`` (FOLDER:PHASE, see
    robustlens/train/killpoint.py) it dies by SIGKILL exactly at that phase of training."""
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    env["OMP_NUM_THREADS"] = "1"
    if kill_at is not None:
        env[KILL_ENV] = kill_at
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robustlens",
            "study",
            "run",
            str(study_file),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def wait_for(condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the study never reached the point to interrupt")


def lens_runs(out) -> int:
    db = out / "results.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM lens_runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


# Where the killed study dies: training phases are exact (a kill point in the training loop);
# "lenses" is a kill once two lens runs are stored (every later point must resume as well).
KILLS = {
    "training": "natural:epoch-2",
    "evaluation": "linf-0.1:during-evaluation",
    "lenses": None,
}


@pytest.mark.timing
@pytest.mark.parametrize("moment", list(KILLS))
def test_sigkill_then_rerun_resumes_and_gives_the_same_numbers(
    study_file, reference, tmp_path, moment
):
    out = tmp_path / "killed"
    proc = run_in_subprocess(study_file, out, KILLS[moment])
    if KILLS[moment] is None:
        wait_for(lambda: lens_runs(out) >= 2)
        os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=600) == -signal.SIGKILL
    finished = lens_runs(out)
    summary = Study.from_file(study_file, out, device="cpu").run()
    assert len(summary.computed) == UNITS - finished  # nothing that finished is recomputed
    assert len(summary.cached) == finished
    ours, theirs = tables(out), tables(reference[0])
    for lens in ours:
        pd.testing.assert_frame_equal(ours[lens], theirs[lens], obj=lens)
    for name in ("natural", "linf-0.1"):
        _, card = load_checkpoint(out / "models" / name / "model.safetensors")
        _, expected = load_checkpoint(reference[0] / "models" / name / "model.safetensors")
        assert card.weights_sha256 == expected.weights_sha256, name
        assert card.metrics == expected.metrics, name


def test_status_reports_what_is_left(study_file, reference, tmp_path):
    out, _ = reference
    status = Study.open(out).status()
    assert all(m["done"] for m in status["models"])
    assert all(lens["done"] == lens["total"] == 2 for lens in status["lenses"])
    assert status["report"].endswith("report.html")
    with pytest.raises(ConfigError, match="no study results"):
        Study.open(tmp_path / "empty")


DIGITS = """
[study]
name = "digits"

[data]
dataset = "digits"
eval_n = 100

[[models]]
name = "trained"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "pgd", norm = "l2", eps = 0.5, steps = 2, epochs = 1, eval_n = 50 }

[[models]]
name = "mine"
checkpoint = "mine.safetensors"

[lenses.activations]
count_clusters = true

[lenses.latent]
epochs = 1

[lenses.color]
"""


def test_a_study_with_a_loaded_checkpoint_on_another_data_set(tmp_path):
    from robustlens.models import build_model, save_checkpoint

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = build_model("small-cnn", "digits", widths=(4, 8), kernels=(3, 3), strides=(1, 2))
    save_checkpoint(model, tmp_path / "mine.safetensors", dataset="digits")
    (tmp_path / "digits.toml").write_text(DIGITS)
    summary = Study.from_file(tmp_path / "digits.toml", tmp_path / "out", device="cpu").run()
    assert summary.trained == ["trained"] and summary.loaded == ["mine"]
    assert len(summary.computed) == 6
    study = Study.open(tmp_path / "out")
    activations = study.table("activations")
    assert "clusters" in set(activations.metric)
    latent = study.table("latent")
    robust = latent[(latent.model == "trained") & (latent.metric == "robust_accuracy")]
    assert len(robust) == 3  # original, retrained, and the difference
    html = summary.report.read_text()
    assert "mine" in html and "loaded" in html


CHOSEN = """
[study]
name = "chosen"

[data]
dataset = "digits"
eval_n = 60

[[models]]
name = "a"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }

[[models]]
name = "b"
arch = "mlp"
arch_kwargs = { hidden = [16] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }

[lenses.activations]
models = ["a"]

[lenses.color]
"""


def test_a_lens_looks_only_at_the_models_it_names(tmp_path):
    spec = tmp_path / "chosen.toml"
    spec.write_text(CHOSEN)
    out = tmp_path / "out"
    summary = Study.from_file(spec, out, device="cpu").run()
    assert sorted(summary.computed) == ["activations:a", "color:a", "color:b"]
    study = Study.open(out)
    assert set(study.table("activations").model) == {"a"}
    assert set(study.table("color").model) == {"a", "b"}
    status = {row["lens"]: row for row in study.status()["lenses"]}
    assert status["activations"]["done"] == status["activations"]["total"] == 1
    assert status["color"]["done"] == status["color"]["total"] == 2
    html = (out / "report.html").read_text()
    assert "of 1 runs finished" not in html and "of 2 runs finished" not in html
    assert html.count("looks at the models a only") == 1


def test_an_edited_recipe_retrains_that_model_only_and_its_lens_runs(tmp_path):
    """The study owns its model folders: after editing one model's recipe a rerun retrains
    that model (and reruns the lenses that look at it), reuses the other, and the results
    come from the new model."""
    spec = tmp_path / "chosen.toml"
    spec.write_text(CHOSEN)
    out = tmp_path / "out"
    Study.from_file(spec, out, device="cpu").run()
    old_digest = {m.name: m.digest for m in Study.open(out).models(train=False)}
    before = 'hidden = [16] }\nrecipe = { method = "natural", epochs = 1'
    spec.write_text(CHOSEN.replace(before, before.replace("epochs = 1", "epochs = 2")))
    summary = Study.from_file(spec, out, device="cpu").run()
    assert summary.trained == ["b"] and summary.reused == ["a"]
    assert summary.computed == ["color:b"]
    models = {m.name: m for m in Study.open(out).models(train=False)}
    assert models["b"].digest != old_digest["b"] and models["a"].digest == old_digest["a"]
    assert models["b"].card.recipe["epochs"] == 2
