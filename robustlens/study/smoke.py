"""Smoke runs: any study scaled down so that it runs end to end on a CPU in minutes.

:func:`smoke_spec` keeps every model, lens, seed and claim of a study and shrinks only how
much each does: one training epoch on at most :data:`TRAIN_N` images, attacks of at most
:data:`STEPS` steps, lenses on at most :data:`EVAL_N` images, short inversions. Its
numbers test the plumbing, not the papers. The smoke study is named ``<name>-smoke`` (so it
writes to its own folder, ``runs/<name>-smoke`` by default), its description says it is a
smoke run, and its study file text is the scaled-down study (stored with the results, so that
``study status`` and ``report`` read the smoke study back).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from typing import Any

from robustlens.study.spec import NAME, ModelPlan, StudySpec, parse_spec

SUFFIX = "-smoke"
TRAIN_N = 512
"""Training images per model (and per constructed training set)."""
EVAL_N = 64
"""Evaluation images: the study's subset and each model's final evaluation."""
STEPS = 3
"""Steps of every attack: training PGD, evaluation PGD, lens attacks written in their settings."""
INVERSION_STEPS = 5
"""Steps of representation inversion and targeted PGD that make constructed sets."""
CAPS: dict[str, float] = {
    "n": EVAL_N,
    "steps": INVERSION_STEPS,
    "attack_steps": STEPS,
    "epochs": 1,
    "train_n": 256,
    "test_n": 128,
    "channels": 2,
    "resamples": 20,
    "bootstrap": 10,
    "threshold_images": 16,
    "smoothgrad_samples": 4,
    "ig_steps": 4,
    "sanity_images": 4,
    "show": 2,
    "cw_binary_steps": 2,
    "keep": 0.9,
}
"""Upper bounds on lens parameters of these names, whichever lens has them (a parameter left
at None, e.g. ``n`` meaning "all the evaluation images", gets the bound). ``keep``: SVCCA's
kept variance, so that the directions it keeps fit the few distinct images of a bootstrap
resample of 64 (at 0.99 they need more)."""
NOTE = "SMOKE RUN (robustlens study run --smoke: scaled down; not the paper's numbers). "


def smoke_spec(spec: StudySpec) -> StudySpec:
    """``spec`` scaled down for a smoke run (see the module's docstring), validated again
    like any study file."""
    raw = tomllib.loads(spec.text) if spec.text else {}
    raw.setdefault("study", {})
    raw["study"]["name"] = _smoke_name(spec.name)
    raw["study"]["description"] = NOTE + spec.description
    data = raw.setdefault("data", {})
    data["eval_n"] = min(spec.eval_n, EVAL_N)
    data["train_n"] = min(spec.train_n or TRAIN_N, TRAIN_N)
    entries = {entry.get("name"): entry for entry in raw.get("models", [])}
    for plan in spec.models:
        entry = entries.get(plan.entry or plan.name)
        if entry is not None and plan.source == "train":
            _smoke_model(entry, plan)
    for lens in spec.lenses:
        table = raw.setdefault("lenses", {}).setdefault(_lens_key(raw, lens.name), {})
        table.update(_smoke_params(lens.params))
    text = f"# Smoke run of {spec.source.name} (robustlens study run --smoke)\n" + dump_toml(raw)
    return parse_spec(tomllib.loads(text), spec.source, text)


def _smoke_name(name: str) -> str:
    smoke = name[: 64 - len(SUFFIX)] + SUFFIX
    return smoke if NAME.match(smoke) else "study-smoke"


def _smoke_model(entry: dict[str, Any], plan: ModelPlan) -> None:
    """The [[models]] entry of a trained model, scaled down in place."""
    assert plan.recipe is not None
    recipe = entry.setdefault("recipe", {})
    recipe["epochs"] = 1
    recipe["eval_n"] = min(plan.recipe.eval_n, EVAL_N)
    recipe["eval_steps"] = min(plan.recipe.eval_steps, STEPS)
    recipe["eps_warmup_epochs"] = min(plan.recipe.eps_warmup_epochs, 1.0)
    if "steps" in recipe or plan.recipe.adversarial:
        recipe["steps"] = min(plan.recipe.steps or STEPS, STEPS)
    if "train_n" in entry:
        entry["train_n"] = min(entry["train_n"], TRAIN_N)
    if plan.train_on is not None:
        steps = plan.train_on.steps
        entry["train_on"]["steps"] = min(steps or INVERSION_STEPS, INVERSION_STEPS)


_STEPS_AT_END = re.compile(r"^(\s*(?:pgd|cw)\s+\S+\s+\S+\s+)(\d+)(\s*(?:@\S+)?\s*)$")


def _smoke_params(params: Any) -> dict[str, Any]:
    """The overrides that bound a lens's parameters by CAPS, and the steps in its attack
    settings (``attacks`` and ``*_attack``: "pgd l2 0.25 1000" → "pgd l2 0.25 3") by STEPS."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        cap = CAPS.get(f.name)
        number = type(value) in (int, float)
        if cap is not None and (value is None or (number and value > cap)):
            out[f.name] = cap
        elif f.name == "attacks" and isinstance(value, tuple | list):
            # settings that differed only in their steps become one
            out[f.name] = list(dict.fromkeys(_fewer_steps(setting) for setting in value))
        elif f.name.endswith("_attack") and isinstance(value, str) and _fewer_steps(value) != value:
            out[f.name] = _fewer_steps(value)
    return out


def _fewer_steps(setting: str) -> str:
    match = _STEPS_AT_END.match(setting)
    if match is None or int(match.group(2)) <= STEPS:
        return setting
    return f"{match.group(1)}{STEPS}{match.group(3)}"


def _lens_key(raw: dict[str, Any], name: str) -> str:
    """The key under [lenses] that names lens ``name`` (a study may write ``norm_ratio`` for
    the registered ``norm-ratio``)."""
    for key in raw.get("lenses", {}):
        if key.replace("_", "-") == name.replace("_", "-"):
            return key
    return name


# ------------------------------------------------------------------------------------- TOML

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def dump_toml(table: dict[str, Any]) -> str:
    """``table`` (what tomllib reads from a study file) as TOML text: tables and arrays of
    tables as headers, the tables inside an array's items inline."""
    lines: list[str] = []
    _table(table, (), lines)
    return "\n".join(lines) + "\n"


def _table(table: dict[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    subtables = []
    for key, value in table.items():
        tables = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        if isinstance(value, dict) or tables:
            subtables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables:
        inner = (*path, _key(key))
        if isinstance(value, dict):
            lines.extend(["", f"[{'.'.join(inner)}]"])
            _table(value, inner, lines)
            continue
        for item in value:
            lines.extend(["", f"[[{'.'.join(inner)}]]"])
            lines.extend(f"{_key(k)} = {_value(v)}" for k, v in item.items())


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")
