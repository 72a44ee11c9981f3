"""The command line, run as a user would: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def robustlens(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robustlens", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0]


def test_version_and_help():
    result = robustlens("--version")
    assert result.returncode == 0 and result.stdout.startswith("robustlens ")
    result = robustlens("--help")
    assert result.returncode == 0
    for command in ("data", "models", "train", "eval", "study", "report", "lenses", "sets"):
        assert command in result.stdout


def test_data_list_names_every_data_set():
    result = robustlens("data", "list")
    assert result.returncode == 0, result.stderr
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "digits", "imagefolder"):
        assert name in result.stdout


def test_bad_names_and_values_get_one_line_with_what_is_allowed(tmp_path):
    assert_one_line_error(robustlens("data", "info", "fashion-mnsit"), "fashion-mnist")
    out = str(tmp_path / "never-written")
    assert_one_line_error(
        robustlens("train", "--out", out, "--method", "madry", "--eps", "0.1"), "fgsm-rs"
    )
    assert_one_line_error(robustlens("train", "--out", out, "--method", "pgd"), "eps")
    assert_one_line_error(
        robustlens("train", "--out", out, "--method", "natural", "--eps", "0.1"), "--eps"
    )
    assert_one_line_error(robustlens("train", "--out", out, "--arch", "resnet-9000"), "resnet")
    assert not (tmp_path / "never-written").exists()


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path):
    assert_one_line_error(robustlens("eval", str(tmp_path / "nope.safetensors")), "nope")
    (tmp_path / "bad.pt").write_bytes(b"not a pickle at all")
    assert_one_line_error(
        robustlens("eval", str(tmp_path / "bad.pt"), "--arch", "small-cnn", "--data", "mnist"),
        "bad.pt",
    )


@pytest.mark.slow
def test_train_then_eval_end_to_end(fashion_mnist_root, tmp_path):
    out = tmp_path / "model"
    result = robustlens(
        "train",
        "--out",
        str(out),
        "--data",
        "fashion-mnist",
        "--train-n",
        "1000",
        "--epochs",
        "1",
        "--eval-n",
        "100",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").exists() and (out / "model.json").exists()
    result = robustlens(
        "eval", str(out / "model.safetensors"), "--n", "100", "--steps", "3", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n"] == 100 and summary["data"] == "fashion-mnist"
    assert 0 <= summary["robust_accuracy"] <= summary["clean_accuracy"] <= 1
    assert summary["attack"]["steps"] == 3 and summary["attack"]["norm"] == "linf"
    result = robustlens("eval", str(out / "model.safetensors"), "--attack", "cw", "--norm", "linf")
    assert_one_line_error(result, "L2")
    check_eval_on_constructed_sets(out / "model.safetensors", tmp_path)


def check_eval_on_constructed_sets(checkpoint, tmp_path):
    """`eval --on-set` evaluates on a constructed set's images and labels (here: 30 test images
    with every third label moved by one, so the clean accuracy is computable by hand), and a
    set made for another data set or shape is one clear error; `sets show` reads the card."""
    import torch

    from robustlens.attacks.evaluate import predict
    from robustlens.constructed import ConstructedSet, save_set
    from robustlens.data import load_dataset
    from robustlens.models import load_checkpoint

    test = load_dataset("fashion-mnist", "test", n=30, seed=3)
    labels = test.labels.clone()
    labels[::3] = (labels[::3] + 1) % 10
    card = {"kind": "robustified", "dataset": "fashion-mnist", "split": "test", "model": "m"}
    card["statistics"] = {"source_model_accuracy": 0.5}
    card["leakage"] = {"model": "l2-1.5", "new_label_fraction": 0.108,
                       "original_label_fraction": 0.799, "examples": 30}  # fmt: skip
    made = ConstructedSet(test.images, labels, test.indices, torch.full((30,), -1), card)
    save_set(tmp_path / "set", made)
    model, _ = load_checkpoint(checkpoint)
    expected = float((predict(model.eval(), test.images, 30) == labels).float().mean())

    result = robustlens("eval", str(checkpoint), "--on-set", str(tmp_path / "set"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n"] == 30 and "constructed set" in summary["split"]
    assert summary["clean_accuracy"] == pytest.approx(expected)
    result = robustlens("sets", "show", str(tmp_path / "set"))
    assert result.returncode == 0, result.stderr
    assert "robustified" in result.stdout and "source_model_accuracy" in result.stdout
    shown = " ".join(result.stdout.replace("│", " ").split())  # the table may wrap the cell
    assert "l2-1.5 classifies 10.8 % as the new label, 79.9 % as the original" in shown

    no_seeds = torch.full((30,), -1)
    other = ConstructedSet(
        test.images, labels, test.indices, no_seeds, {**card, "dataset": "mnist"}
    )
    save_set(tmp_path / "mnist-set", other)
    result = robustlens("eval", str(checkpoint), "--on-set", str(tmp_path / "mnist-set"))
    assert_one_line_error(result, "'mnist'", "fashion-mnist")
    small = ConstructedSet(
        test.images[:, :, :14, :14], labels, test.indices, torch.full((30,), -1), card
    )
    save_set(tmp_path / "small-set", small)
    result = robustlens("eval", str(checkpoint), "--on-set", str(tmp_path / "small-set"))
    assert_one_line_error(result, "shape")


def test_docs_lenses_md_is_current():
    from pathlib import Path

    from robustlens.lenses.docs import lens_table_markdown

    docs = Path(__file__).resolve().parents[1] / "docs" / "LENSES.md"
    assert docs.read_text() == lens_table_markdown(), (
        "docs/LENSES.md is stale: run `robustlens lenses list --markdown > docs/LENSES.md`"
    )


def _run_main(monkeypatch, *args: str) -> int:
    """Run the command line in this process (so that a test can stand in for a library)."""
    from robustlens import cli

    monkeypatch.setattr(sys, "argv", ["robustlens", *args])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    return stop.value.code


def test_eval_of_an_adapter_id_uses_the_data_set_given(monkeypatch, capsys):
    """An adapter has no model card: `eval` takes the data set from --data and, without it,
    stops with one line saying to give it (it used to unpack a (model, card) pair that
    load_adapter does not return)."""
    import robustlens.models.adapters as adapters
    from robustlens.models import build_model

    loaded = []

    def fake_adapter(spec):
        loaded.append(spec)
        return build_model("mlp", "digits").eval()

    monkeypatch.setattr(adapters, "load_adapter", fake_adapter)
    code = _run_main(
        monkeypatch, "eval", "fake:mlp", "--data", "digits", "--n", "40", "--steps", "2", "--json"
    )
    assert code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert loaded == ["fake:mlp"]
    assert (summary["model"], summary["data"], summary["n"]) == ("fake:mlp", "digits", 40)
    assert 0.0 <= summary["robust_accuracy"] <= summary["clean_accuracy"] <= 1.0

    assert _run_main(monkeypatch, "eval", "fake:mlp", "--n", "40") == 2
    message = capsys.readouterr().err
    assert "fake:mlp names no data set" in message and "give --data" in message
    assert "Traceback" not in message


STATUS_STUDY = """
[study]
name = "status"

[data]
dataset = "digits"
eval_n = 60

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }

[[models]]
name = "l2"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "pgd", norm = "l2", eps = 0.5, steps = 2, epochs = 1, eval_n = 30 }

[lenses.activations]
"""


def test_study_status_claims_prints_the_papers_figure_beside_ours(tmp_path):
    spec = tmp_path / "status.toml"
    spec.write_text(STATUS_STUDY)
    out = tmp_path / "run"
    run = robustlens("study", "run", str(spec), "--out", str(out), "--device", "cpu")
    assert run.returncode == 0, run.stderr
    plain = robustlens("study", "status", str(out))
    assert plain.returncode == 0, plain.stderr
    assert "paper:" not in plain.stdout and "lens activations" in plain.stdout
    result = robustlens("study", "status", str(out), "--claims")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(plain.stdout)  # the status table, then the claims
    blocks = text[len(plain.stdout) :].split("\n\n")
    by_id = {block.split()[0]: block.strip("\n") for block in blocks if block.strip()}
    assert set(by_id) == {"000-4.1-dense", "000-4.1-dense-eps", "000-4.2-redundancy"}
    dense = by_id["000-4.1-dense"].splitlines()
    assert dense[0].split()[1] in ("holds", "fails", "inconclusive")
    assert dense[1].startswith("  paper: paper 000 Fig. 1 (") and "figure only" in dense[1]
    assert dense[2].startswith("  → ours: ") and "[" in dense[2]  # our numbers, with interval
    assert dense[3].startswith("  paper's direction: robust > natural")
    report = (out / "report.html").read_text()
    assert "paper:</span> paper 000 Fig. 1 (" in report  # the same figure in the report
