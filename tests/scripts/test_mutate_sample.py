"""The mutation-score sample (scripts/mutate_sample.py): its interval and its bookkeeping."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mutate_sample.py"


@pytest.fixture(scope="module")
def sample_module():
    spec = importlib.util.spec_from_file_location("mutate_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Wilson score intervals at z = 1.96, worked out from the closed form
        # (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
        (90, 100, 0.825634, 0.944771),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (1, 2, 0.094531, 0.905469),
    ],
)
def test_wilson_interval_matches_the_closed_form(sample_module, k, n, low, high):
    got = sample_module.wilson(k, n)
    assert got == pytest.approx((low, high), abs=1e-6)


def test_the_sample_is_scored_from_mutmut_exit_codes(sample_module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = tmp_path / "mutants" / "robustlens" / "x.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {f"robustlens.x.x_f__mutmut_{i}": 1 for i in range(1, 9)}
    codes["robustlens.x.x_f__mutmut_9"] = 0  # survived
    codes["robustlens.x.x_f__mutmut_10"] = 36  # timeout: detected
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    ran = []
    monkeypatch.setattr(sample_module, "run_mutmut", lambda names, children: ran.append(names))
    assert sample_module.main(["--n", "10", "--seed", "1"]) == 0
    report = json.loads((tmp_path / "mutants" / "sample.json").read_text())
    assert ran == [sorted(codes)]  # the whole population, since n = its size
    assert (report["detected"], report["checked"]) == (9, 10)
    assert report["survivors"] == ["robustlens.x.x_f__mutmut_9"]
    assert report["status"] == {"killed": 8, "timeout": 1, "survived": 1}
