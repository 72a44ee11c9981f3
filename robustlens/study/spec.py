"""Study files (TOML) → a validated plan, before any work is done.

A study names a data set, its models (trained by a recipe, or loaded) and the lenses to run::

    [study]
    name = "quickstart"
    seed = 0

    [data]
    dataset = "fashion-mnist"
    eval_n = 1000

    [[models]]
    name = "natural"
    arch = "small-cnn"
    recipe = { method = "natural", epochs = 3 }

    [[models]]
    name = "linf"                       # one model per ε: linf-0.05, linf-0.1, ...
    arch = "small-cnn"
    recipe = { method = "fgsm-rs", norm = "linf", eps = [0.05, 0.1], epochs = 3 }

    [[models]]
    name = "downloaded"
    checkpoint = "path/to/model.safetensors"   # or foreign = "x.pt" with arch, or adapter = "..."

    [[models]]
    name = "zero-robust"                # trained on a constructed set made against "natural"
    arch = "small-cnn"
    recipe = { method = "natural", epochs = 3 }
    train_on = { set = "zero", source = "natural", eps = 2.0, leakage_model = "linf-0.1" }

    [lenses.activations]                # a table per lens; keys override the paper defaults
    tau_dens = 0.95
    models = ["natural", "linf"]        # optional: the models the lens looks at (default all;
                                        # an entry's name covers all its ε)

Every mistake (unknown key, unknown lens / architecture / data set, wrong type, impossible
value) raises one ConfigError naming the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustlens.constructed.request import TRAIN_ON_KEYS, TrainOn
from robustlens.errors import ConfigError, RobustlensError
from robustlens.train.recipe import Recipe

SECTIONS = {
    "study": {"name", "description", "seed"},
    "data": {"dataset", "eval_n", "eval_seed", "train_n", "root"},
}
MODEL_KEYS = {
    "name",
    "arch",
    "arch_kwargs",
    "recipe",
    "checkpoint",
    "foreign",
    "adapter",
    "train_n",
    "train_on",
}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelPlan:
    """One model of the study: trained by ``recipe``, or loaded from a file or an adapter."""

    name: str
    source: str  # "train" | "checkpoint" | "foreign" | "adapter"
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    recipe: Recipe | None = None
    path: Path | None = None
    adapter: str | None = None
    train_n: int | None = None
    train_on: TrainOn | None = None
    """A constructed training set made from the training split against an earlier model of
    the study (see :mod:`robustlens.constructed.request`)."""
    entry: str = ""
    """The name of the [[models]] entry it comes from ("linf" for linf-0.05); its own name
    when empty."""


@dataclass(frozen=True)
class LensPlan:
    name: str
    params: Any
    overrides: dict[str, Any]
    models: tuple[str, ...] | None = None
    """The models the lens looks at, in study order (all when None)."""

    def covers(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True)
class StudySpec:
    name: str
    description: str
    seed: int
    dataset: str
    data_root: Path | None
    eval_n: int
    eval_seed: int
    train_n: int | None
    models: tuple[ModelPlan, ...]
    lenses: tuple[LensPlan, ...]
    source: Path
    text: str

    def lens(self, name: str) -> LensPlan | None:
        return next((plan for plan in self.lenses if plan.name == name), None)


class _Where:
    """Builds error messages that name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str, allowed: str | None = None) -> ConfigError:
        return ConfigError(
            f"{self.path}: {key}: {problem}", fix=f"allowed: {allowed}" if allowed else None
        )


def _typed(where: _Where, key: str, value: Any, kind: type, *, minimum: int | None = None) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
    if not ok:
        return_kind = {int: "a whole number", str: "a string", float: "a finite number"}[kind]
        raise where.error(key, f"must be {return_kind}, got {value!r}")
    if minimum is not None and value < minimum:
        raise where.error(key, f"must be at least {minimum}, got {value!r}")
    return value


def _check_keys(where: _Where, key: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise where.error(key, f"must be a table, got {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise where.error(
            f"{key}.{unknown[0]}" if key else unknown[0], "unknown key", ", ".join(sorted(allowed))
        )
    return table


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file {path} does not exist", fix="check the path")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} on line {line})",
            fix="save the study file as UTF-8",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read study file {path}: {exc.strerror or exc}") from exc
    return parse_spec(read_toml(text, path), path, text)


MAX_DEPTH = 32
"""Study files nest a few tables and lists deep; deeper nesting is refused (Python's TOML
reader recurses once per level, and so would anything walking the values)."""


def read_toml(text: str, path: Path) -> dict[str, Any]:
    """``text`` parsed as TOML; syntax errors and absurd nesting raise ConfigError."""
    fix = "a study file needs only a few levels: [table], key = { ... }, lists"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}", fix="fix the syntax at that line"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: arrays or tables nested too deeply to read", fix=fix) from exc
    depth = _depth(raw)
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"{path}: arrays or tables nested {depth} deep (at most {MAX_DEPTH})", fix=fix
        )
    return raw


def _depth(value: Any) -> int:
    """How deep tables and arrays nest in ``value`` (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_spec(raw: dict[str, Any], path: Path, text: str = "") -> StudySpec:
    where = _Where(path)
    _check_keys(where, "", raw, {"study", "data", "models", "lenses"})
    for required in ("study", "data", "models"):
        if required not in raw:
            raise where.error(f"[{required}]", "missing section", "study, data, models, lenses")
    study = _check_keys(where, "study", raw["study"], SECTIONS["study"])
    if "name" not in study:
        raise where.error("study.name", "missing", 'a short name such as "quickstart"')
    name = _typed(where, "study.name", study["name"], str)
    if not NAME.match(name):
        raise where.error("study.name", f"{name!r} is not a usable name", "letters, digits, . _ -")
    seed = _typed(where, "study.seed", study.get("seed", 0), int, minimum=0)
    description = _typed(where, "study.description", study.get("description", ""), str)

    data = _check_keys(where, "data", raw["data"], SECTIONS["data"])
    if "dataset" not in data:
        raise where.error("data.dataset", "missing", "a registered data set (robustlens data list)")
    dataset = _typed(where, "data.dataset", data["dataset"], str)
    root = Path(_typed(where, "data.root", data["root"], str)) if "root" in data else None
    if root is not None and not root.is_absolute():
        root = (path.parent / root).resolve()
    info = _dataset_info(where, dataset, root)
    eval_n = _typed(where, "data.eval_n", data.get("eval_n", 1000), int, minimum=1)
    eval_seed = _typed(where, "data.eval_seed", data.get("eval_seed", 0), int, minimum=0)
    train_n = data.get("train_n")
    if train_n is not None:
        train_n = _typed(where, "data.train_n", train_n, int, minimum=1)

    models = _parse_models(where, raw["models"], path)
    lenses = _parse_lenses(where, raw.get("lenses", {}), info, models)
    return StudySpec(
        name,
        description,
        seed,
        dataset,
        root,
        eval_n,
        eval_seed,
        train_n,
        models,
        lenses,
        path,
        text,
    )


def _dataset_info(where: _Where, dataset: str, root: Path | None):
    from robustlens.data import dataset_info, list_datasets

    if dataset not in list_datasets():
        raise where.error(
            "data.dataset", f"unknown data set {dataset!r}", ", ".join(list_datasets())
        )
    try:
        return dataset_info(dataset, root=root)
    except RobustlensError as exc:
        raise where.error("data", exc.problem, exc.fix) from exc


def _parse_models(where: _Where, entries: Any, path: Path) -> tuple[ModelPlan, ...]:
    from robustlens.models import list_architectures

    if not isinstance(entries, list) or not entries:
        raise where.error("models", "must be a non-empty array of tables ([[models]])")
    plans: list[ModelPlan] = []
    for i, entry in enumerate(entries):
        key = f"models[{i}]"
        entry = _check_keys(where, key, entry, MODEL_KEYS)
        if "name" not in entry:
            raise where.error(f"{key}.name", "missing", "a short unique name")
        name = _typed(where, f"{key}.name", entry["name"], str)
        if not NAME.match(name):
            raise where.error(
                f"{key}.name", f"{name!r} is not a usable name", "letters, digits, . _ -"
            )
        sources = [s for s in ("recipe", "checkpoint", "foreign", "adapter") if s in entry]
        if len(sources) != 1:
            raise where.error(
                key,
                "give exactly one of recipe, checkpoint, foreign, adapter "
                f"(got {', '.join(sources) or 'none'})",
            )
        source = sources[0]
        arch = entry.get("arch")
        if arch is not None:
            arch = _typed(where, f"{key}.arch", arch, str)
            if arch not in list_architectures():
                raise where.error(
                    f"{key}.arch", f"unknown architecture {arch!r}", ", ".join(list_architectures())
                )
        arch_kwargs = entry.get("arch_kwargs", {})
        if not isinstance(arch_kwargs, dict):
            raise where.error(f"{key}.arch_kwargs", "must be a table")
        train_n = entry.get("train_n")
        if train_n is not None:
            train_n = _typed(where, f"{key}.train_n", train_n, int, minimum=1)
        train_on = None
        if "train_on" in entry:
            if source != "recipe":
                raise where.error(f"{key}.train_on", "only a model trained by a recipe can have it")
            train_on = _train_on(where, f"{key}.train_on", entry["train_on"], plans)
        if source == "recipe":
            if arch is None:
                raise where.error(f"{key}.arch", "missing: a trained model needs an architecture")
            for eps, recipe in _expand_recipe(where, f"{key}.recipe", entry["recipe"]):
                model_name = name if eps is None else f"{name}-{eps:g}"
                plans.append(
                    ModelPlan(
                        model_name,
                        "train",
                        arch,
                        arch_kwargs,
                        recipe,
                        train_n=train_n,
                        train_on=train_on,
                        entry=name,
                    )
                )
            continue
        if source == "adapter":
            plans.append(
                ModelPlan(
                    name, "adapter", adapter=_typed(where, f"{key}.adapter", entry["adapter"], str)
                )
            )
            continue
        file = Path(_typed(where, f"{key}.{source}", entry[source], str))
        if not file.is_absolute():
            file = (path.parent / file).resolve()
        if source == "foreign" and arch is None:
            raise where.error(f"{key}.arch", "missing: foreign weights need their architecture")
        plans.append(ModelPlan(name, source, arch, arch_kwargs, path=file))
    names = [p.name for p in plans]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise where.error("models", f"model names must be unique, {duplicates} repeat")
    return tuple(plans)


class _TableCheck:
    """A :class:`~robustlens.constructed.request.Checker` for the table at ``key``: errors
    and type checks name the file and the table's key."""

    def __init__(self, where: _Where, key: str) -> None:
        self.where, self.key = where, key

    def error(self, key: str, problem: str, allowed: str | None = None) -> ConfigError:
        return self.where.error(f"{self.key}.{key}" if key else self.key, problem, allowed)

    def typed(self, key: str, value: Any, kind: type, *, minimum: int | None = None) -> Any:
        return _typed(self.where, f"{self.key}.{key}", value, kind, minimum=minimum)


def _train_on(where: _Where, key: str, table: Any, plans: list[ModelPlan]) -> TrainOn:
    """A validated ``train_on`` table (see :class:`~robustlens.constructed.request.TrainOn`):
    its source and leakage model are models listed earlier; a leakage model is adversarially
    trained on the data set's own training split (or loaded)."""
    table = dict(_check_keys(where, key, table, TRAIN_ON_KEYS))
    robust = [
        p.name
        for p in plans
        if p.source != "train"
        or (p.recipe.method != "natural" and p.recipe.eps > 0 and p.train_on is None)
    ]
    return TrainOn.parse(table, _TableCheck(where, key), [p.name for p in plans], robust)


def _expand_recipe(where: _Where, key: str, table: Any) -> list[tuple[float | None, Recipe]]:
    """A recipe table → one recipe, or one per ε when ``eps`` is a list."""
    fields = {f.name for f in dataclasses.fields(Recipe)}
    table = dict(_check_keys(where, key, table, fields))
    eps = table.pop("eps", None)
    epsilons: list[float | None]
    if isinstance(eps, list):
        if not eps:
            raise where.error(f"{key}.eps", "an empty list trains no model")
        epsilons = [_typed(where, f"{key}.eps", e, float) for e in eps]
    else:
        epsilons = [None if eps is None else _typed(where, f"{key}.eps", eps, float)]
    out = []
    for e in epsilons:
        values = dict(table)
        if e is not None:
            values["eps"] = float(e)
        try:
            recipe = Recipe.from_dict(values)
        except ConfigError as exc:
            raise where.error(key, exc.problem.removeprefix("training recipe: "), exc.fix) from exc
        except TypeError as exc:
            raise where.error(key, f"wrong value type ({exc})") from exc
        out.append((e if isinstance(eps, list) else None, recipe))
    return out


def _parse_lenses(
    where: _Where, table: Any, info, models: tuple[ModelPlan, ...]
) -> tuple[LensPlan, ...]:
    from robustlens.lenses import LENSES

    if not isinstance(table, dict):
        raise where.error("lenses", "must be a table of lens tables ([lenses.NAME])")
    plans = []
    for name, overrides in table.items():
        if name not in LENSES:
            raise where.error(f"lenses.{name}", "unknown lens", ", ".join(LENSES.names()))
        if not isinstance(overrides, dict):
            raise where.error(f"lenses.{name}", "must be a table of parameters")
        overrides = dict(overrides)
        chosen = None
        if "models" in overrides:
            chosen = _lens_models(where, f"lenses.{name}.models", overrides.pop("models"), models)
        if overrides.get("sources") is not None:
            # source models (universality, transfer): checked now, entry names expanded
            key = f"lenses.{name}.sources"
            sources = _lens_models(where, key, overrides["sources"], models)
            outside = [s for s in sources if chosen is not None and s not in chosen]
            if outside:
                raise where.error(
                    key, f"{outside[0]!r} is not among the lens's models", ", ".join(chosen or ())
                )
            overrides["sources"] = list(sources)
        spec = LENSES.get(name)
        params = spec.resolve_params(info, overrides, f"{where.path}: lenses.{name}")
        plans.append(LensPlan(spec.name, params, overrides, chosen))
    return tuple(plans)


def _lens_models(
    where: _Where, key: str, value: Any, models: tuple[ModelPlan, ...]
) -> tuple[str, ...]:
    """The models a lens looks at: names of models or of [[models]] entries (an entry covers
    every ε it trains), in the study's order."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise where.error(key, f"must be a non-empty list of model names, got {value!r}")
    names = [m.name for m in models]
    allowed = names + sorted({m.entry for m in models if m.entry} - set(names))
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise where.error(key, f"{unknown[0]!r} is not a model of the study", ", ".join(allowed))
    wanted = set(value)
    return tuple(m.name for m in models if m.name in wanted or m.entry in wanted)
