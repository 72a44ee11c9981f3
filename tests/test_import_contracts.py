"""The import contracts of pyproject.toml ([tool.importlinter]) hold for the package, and each
breaks when an import points the wrong way (docs/ARCHITECTURE.md, "Floors")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter comes with the dev extra")

ROOT = Path(__file__).resolve().parents[1]
# lint-imports puts the working directory first on sys.path, so it reads the tree it runs in.
LINT = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the contracts of ``root/pyproject.toml`` on ``root/robustlens``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_package_keeps_its_import_contracts() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("lenses/base.py", "from robustlens import runner", "Floors"),
        ("claims/base.py", "from robustlens.study import store", "Floors"),
        ("study/store.py", "from robustlens.report import builder", "Floors"),
        ("attacks/pgd.py", "from robustlens.train import loop", "Floors"),
        ("errors.py", "from robustlens import plotting", "Floors"),
        ("report/document.py", "from robustlens.report import html", "Report"),
        ("report/builder.py", "from robustlens.study.store import Store", "Report: reads"),
        ("data/formats.py", "from robustlens.data import loading", "No circular imports"),
        ("models/adapters.py", "import torchvision", "The core never imports torchvision"),
    ],
)
def test_an_import_the_wrong_way_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(
        ROOT / "robustlens", tmp_path / "robustlens", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / "robustlens" / module
    path.write_text(f"{path.read_text()}\n{line}  # an import the wrong way\n")
    done = lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [row for row in done.stdout.splitlines() if row.endswith(" BROKEN")]
    assert any(row.startswith(contract) for row in broken), done.stdout
