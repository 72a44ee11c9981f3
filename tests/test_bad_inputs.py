"""Bad inputs on the command line: each gives exit code 2, one line naming the problem and
its fix, no traceback, and writes nothing.

The table runs the CLI in-process (``robustlens.cli.main``, as the console script does) on tiny
files the tests write; one case per row. Two real processes at the end check what a user's
terminal sees: no traceback and no dependency warnings.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from robustlens import cli

EVIL = "\x1b[31m[bold]evil[/bold]"


# ------------------------------------------------------------------------------ tiny files


def tiny_checkpoint(folder: Path, dataset: str = "digits", *, poison: float | None = None) -> str:
    """A small CNN for ``dataset`` saved as a checkpoint (one weight set to ``poison``)."""
    from robustlens.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("small-cnn", dataset, widths=(4, 4, 4))
    if poison is not None:
        with torch.no_grad():
            next(model.parameters()).view(-1)[3] = poison
    stem = folder / f"model-{dataset}"
    save_checkpoint(model, stem, dataset=dataset)
    return str(stem) + ".safetensors"


def foreign_file(folder: Path, value: float) -> str:
    from robustlens.models import build_model

    torch.manual_seed(0)
    state = build_model("small-cnn", "digits").state_dict()
    state["linear.weight"][0, 0] = value
    path = folder / "foreign.pt"
    torch.save(state, path)
    return str(path)


def constructed_set(folder: Path, **card: object) -> Path:
    from robustlens.constructed.sets import ConstructedSet, save_set

    n = 4
    data = ConstructedSet(
        torch.rand(n, 1, 8, 8),
        torch.arange(n),
        torch.arange(n),
        torch.arange(n),
        {"kind": "robustified", "dataset": "digits", "split": "test", "model": "m", **card},
    )
    return save_set(folder / "set", data)


def idx_header(dtype_code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, dtype_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def mnist_folder(folder: Path, test_images: bytes) -> Path:
    """An MNIST layout whose test images file is ``test_images``; the others are valid."""
    root = folder / "mnist-root"
    root.mkdir()
    for name, dims in (("train-images-idx3-ubyte", (1, 28, 28)), ("train-labels-idx1-ubyte", (1,))):
        (root / name).write_bytes(idx_header(0x08, dims) + bytes(int(torch.tensor(dims).prod())))
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_header(0x08, (10000,)) + bytes(10000))
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(test_images)
    return root


def study_file(folder: Path) -> str:
    path = folder / "tiny.toml"
    path.write_text(
        '[study]\nname = "tiny"\n[data]\ndataset = "digits"\n[[models]]\nname = "m"\n'
        'arch = "small-cnn"\nrecipe = { epochs = 1 }\n[lenses.color]\n'
    )
    return str(path)


# ---------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """``args(tmp)`` builds the files a case needs and returns its command line."""

    name: str
    args: Callable[[Path], list[str]]
    message: tuple[str, ...]
    code: int = 2


def _existing_file(tmp: Path) -> Path:
    path = tmp / "results.txt"
    path.write_text("the user's file")
    return path


def _edited_set(tmp: Path) -> Path:
    folder = constructed_set(tmp)
    with (folder / "images.safetensors").open("ab") as handle:
        handle.write(b"\0")
    return folder


def _edited_card(tmp: Path, text: bytes) -> Path:
    folder = constructed_set(tmp)
    (folder / "card.json").write_bytes(text)
    return folder


def _recounted_card(tmp: Path) -> Path:
    folder = constructed_set(tmp)
    card = json.loads((folder / "card.json").read_text())
    card["n"] = 40
    (folder / "card.json").write_text(json.dumps(card))
    return folder


OUT_FOLDER = "a folder path (created if missing), not an existing file; the file is left untouched"
EPS = (
    "is not allowed. use a finite number ≥ 0; "
    "e.g. --eps 0.1 (pixel units in [0, 1]; 0 for no attack)"
)

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")

CASES = [
    Case(
        "out-is-a-file",
        lambda t: ["train", "--out", str(_existing_file(t)), "--data", "digits"],
        ("--out = '", "results.txt' is not allowed. use " + OUT_FOLDER),
    ),
    Case(
        "study-out-is-a-file",
        lambda t: ["study", "run", study_file(t), "--out", str(_existing_file(t))],
        ("--out = '", "results.txt' is not allowed. use " + OUT_FOLDER),
    ),
    pytest.param(
        Case(
            "train-device-cuda",
            lambda t: ["train", "--out", str(t / "out"), "--data", "digits", "--device", "cuda"],
            ("no CUDA device is available", "--device cpu"),
        ),
        marks=NO_CUDA,
    ),
    pytest.param(
        Case(
            "study-device-cuda",
            lambda t: ["study", "run", study_file(t), "--out", str(t / "o"), "--device", "cuda"],
            ("no CUDA device is available", "--device cpu"),
        ),
        marks=NO_CUDA,
    ),
    Case(
        "device-typo",
        lambda t: ["train", "--out", str(t / "out"), "--data", "digits", "--device", "gpu0"],
        ("unknown device 'gpu0'", "--device cpu"),
    ),
    Case(
        "eval-eps-nan",
        lambda t: ["eval", tiny_checkpoint(t), "--eps", "nan"],
        ("--eps = nan " + EPS,),
    ),
    Case(
        "eval-eps-inf",
        lambda t: ["eval", tiny_checkpoint(t), "--eps", "inf"],
        ("--eps = inf " + EPS,),
    ),
    Case(
        "eval-eps-negative",
        lambda t: ["eval", tiny_checkpoint(t), "--eps", "-0.5"],
        ("--eps = -0.5 " + EPS,),
    ),
    Case(
        "train-eps-nan",
        lambda t: ["train", "--out", str(t / "o"), "--method", "pgd", "--eps", "nan"],
        ("--eps = nan " + EPS,),
    ),
    Case(
        "8x8-model-on-28x28-data",
        lambda t: ["eval", tiny_checkpoint(t), "--data", "fashion-mnist"],
        ("(1, 8, 8)", "(1, 28, 28)", "fashion-mnist"),
    ),
    Case(
        "nan-weights-checkpoint",
        lambda t: ["eval", tiny_checkpoint(t, poison=float("nan"))],
        ("not finite", "block1.0.weight", "model-digits.safetensors"),
    ),
    Case(
        "inf-weights-foreign",
        lambda t: [
            "eval",
            foreign_file(t, float("inf")),
            "--arch",
            "small-cnn",
            "--data",
            "digits",
        ],
        ("not finite", "linear.weight", "foreign.pt"),
    ),
    Case(
        "data-root-missing",
        lambda t: [
            "eval",
            tiny_checkpoint(t, "fashion-mnist"),
            "--data-root",
            str(t / "no-such-folder"),
        ],
        ("data folder", "no-such-folder", "does not exist"),
    ),
    Case(
        "data-info-root-missing",
        lambda t: ["data", "info", "mnist", "--root", str(t / "typo")],
        ("data folder", "typo", "does not exist"),
    ),
    Case(
        "idx-header-promises-more-than-gzip-can-hold",
        lambda t: [
            "eval",
            tiny_checkpoint(t, "fashion-mnist"),
            "--data",
            "mnist",
            "--data-root",
            str(mnist_folder(t, gzip.compress(idx_header(0x08, (10000, 28, 28))))),
        ],
        ("t10k-images-idx3-ubyte.gz", "truncated", "more than a"),
    ),
    Case(
        "idx-gzip-bomb-past-its-header",
        lambda t: [
            "eval",
            tiny_checkpoint(t, "fashion-mnist"),
            "--data",
            "mnist",
            "--data-root",
            str(
                mnist_folder(
                    t, gzip.compress(idx_header(0x08, (10000, 28, 28)) + bytes(30_000_000))
                )
            ),
        ],
        ("t10k-images-idx3-ubyte.gz", "trailing bytes"),
    ),
    Case(
        "set-tensors-edited",
        lambda t: ["sets", "show", str(_edited_set(t))],
        ("images.safetensors", "sha256 differs"),
    ),
    Case(
        "eval-on-edited-set",
        lambda t: ["eval", tiny_checkpoint(t), "--on-set", str(_edited_set(t))],
        ("images.safetensors", "sha256 differs"),
    ),
    Case(
        "set-card-not-utf8",
        lambda t: ["sets", "show", str(_edited_card(t, b"\xff\xfe{"))],
        ("card.json", "not readable JSON"),
    ),
    Case(
        "set-card-a-list",
        lambda t: ["sets", "show", str(_edited_card(t, b"[1, 2]"))],
        ("card.json", "not a robustlens constructed-set card"),
    ),
    Case(
        "set-card-recounted",
        lambda t: ["eval", tiny_checkpoint(t), "--on-set", str(_recounted_card(t))],
        ("says the set holds 40 images", "holds 4"),
    ),
]


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run ``robustlens ARGS`` in this process as the console script does."""
    monkeypatch.setattr(sys, "argv", ["robustlens", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = case.args(tmp_path)
    capsys.readouterr()
    before = listing(tmp_path)
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == case.code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in case.message:
        assert fragment in lines[0], lines[0]
    assert listing(tmp_path) == before


# ------------------------------------------------------------------ printing what files say


def test_markup_and_escape_codes_in_a_card_print_literally(tmp_path, monkeypatch, capsys):
    folder = constructed_set(tmp_path, model=EVIL, dataset=EVIL)
    code, out, err = run_cli(["sets", "show", str(folder)], monkeypatch, capsys)
    assert code == 0, err
    assert "\x1b" not in out
    assert "\\x1b[31m[bold]evil[/bold]" in out  # shown, not obeyed


def test_markup_and_escape_codes_in_an_error_print_literally(monkeypatch, capsys):
    code, _, err = run_cli(["data", "info", EVIL], monkeypatch, capsys)
    assert code == 2
    assert "\x1b" not in err
    assert "\\x1b[31m[bold]evil[/bold]" in err


def test_known_dependency_warnings_are_hidden_and_ours_are_not():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cli.quiet_dependency_warnings()
        warnings.warn_explicit("noise", UserWarning, "captum/attr/x.py", 1, module="captum.attr")
        warnings.warn_explicit(
            "You are using torch.load with weights_only=False", FutureWarning, "t.py", 1,
            module="torch.serialization",
        )  # fmt: skip
        warnings.warn_explicit("act on this", UserWarning, "r.py", 1, module="robustlens.data")
    assert [str(w.message) for w in seen] == ["act on this"]


# ------------------------------------------------------------------------- real processes


def robustlens(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robustlens", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_a_process_prints_one_line_and_no_traceback(tmp_path):
    path = _existing_file(tmp_path)
    result = robustlens("train", "--out", str(path), "--data", "digits", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert path.read_text() == "the user's file"


@pytest.mark.slow
def test_a_small_run_prints_no_warnings(tmp_path):
    out = tmp_path / "model"
    result = robustlens(
        "train", "--out", str(out), "--data", "digits", "--arch", "small-cnn", "--epochs", "1",
        "--train-n", "60", "--eval-n", "20", "--method", "pgd", "--eps", "0.1", "--steps", "2",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result2 = robustlens(
        "eval", str(out / "model.safetensors"), "--n", "20", "--steps", "2", cwd=tmp_path
    )
    assert result2.returncode == 0, result2.stderr
    for stderr in (result.stderr, result2.stderr):
        assert "Warning" not in stderr and "warn(" not in stderr, stderr


def test_a_full_disk_while_saving_a_model_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    import errno

    import robustlens.train.loop as loop

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    monkeypatch.setattr(loop, "save_checkpoint_unit", no_space)
    args = ["train", "--out", str(tmp_path / "out"), "--data", "digits", "--arch", "small-cnn"]
    args += ["--epochs", "1", "--train-n", "40", "--eval-n", "10", "--method", "natural"]
    code, _out, err = run_cli(args, monkeypatch, capsys)
    assert code == 1, err
    # The training's progress bar shares stderr; the error is one line after it.
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "No space left on device" in lines[0] and "Free some space" in lines[0], lines[0]
