"""Estimate the mutation score from a uniform random sample of mutmut's mutants.

A full ``make mutate`` checks about 10 000 mutants: two days on a 2-core machine. This script
checks a seeded, uniform random sample of them instead and reports the share killed with its
95 % Wilson score interval, so the score of the whole population is measured, with its
uncertainty, in minutes. Survivors are listed by name (``mutmut show NAME`` prints each).

    python scripts/mutate_sample.py --n 300 --seed 0 --children 2

Run it from the repository root (``make mutate-sample`` does). mutmut's ``[tool.mutmut]``
settings in pyproject.toml decide which files are mutated and which tests run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

MUTANTS = Path("mutants")

# mutmut 3's exit codes (mutmut/stats.py) grouped into what a score counts.
DETECTED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
            152: "timeout", 255: "timeout", 37: "caught by type check", -11: "segfault",
            -9: "segfault"}  # fmt: skip
UNDETECTED = {0: "survived", 5: "no tests", 33: "no tests"}


def mutmut_binary() -> str:
    here = Path(sys.executable).parent / "mutmut"
    return str(here) if here.exists() else "mutmut"


def exit_codes() -> dict[str, int | None]:
    """Every generated mutant's name with its last exit code (None: not checked yet)."""
    codes: dict[str, int | None] = {}
    for meta in MUTANTS.rglob("*.meta"):
        codes.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    return codes


def run_mutmut(names: list[str], children: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [mutmut_binary(), "run", "--max-children", str(children), *names]
    subprocess.run(cmd, env=env, check=False)


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion k / n (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="mutants in the sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--children", type=int, default=2, help="mutmut worker processes")
    parser.add_argument("--out", type=Path, default=Path("mutants/sample.json"))
    args = parser.parse_args(argv)

    if not any(MUTANTS.rglob("*.meta")):
        # mutmut generates every mutant (and its test statistics) before it runs the ones
        # named; a first run naming the few mutants of one small function does that.
        run_mutmut(["robustlens.analysis.bootstrap.x_weighted_mean__mutmut_1"], args.children)
    population = sorted(exit_codes())
    if not population:
        print("mutmut generated no mutants: check [tool.mutmut] in pyproject.toml")
        return 2
    sample = sorted(random.Random(args.seed).sample(population, min(args.n, len(population))))
    run_mutmut(sample, args.children)

    codes = exit_codes()
    status = Counter()
    survivors = []
    for name in sample:
        code = codes.get(name)
        if code in DETECTED:
            status[DETECTED[code]] += 1
        elif code in UNDETECTED:
            status[UNDETECTED[code]] += 1
            survivors.append(name)
        else:
            status["not checked" if code is None else f"other ({code})"] += 1
    detected = sum(status[s] for s in set(DETECTED.values()))
    checked = detected + len(survivors)
    low, high = wilson(detected, checked)
    by_package = Counter(name.rsplit(".", 2)[0] for name in sample)
    report = {
        "population": len(population),
        "sample": len(sample),
        "seed": args.seed,
        "status": dict(status),
        "detected": detected,
        "checked": checked,
        "score": detected / checked if checked else None,
        "interval_95": [low, high],
        "sample_by_module": dict(sorted(by_package.items())),
        "survivors": survivors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"population {len(population)} mutants; sample {len(sample)} (seed {args.seed})")
    print("status: " + ", ".join(f"{k} {v}" for k, v in sorted(status.items())))
    if checked:
        print(
            f"killed {detected} of {checked} checked: {detected / checked:.1%} "
            f"[{low:.1%}, {high:.1%}] (95 % Wilson interval)"
        )
    print("survivors (mutmut show NAME):")
    for name in survivors:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
