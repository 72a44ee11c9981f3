"""`study status` (with its claims) and `report` read a study's store without changing it,
even while a run holds the study folder (issue 14 §2). `report` writes report.html, nothing
else."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustlens import runner as runner_module
from robustlens.report.builder import claim_rows
from robustlens.runner import REPORT_NAME, Study
from robustlens.study.lock import study_lock
from robustlens.study.store import DB_NAME
from tests.study.tiny_studies import DIGITS_ACTIVATIONS

STUDY = DIGITS_ACTIVATIONS


def store_files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """The store's files (database and artifacts) with their bytes and modification times."""
    paths = [folder / DB_NAME, *sorted((folder / "artifacts").rglob("*"))]
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in paths
        if p.is_file()
    }


@pytest.mark.slow
def test_status_and_report_never_change_the_store(tmp_path, monkeypatch):
    spec = tmp_path / "tiny.toml"
    spec.write_text(STUDY)
    out = tmp_path / "out"
    # A run stopped after its lenses, before its report: no figures are stored yet.
    with monkeypatch.context() as m:
        m.setattr(runner_module, "build_report", lambda results, path, keep_figures=None: None)
        summary = Study.from_file(spec, out, device="cpu").run()
    assert summary.computed and not (out / REPORT_NAME).exists()
    before = store_files(out)
    with study_lock(out):  # readers do not need the lock: a run may be going on
        status = Study.open(out).status()
        report = Study.open(out).write_report()
        with Study.open(out).read() as results:  # what `study status --claims` reads
            claims = claim_rows(results)
    assert status["lenses"] == [
        {"lens": "activations", "done": 1, "total": 1, "failed": 0, "not_applicable": 0}
    ]
    assert report == out / REPORT_NAME and "activations" in report.read_text()
    assert claims and all(row.paper_figure.startswith("paper 000 ") for row in claims)
    after = store_files(out)
    assert {k: after.get(k) for k in before} == before
    assert set(after) == set(before)  # the report's figures were drawn, not stored
