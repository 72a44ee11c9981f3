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
    seeds = [0, 1]                      # optional: trained once per seed: linf-0.05@s0, ...

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

Seeds: every random choice draws from a stream derived from ``[study] seed`` and the name of
what it seeds (:func:`robustlens.runtime.derive_seed`). A trained model's recipe seed is
derived from the study seed and its entry's name (all ε of one entry share it: the same
initialisation and batch order, so that ε is the only difference), and from the replicate for
an entry with ``seeds = [...]``; a recipe's own ``seed`` pins it. The evaluation subset's seed
is derived the same way unless ``[data] eval_seed`` pins it. Changing the study seed therefore
retrains every unpinned model; adding a model or a lens leaves the others' streams unchanged.

Every mistake (unknown key, unknown lens / architecture / data set, wrong type, impossible
value) raises one ConfigError naming the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustlens.constructed.request import TRAIN_ON_KEYS, TrainOn
from robustlens.data import dataset_info, list_datasets
from robustlens.errors import ConfigError, RobustlensError
from robustlens.lenses import LENSES
from robustlens.models import list_architectures
from robustlens.params import (
    Anything,
    Interval,
    ListOf,
    Options,
    PathValue,
    Satisfies,
    check,
    unknown_key,
    validate,
)
from robustlens.runtime import derive_seed
from robustlens.train.recipe import CONSTRAINTS as RECIPE_CONSTRAINTS
from robustlens.train.recipe import Recipe

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = Satisfies(
    lambda v: isinstance(v, str) and NAME.match(v) is not None,
    "a name of letters, digits, . _ - (at most 64, starting with a letter or digit)",
)
SECTIONS = {"study": dict, "data": dict, "models": ListOf(dict, min_len=1), "lenses": dict}
"""The study file's top-level tables (robustlens.params constraints)."""
STUDY = {"name": NAME_RULE, "description": str, "seed": Interval("integer", 0, None)}
DATA = {
    "dataset": str,
    "eval_n": Interval("integer", 1, None),
    "eval_seed": Interval("integer", 0, None),
    "train_n": Interval("integer", 1, None),
    "root": PathValue(),
}
MODEL = {
    "name": NAME_RULE,
    "arch": str,
    "arch_kwargs": dict,
    "recipe": dict,
    "checkpoint": PathValue(),
    "foreign": PathValue(),
    "adapter": str,
    "train_n": Interval("integer", 1, None),
    "train_on": dict,
    "seeds": ListOf(Interval("integer", 0, None), min_len=1),
}
"""A [[models]] entry's keys and what each may be."""
SEED_MARK = "@s"
"""Between a setting's name and its training seed in a replicate's name (``natural@s1``); a
study file's own names cannot contain "@", so a replicate's name never clashes with one."""
HINTS = {
    "models": "one [[models]] table per model",
    "lenses": "one [lenses.NAME] table per lens",
}


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
    setting: str = ""
    """The setting it replicates when its entry lists ``seeds`` ("linf-0.05" for
    linf-0.05@s1: same entry and ε, another training seed); its own name when empty."""
    seed_pinned: bool = False
    """True when the recipe gives its own ``seed``; else the recipe's seed was derived from the
    study seed (:func:`recipe_seed`)."""


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
    eval_seed_pinned: bool = False
    """True when ``[data] eval_seed`` is given; else it was derived from the study seed."""

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

    def table(self, key: str, table: Any, constraints: dict[str, Any]) -> dict[str, Any]:
        """``table`` checked against ``constraints`` (robustlens.params): keys known, values
        allowed; returns the table's values converted (numbers as floats, paths as Paths)."""
        return validate(table, constraints, where=str(self.path), prefix=key, hints=HINTS)


def _typed(where: _Where, key: str, value: Any, kind: type, *, minimum: int | None = None) -> Any:
    """``value`` checked to be of ``kind`` (int, float, str), at least ``minimum``."""
    rule = kind if minimum is None else Interval(kind, minimum, None)
    return check(value, rule, where=str(where.path), key=key)


def _check_keys(where: _Where, key: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    """``table`` checked to be a table whose keys are all in ``allowed``."""
    validate(table, dict.fromkeys(sorted(allowed), Anything()), where=str(where.path), prefix=key)
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
    where.table("", raw, SECTIONS)
    for required in ("study", "data", "models"):
        if required not in raw:
            raise where.error(f"[{required}]", "missing section", "study, data, models, lenses")
    study = where.table("study", raw["study"], STUDY)
    if "name" not in study:
        raise where.error("study.name", "missing", 'a short name such as "quickstart"')
    name, seed = study["name"], study.get("seed", 0)
    description = study.get("description", "")

    data = where.table("data", raw["data"], DATA)
    if "dataset" not in data:
        raise where.error("data.dataset", "missing", "a registered data set (robustlens data list)")
    dataset = data["dataset"]
    root = data.get("root")
    if root is not None and not root.is_absolute():
        root = (path.parent / root).resolve()
    info = _dataset_info(where, dataset, root)
    eval_n = data.get("eval_n", 1000)
    eval_seed = data.get("eval_seed", derive_seed(seed, "eval"))
    train_n = data.get("train_n")

    models = _parse_models(where, raw["models"], path, seed)
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
        eval_seed_pinned="eval_seed" in data,
    )


def _dataset_info(where: _Where, dataset: str, root: Path | None):
    check(dataset, Options(list_datasets()), where=str(where.path), key="data.dataset")
    try:
        return dataset_info(dataset, root=root)
    except RobustlensError as exc:
        raise where.error("data", exc.problem, exc.fix) from exc


def recipe_seed(study_seed: int, entry: str, replicate: int | None = None) -> int:
    """The training seed of an unpinned recipe: derived from the study seed and the entry's
    name (and the replicate, for an entry that lists ``seeds``)."""
    names = ("train", entry) if replicate is None else ("train", entry, f"replicate {replicate}")
    return derive_seed(study_seed, *names)


def _parse_models(
    where: _Where, entries: Any, path: Path, study_seed: int = 0
) -> tuple[ModelPlan, ...]:
    rules = {**MODEL, "arch": Options(list_architectures())}
    plans: list[ModelPlan] = []
    for i, raw_entry in enumerate(entries):
        key = f"models[{i}]"
        entry = where.table(key, raw_entry, rules)
        if "name" not in entry:
            raise where.error(f"{key}.name", "missing", "a short unique name")
        name = entry["name"]
        sources = [s for s in ("recipe", "checkpoint", "foreign", "adapter") if s in entry]
        if len(sources) != 1:
            raise where.error(
                key,
                "give exactly one of recipe, checkpoint, foreign, adapter "
                f"(got {', '.join(sources) or 'none'})",
            )
        source = sources[0]
        arch = entry.get("arch")
        arch_kwargs = entry.get("arch_kwargs", {})
        train_n = entry.get("train_n")
        train_on = None
        if "train_on" in entry:
            if source != "recipe":
                raise where.error(f"{key}.train_on", "only a model trained by a recipe can have it")
            train_on = _train_on(where, f"{key}.train_on", entry["train_on"], plans)
        if source == "recipe":
            if arch is None:
                raise where.error(f"{key}.arch", "missing: a trained model needs an architecture")
            seeds = _seeds(where, key, entry)
            pinned = isinstance(entry["recipe"], dict) and "seed" in entry["recipe"]
            for eps, recipe in _expand_recipe(where, f"{key}.recipe", entry["recipe"]):
                setting = name if eps is None else f"{name}-{eps:g}"
                for seed in seeds or (None,):
                    if not pinned:
                        recipe = dataclasses.replace(
                            recipe, seed=recipe_seed(study_seed, name, seed)
                        )
                    plans.append(
                        ModelPlan(
                            setting if seed is None else f"{setting}{SEED_MARK}{seed}",
                            "train",
                            arch,
                            arch_kwargs,
                            recipe,
                            train_n=train_n,
                            train_on=train_on,
                            entry=name,
                            setting=setting if seed is not None else "",
                            seed_pinned=pinned,
                        )
                    )
            continue
        if "seeds" in entry:
            raise where.error(
                f"{key}.seeds", f"only a model trained by a recipe has training seeds, not {source}"
            )
        if source == "adapter":
            plans.append(ModelPlan(name, "adapter", adapter=entry["adapter"]))
            continue
        file = entry[source]
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


def _seeds(where: _Where, key: str, entry: dict[str, Any]) -> tuple[int, ...]:
    """The training seeds of a recipe entry (empty when it lists none): distinct, and never
    beside the recipe's own ``seed``."""
    seeds = entry.get("seeds", ())
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise where.error(f"{key}.seeds", f"seeds must be distinct, {repeated} repeat")
    if seeds and isinstance(entry["recipe"], dict) and "seed" in entry["recipe"]:
        raise where.error(
            f"{key}.recipe.seed",
            "give the training seed once: either recipe.seed or the entry's seeds list",
            "seeds = [0, 1, 2] to train the entry once per seed",
        )
    return tuple(seeds)


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
    """A recipe table → one recipe, or one per ε when ``eps`` is a list (each ε a float)."""
    table = dict(table)
    eps = table.pop("eps", None)
    rule = RECIPE_CONSTRAINTS["eps"]
    if isinstance(eps, list):
        rule = ListOf(rule, min_len=1)
    epsilons = None if eps is None else check(eps, rule, where=str(where.path), key=f"{key}.eps")
    out = []
    for e in epsilons if isinstance(epsilons, tuple) else [epsilons]:
        values = table if e is None else {**table, "eps": e}
        recipe = Recipe.from_dict(values, where=str(where.path), prefix=key)
        out.append((e if isinstance(eps, list) else None, recipe))
    return out


def _parse_lenses(
    where: _Where, table: Any, info, models: tuple[ModelPlan, ...]
) -> tuple[LensPlan, ...]:
    plans = []
    for name, overrides in table.items():
        if name not in LENSES:
            raise unknown_key(str(where.path), f"lenses.{name}", LENSES.names(), noun="lens")
        overrides = dict(check(overrides, dict, where=str(where.path), key=f"lenses.{name}"))
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
    """The models a lens looks at: names of models, of settings (a setting covers every seed
    it trains) or of [[models]] entries (an entry covers every ε and seed it trains), in the
    study's order."""
    check(
        value,
        ListOf(str, min_len=1),
        where=str(where.path),
        key=key,
        hint="names of the study's models",
    )
    names = [m.name for m in models]
    groups = {m.setting for m in models if m.setting} | {m.entry for m in models if m.entry}
    allowed = names + sorted(groups - set(names))
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise where.error(key, f"{unknown[0]!r} is not a model of the study", ", ".join(allowed))
    wanted = set(value)
    return tuple(m.name for m in models if wanted & {m.name, m.entry, m.setting})
