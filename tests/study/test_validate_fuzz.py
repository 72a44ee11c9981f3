"""Property: validating any mutation of a valid study ends in success or one RobustlensError.

Valid study files (a small one with a loaded checkpoint and constructed sets, and the shipped
quickstart) are mutated — a key dropped, a value replaced by one of another type, NaN, ±inf,
negative or huge numbers, unknown names, empty or random Unicode text, deep nesting, an
unknown key added, bytes of the file changed — and only *validated* (``load_spec`` /
``parse_spec`` and ``validate_study``; nothing trains). Any other exception type is a bug: it
would reach the user as a traceback. Derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

import copy
import datetime
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from robustlens.errors import RobustlensError
from robustlens.study.spec import load_spec, parse_spec
from robustlens.study.validate import validate_study

SMALL = """\
[study]
name = "fuzz"
seed = 2

[data]
dataset = "digits"
eval_n = 30

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 20 }

[[models]]
name = "linf"
arch = "mlp"
arch_kwargs = { hidden = [16] }
recipe = { method = "pgd", norm = "linf", eps = [0.05, 0.1], steps = 2, epochs = 1 }

[[models]]
name = "mine"
checkpoint = "mine.safetensors"

[[models]]
name = "zero"
arch = "small-cnn"
recipe = { method = "natural", epochs = 1 }
train_on = { set = "zero", source = "natural", eps = 2.0, steps = 5, leakage_model = "linf-0.1" }

[lenses.activations]
models = ["natural", "zero"]
taps = ["block1"]
tau_dens = 0.9

[lenses.norm_ratio]
n = 20
attacks = ["pgd l2 0.25 5", "fgsm linf 0.03"]

[lenses.transfer]
eps = 1.0
sources = ["natural"]
"""
QUICKSTART = Path(__file__).parents[2] / "studies" / "quickstart.toml"

SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2**31, 10**9, 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.5, 0.0]),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["", " ", "ghost", "natural", "linf", "linf-0.1", "l2", "block1", "\x1b[31m"]),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"x": value}
    return value


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> list[tuple[Path, str, dict[str, Any]]]:
    """(study file, its text, the parsed table) for each valid study, each checked valid."""
    from robustlens.models import build_model, save_checkpoint

    folder = tmp_path_factory.mktemp("fuzz")
    model = build_model("small-cnn", "digits", widths=(4,), kernels=(3,), strides=(2,))
    save_checkpoint(model, folder / "mine.safetensors", dataset="digits")
    small = folder / "small.toml"
    small.write_text(SMALL)
    out = []
    for path in (small, QUICKSTART):
        text = path.read_text()
        validate_study(load_spec(path))  # the unmutated file is valid
        out.append((path, text, tomllib.loads(text)))
    return out


def locations(table: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a parsed TOML document (into tables and lists)."""
    found = []
    items = table.items() if isinstance(table, dict) else enumerate(table)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found += locations(value, (*prefix, key))
    return found


def mutate(raw: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``raw`` with one to three mutations drawn by ``data``."""
    raw = copy.deepcopy(raw)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        where = locations(raw)
        if not where:
            break
        path = data.draw(st.sampled_from(where), label="path")
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        how = data.draw(
            st.sampled_from(["drop", "replace", "nest", "add-key", "wrap-in-list"]), label="how"
        )
        if how == "drop":
            del parent[key]
        elif how == "replace":
            parent[key] = data.draw(VALUES, label="value")
        elif how == "nest":
            parent[key] = nested(data.draw(st.integers(2, 400), label="depth"))
        elif how == "wrap-in-list":
            parent[key] = [parent[key]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=8), label="new key")] = data.draw(
                VALUES, label="value"
            )
    return raw


def outcome(check) -> None:
    """Run ``check``; success or a RobustlensError pass, anything else fails the test."""
    try:
        check()
    except RobustlensError as exc:
        assert str(exc).strip(), "an error with no message"
        event(type(exc).__name__)  # pytest --hypothesis-show-statistics shows the mix
    else:
        event("valid")


FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_mutated_tables_validate_or_raise_one_clean_error(bases, data):
    path, text, raw = data.draw(st.sampled_from(bases), label="study")
    mutated = mutate(raw, data)
    outcome(lambda: validate_study(parse_spec(mutated, path, text)))


@FUZZ
@given(data=st.data())
def test_mutated_files_validate_or_raise_one_clean_error(bases, data, tmp_path_factory):
    path, text, _ = data.draw(st.sampled_from(bases[:1]), label="study")
    raw = text.encode()
    at = data.draw(st.integers(0, len(raw)), label="at")
    cut = data.draw(st.integers(0, 8), label="cut")
    insert = data.draw(
        st.one_of(
            st.binary(max_size=8),
            st.text(max_size=8).map(str.encode),
            st.sampled_from([b"[" * 3000, b"{a=" * 3000, b"\xff\xfe", b"\x00", b"\n[[models]]\n"]),
        ),
        label="insert",
    )
    target = path.with_name("mutated.toml")  # beside the checkpoint it names
    target.write_bytes(raw[:at] + insert + raw[at + cut :])
    outcome(lambda: validate_study(load_spec(target)))
