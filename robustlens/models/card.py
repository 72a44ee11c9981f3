"""The model card: everything needed to rebuild, trust and reproduce a checkpoint, as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models.base import RobustClassifier, to_json_value
from robustlens.proportions import Proportion, count_of, proportion
from robustlens.runtime import versions

CARD_FORMAT = "robustlens-model-card/1"
REQUIRED = ("format", "arch", "arch_kwargs", "num_classes", "input_shape", "mean", "std")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def metric_proportion(metric: dict[str, Any]) -> Proportion | None:
    """A card metric as k of n with its interval: the stored ``ci_low``/``ci_high``, or, for
    cards written before intervals were stored, the Wilson interval of its value and ``n``.
    None when the metric has no ``n`` or its value is not a proportion of n images."""
    n, value = metric.get("n"), metric.get("value")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return None
    try:
        k = count_of(value, n)
    except ConfigError:
        return None
    low, high = metric.get("ci_low"), metric.get("ci_high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        return Proportion(k, n, float(low), float(high))
    return proportion(k, n)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    return versions()


@dataclass
class ModelCard:
    """What a checkpoint holds and how it came about.

    ``recipe`` describes training (method natural/pgd/fgsm-rs, norm, eps, steps, step_size,
    epochs, batch_size, schedule, seed, ...). Each entry of ``metrics`` is a dict with
    ``name`` (e.g. "clean_accuracy", "robust_accuracy"), ``value``, ``n`` (images) and
    ``attack``: the exact attack that measured it (norm, eps, steps, step_size, restarts,
    random_start, library version, ...) or None for clean numbers. ``weights_sha256`` is the
    sha256 of the .safetensors file's bytes (None until saved). ``source`` says where foreign
    weights came from (a string, or a dict with path, sha256, layout, ...). ``evaluation`` is
    the evaluation of record (``robustlens eval --record``; :mod:`robustlens.models.record`):
    attack, version, norm, ε, n, accuracies with their Wilson intervals, date, version.
    """

    arch: str
    arch_kwargs: dict[str, Any]
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str | None = None
    recipe: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=_versions)
    weights_sha256: str | None = None
    created: str = field(default_factory=_now)
    source: str | dict[str, Any] | None = None
    notes: str = ""
    evaluation: dict[str, Any] | None = None
    format: str = CARD_FORMAT

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.arch_kwargs = to_json_value(dict(self.arch_kwargs), "arch_kwargs")
        self.metrics = to_json_value([dict(m) for m in self.metrics], "metrics")
        self.recipe = None if self.recipe is None else to_json_value(dict(self.recipe), "recipe")
        self.source = to_json_value(self.source, "source")
        self.notes = self.notes or ""
        if self.evaluation is not None:
            self.evaluation = to_json_value(dict(self.evaluation), "evaluation")

    # ------------------------------------------------------------------ building and editing

    @classmethod
    def for_model(cls, model: RobustClassifier, **fields: Any) -> ModelCard:
        """A card describing ``model`` (arch, shapes, normalisation) plus ``fields``."""
        mean, std = model.normalize.statistics()
        arch_kwargs = dict(model.arch_kwargs)
        for key, actual in (("mean", mean), ("std", std)):
            if key in arch_kwargs and not _same_float32(arch_kwargs[key], actual):
                arch_kwargs[key] = list(actual)
        dataset = fields.pop("dataset", None)
        if dataset is not None and not isinstance(dataset, str):
            dataset = getattr(dataset, "name", str(dataset))
        return cls(
            arch=model.arch,
            arch_kwargs=arch_kwargs,
            num_classes=model.num_classes,
            input_shape=model.input_shape,
            mean=mean,
            std=std,
            dataset=dataset,
            **fields,
        )

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    def add_metric(
        self, name: str, value: float, *, n: int, attack: dict[str, Any] | None = None
    ) -> None:
        """Append a metric; ``attack`` is None for clean numbers, else the exact attack. An
        accuracy (a name ending in ``accuracy``) is k of ``n`` images and gets its 95 % Wilson
        interval as ``ci_low``/``ci_high``."""
        metric = {"name": name, "value": float(value), "n": int(n), "attack": attack}
        if name.endswith("accuracy"):
            metric.update(proportion(count_of(float(value), int(n)), int(n)).columns())
        self.metrics.append(to_json_value(metric, "metric"))

    def add_note(self, note: str) -> None:
        self.notes = f"{self.notes}\n{note}" if self.notes else note

    def metric(self, name: str) -> dict[str, Any] | None:
        """The last metric called ``name``, or None."""
        return next((m for m in reversed(self.metrics) if m.get("name") == name), None)

    def interval(self, name: str) -> Proportion | None:
        """The last metric called ``name`` as k of n with its 95 % interval (see
        :func:`metric_proportion`), or None."""
        found = self.metric(name)
        return None if found is None else metric_proportion(found)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data = to_json_value(data, "model card field")
        if data.get("evaluation") is None:  # cards without one keep their old shape
            data.pop("evaluation", None)
        return {"format": data.pop("format"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "model card") -> ModelCard:
        """Validate and build; every problem raises :class:`CheckpointError` naming ``origin``."""

        def bad(problem: str, fix: str | None = None) -> CheckpointError:
            return CheckpointError(
                f"{origin}: {problem}",
                fix=fix or "write the card with robustlens (save_checkpoint) or repair the field",
            )

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt != CARD_FORMAT:
            raise bad(
                f"unknown model card format {fmt!r} (this robustlens reads {CARD_FORMAT!r})",
                fix="upgrade robustlens, or check that the file is a robustlens model card",
            )
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise bad(f"missing required field{'s' if len(missing) > 1 else ''} {missing}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise bad(f"unknown fields {unknown}", fix=f"known fields: {', '.join(sorted(known))}")
        _check_types(data, bad)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str, *, origin: str = "model card") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CheckpointError(
                f"{origin}: not valid JSON ({err})",
                fix="the card is damaged; restore it or re-save the checkpoint",
            ) from err
        except RecursionError as err:  # json recurses once per nested array or object
            raise CheckpointError(
                f"{origin}: JSON nested too deeply to read",
                fix="the card is damaged; restore it or re-save the checkpoint",
            ) from err
        return cls.from_dict(data, origin=origin)

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as err:
            raise CheckpointError(f"model card {path} does not exist") from err
        except (OSError, UnicodeDecodeError) as err:
            raise CheckpointError(f"cannot read model card {path}: {err}") from err
        return cls.from_json(text, origin=f"model card {path}")


def _same_float32(recorded: Any, actual: tuple[float, ...]) -> bool:
    """Whether ``recorded`` values equal ``actual`` up to float32 rounding."""
    if not isinstance(recorded, list) or len(recorded) != len(actual):
        return False
    return all(
        isinstance(r, int | float) and math.isclose(r, a, rel_tol=1e-6, abs_tol=1e-7)
        for r, a in zip(recorded, actual, strict=True)
    )


def _check_types(data: dict[str, Any], bad: Any) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    if not isinstance(data["arch"], str) or not data["arch"]:
        raise bad("arch must be a non-empty string")
    if not isinstance(data["arch_kwargs"], dict):
        raise bad("arch_kwargs must be an object")
    if not is_int(data["num_classes"]) or data["num_classes"] < 1:
        raise bad(f"num_classes must be a positive integer, got {data['num_classes']!r}")
    shape = data["input_shape"]
    shape_ok = isinstance(shape, list) and len(shape) == 3
    if not (shape_ok and all(is_int(v) and v > 0 for v in shape)):
        raise bad(f"input_shape must be [C, H, W] of positive integers, got {shape!r}")
    for key in ("mean", "std"):
        values = data[key]
        if not isinstance(values, list) or not all(is_number(v) for v in values):
            raise bad(f"{key} must be a list of numbers, got {values!r}")
        if len(values) != shape[0]:
            raise bad(f"{key} has {len(values)} values for {shape[0]} channels")
    sha = data.get("weights_sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise bad(f"weights_sha256 must be 64 lowercase hex digits, got {sha!r}")
    for key, kind in (
        ("dataset", str),
        ("recipe", dict),
        ("versions", dict),
        ("created", str),
        ("notes", str),
    ):
        if key in data and data[key] is not None and not isinstance(data[key], kind):
            raise bad(f"{key} must be a {kind.__name__}, got {type(data[key]).__name__}")
    if data.get("seed") is not None and not is_int(data["seed"]):
        raise bad(f"seed must be an integer, got {data['seed']!r}")
    if "source" in data and not isinstance(data["source"], str | dict | type(None)):
        raise bad("source must be a string, an object or null")
    _check_evaluation(data.get("evaluation"), bad, is_number)
    metrics = data.get("metrics", [])
    if not isinstance(metrics, list):
        raise bad("metrics must be a list")
    for i, m in enumerate(metrics):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            raise bad(f"metrics[{i}] must be an object with a name")
        if "value" not in m or not is_number(m["value"]):
            raise bad(f"metrics[{i}] ({m['name']}) needs a numeric value")
        if m.get("attack") is not None and not isinstance(m["attack"], dict):
            raise bad(f"metrics[{i}] ({m['name']}) attack must be an object or null")
        bounds = [m.get(key) for key in ("ci_low", "ci_high")]
        if any(b is not None for b in bounds) and not (
            all(is_number(b) for b in bounds) and bounds[0] <= m["value"] <= bounds[1]
        ):
            raise bad(
                f"metrics[{i}] ({m['name']}) ci_low/ci_high must be two numbers around its value"
            )


def _check_evaluation(record: Any, bad: Any, is_number: Any) -> None:
    """The evaluation of record, when present: an object whose robust accuracy is a number
    inside its interval, measured on a positive number of images."""
    if record is None:
        return
    if not isinstance(record, dict):
        raise bad("evaluation must be an object or null")
    value, ci, n = record.get("robust_accuracy"), record.get("robust_ci"), record.get("n")
    ci_ok = isinstance(ci, list) and len(ci) == 2 and all(is_number(b) for b in ci)
    if not (is_number(value) and ci_ok and ci[0] <= value <= ci[1]):
        raise bad("evaluation needs a robust_accuracy inside its robust_ci [low, high]")
    if not (isinstance(n, int) and not isinstance(n, bool) and n > 0):
        raise bad(f"evaluation needs n, a positive number of images, got {n!r}")
