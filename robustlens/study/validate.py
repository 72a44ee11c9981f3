"""Check the whole study up front, so that a study that will fail fails in seconds.

:func:`~robustlens.study.spec.load_spec` checks the file on its own (keys, types, names, lens
parameters, references between models). :func:`validate_study` checks it against the world,
before the first model trains, without reading any weights:

- every checkpoint and foreign weights file exists, and a checkpoint's card loads (card only);
- every model, trained or loaded, is built for the data set's input size and class count (the
  architecture is built on PyTorch's ``meta`` device: no memory, no computation);
- every ε (recipes, constructed sets, lens attack settings) is finite and at most the largest
  meaningful budget of its norm for the data: the ε-ball around an image in [0, 1]^d holds the
  whole cube at L∞ 1, L2 √d and L1 d;
- every tap a lens names exists in every model the lens looks at;
- what a lens would otherwise find out only when it runs, after training: contour thicknesses
  that fit the images (color), ensemble targets, a default source model for universality and
  transfer. A lens that does not apply to a model's anatomy (the filters lens on a model without
  convolutions of its kernel sizes) is no error: the run records it as not applicable.

Every problem raises one :class:`~robustlens.errors.RobustlensError` naming the study file.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustlens.attacks.spec import AttackSpec, scale_eps
from robustlens.data import dataset_info, list_datasets
from robustlens.errors import CheckpointError, ConfigError, RobustlensError
from robustlens.models import ModelCard, build_model
from robustlens.models.adapters import LOADERS
from robustlens.models.anatomy import _resolve
from robustlens.models.checkpoint import checkpoint_paths
from robustlens.study.spec import LensPlan, ModelPlan, StudySpec

ATTACK_FIELDS = {"attacks": "attack_specs", "threshold_attack": "threshold_spec"}
"""Lens parameters holding attack settings ("pgd linf 0.03 10"), checked for their budget,
with the attribute that holds them parsed."""


def eps_limit(norm: str, dim: int) -> float:
    """The largest meaningful ε of ``norm`` for inputs of ``dim`` values in [0, 1]."""
    return {"linf": 1.0, "l2": math.sqrt(dim), "l1": float(dim)}[norm]


def validate_study(spec: StudySpec) -> None:
    """Check ``spec`` against its data set, checkpoints and architectures (see the module
    docs); raises one RobustlensError naming the file and what to fix, else returns None."""
    try:
        info = dataset_info(spec.dataset, root=spec.data_root)
    except RobustlensError as exc:
        raise ConfigError(f"{spec.source}: data: {exc.problem}", fix=exc.fix) from exc
    dim = math.prod(info.shape)
    nets: dict[str, nn.Module | None] = {}
    built: dict[str, nn.Module] = {}  # models of one architecture and arch_kwargs built once
    for plan in spec.models:
        nets[plan.name] = _check_model(spec, plan, info, built)
        _check_model_budgets(spec, plan, dim)
    for lens in spec.lenses:
        _check_lens_budgets(spec, lens, dim)
        _check_taps(spec, lens, nets)
        _check_lens_fits(spec, lens, info, nets)
        _check_default_sources(spec, lens, nets)


def _fail(spec: StudySpec, key: str, problem: str, fix: str | None = None) -> ConfigError:
    return ConfigError(f"{spec.source}: {key}: {problem}", fix=fix)


def _meta_build(
    arch: str, info: Any, kwargs: dict[str, Any], built: dict[str, nn.Module] | None = None
) -> nn.Module:
    """The architecture on the ``meta`` device: its shapes and module names, no memory
    (kept in ``built`` for the next model with the same architecture and arch_kwargs)."""
    key = repr((arch, sorted(kwargs.items())))
    if built is not None and key in built:
        return built[key]
    with torch.device("meta"):
        net = build_model(arch, info, **kwargs)
    if built is not None:
        built[key] = net
    return net


def _check_model(
    spec: StudySpec, plan: ModelPlan, info: Any, built: dict[str, nn.Module]
) -> nn.Module | None:
    """The model's architecture (meta device), checked to fit the data; None for adapters."""
    key = f"model {plan.name}"
    if plan.source == "adapter":
        kind, _, rest = (plan.adapter or "").partition(":")
        if kind.strip().lower() not in LOADERS or not rest:
            raise _fail(
                spec,
                f"{key}.adapter",
                f"unknown model adapter {plan.adapter!r}",
                "write torchvision:<name>[:<weights>], timm:<name> or "
                "robustbench:<dataset>:<threat>:<model_name>",
            )
        return None
    if plan.source == "checkpoint":
        return _check_checkpoint(spec, plan, info)
    if plan.source == "foreign" and not Path(plan.path or "").is_file():
        raise _fail(spec, f"{key}.foreign", f"file {plan.path} does not exist", "check the path")
    try:
        net = _meta_build(plan.arch or "", info, dict(plan.arch_kwargs), built)
    except RobustlensError as exc:
        raise _fail(spec, f"{key}.arch_kwargs", exc.problem, exc.fix) from exc
    except (TypeError, ValueError, RuntimeError) as exc:
        raise _fail(
            spec,
            f"{key}.arch_kwargs",
            f"architecture {plan.arch!r} cannot be built with {plan.arch_kwargs!r} ({exc})",
            "see the architecture's options in docs/ARCHITECTURE.md, or leave arch_kwargs out",
        ) from exc
    _check_fits(spec, key, net.num_classes, tuple(net.input_shape), info, "arch_kwargs")
    return net


def _check_checkpoint(spec: StudySpec, plan: ModelPlan, info: Any) -> nn.Module | None:

    key = f"model {plan.name}.checkpoint"
    weights, card_path = checkpoint_paths(plan.path or "")
    if not weights.is_file():
        raise _fail(spec, key, f"weights file {weights} does not exist", "check the path")
    if not card_path.is_file():
        raise _fail(
            spec,
            key,
            f"no model card {card_path} beside {weights.name}",
            "keep the .json card save_checkpoint wrote next to the weights, or load the "
            'weights with foreign = "..." and arch = "..."',
        )
    try:
        card = ModelCard.read(card_path)
    except CheckpointError as exc:
        raise CheckpointError(f"{spec.source}: {key}: {exc.problem}", fix=exc.fix) from exc
    _check_fits(spec, f"model {plan.name}", card.num_classes, tuple(card.input_shape), info, "")
    try:
        return _meta_build(card.arch, None, dict(card.arch_kwargs))
    except (RobustlensError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{spec.source}: {key}: model card {card_path} describes a model this robustlens "
            f"cannot build ({exc})",
            fix="use the robustlens version that wrote it (see the card's versions)",
        ) from exc


def _check_fits(
    spec: StudySpec, key: str, classes: int, shape: tuple, info: Any, setting: str
) -> None:
    """The model's class count and input shape are the data set's."""
    wanted = tuple(info.shape)
    how = f" ({setting})" if setting else ""
    if classes != info.num_classes:
        raise _fail(
            spec,
            key,
            f"the model has {classes} classes{how} but data set {info.name} has {info.num_classes}",
            "leave num_classes out of arch_kwargs (it comes from the data set), or use a model "
            f"made for {info.name}",
        )
    if shape != wanted:
        raise _fail(
            spec,
            key,
            f"the model takes inputs of shape {shape}{how} but data set {info.name} has {wanted}",
            "leave in_channels and input_size out of arch_kwargs (they come from the data set), "
            f"or use a model made for {info.name}",
        )


def _check_budget(
    spec: StudySpec, key: str, norm: str, eps: float, dim: int, written: str = ""
) -> None:
    limit = eps_limit(norm, dim)
    if not (math.isfinite(eps) and 0 <= eps <= limit):
        as_written = f" ({written})" if written else ""
        raise _fail(
            spec,
            key,
            f"ε = {eps:g}{as_written} is outside [0, {limit:g}], the {norm} budgets that mean "
            f"something for inputs of {dim} values in [0, 1]",
            f"give an ε ≤ {limit:g} ({'1' if norm == 'linf' else '√d' if norm == 'l2' else 'd'}"
            f" for d = {dim}); beyond it the ε-ball holds every image",
        )


def _check_model_budgets(spec: StudySpec, plan: ModelPlan, dim: int) -> None:
    if plan.recipe is not None and plan.recipe.adversarial:
        _check_budget(spec, f"model {plan.name}.recipe.eps", plan.recipe.norm, plan.recipe.eps, dim)
    if plan.train_on is not None and plan.train_on.eps is not None:
        _check_budget(spec, f"model {plan.name}.train_on.eps", "l2", plan.train_on.eps, dim)


def _check_lens_budgets(spec: StudySpec, lens: LensPlan, dim: int) -> None:
    """Every attack setting of the lens, moved to the data's resolution, within its norm's
    limit; transfer's L2 budget likewise. The settings were parsed with the lens's
    parameters (their ``attack_specs`` / ``threshold_spec``); the text names them."""
    if not dataclasses.is_dataclass(lens.params):
        return
    values = dataclasses.asdict(lens.params)
    reference = values.get("reference_dim", 0)
    for name, parsed in ATTACK_FIELDS.items():
        settings = values.get(name)
        if settings is None:
            continue
        texts = (settings,) if isinstance(settings, str) else settings
        specs = getattr(lens.params, parsed)
        specs = (specs,) if isinstance(specs, AttackSpec) else specs
        key = f"lenses.{lens.name}.{name}"
        for text, setting in zip(texts, specs, strict=True):
            moved = setting.scaled(dim, reference)
            _check_budget(spec, key, setting.norm, moved.eps, dim, f"{text!r} at this resolution")
    if lens.name == "transfer" and "eps" in values:
        moved = scale_eps("l2", values["eps"], dim, reference)
        _check_budget(spec, f"lenses.{lens.name}.eps", "l2", moved, dim, "at this resolution")
    if lens.name == "masking":  # its surrogate must be a model of the study
        names = [plan.name for plan in spec.models]
        if values.get("surrogate") not in (None, *names):
            raise _fail(
                spec,
                "lenses.masking.surrogate",
                f"{values['surrogate']!r} is not a model of the study",
                f"name one of {', '.join(names)}, or leave it out (the first natural one)",
            )


def _check_taps(spec: StudySpec, lens: LensPlan, nets: dict[str, nn.Module | None]) -> None:
    """Every tap the lens names is a module of every (non-adapter) model it looks at."""
    taps = getattr(lens.params, "taps", None)
    if not taps:
        return
    for name, net in nets.items():
        if net is None or not lens.covers(name):
            continue
        try:
            _resolve(net, taps)
        except ConfigError as exc:
            raise _fail(
                spec, f"lenses.{lens.name}.taps", f"model {name}: {exc.problem}", exc.fix
            ) from exc


def _check_lens_fits(
    spec: StudySpec, lens: LensPlan, info: Any, nets: dict[str, nn.Module | None]
) -> None:
    """The checks a lens would otherwise make only when it runs, after training: contour
    thicknesses that fit the images (color), ensemble targets that are data sets with train and
    test splits. A lens that does not apply to a model's anatomy (filters of kernel sizes the
    model lacks) is not an error: the run records it as not applicable, with the reason."""
    params = lens.params
    if lens.name == "color" and params.thicknesses:
        side = min(info.shape[1:])
        if max(params.thicknesses) * 2 > side:
            raise _fail(
                spec,
                "lenses.color.thicknesses",
                f"contour thickness {max(params.thicknesses)} does not fit {side}-pixel images",
                f"use thicknesses ≤ {side // 2}",
            )
    if lens.name == "ensemble":
        for target in params.targets:
            if target.startswith("lowres-"):
                continue
            try:
                splits = dataset_info(target).splits if target in list_datasets() else ()
            except RobustlensError:  # imagefolder: no folder to look at
                splits = ()
            if "train" not in splits or "test" not in splits:
                raise _fail(
                    spec,
                    "lenses.ensemble.targets",
                    f"{target!r} is not a data set with train and test splits",
                    "use 'lowres-<px>' or one of "
                    + ", ".join(n for n in list_datasets() if n != "imagefolder"),
                )


def _check_default_sources(
    spec: StudySpec, lens: LensPlan, nets: dict[str, nn.Module | None]
) -> None:
    """A lens that picks its source models itself (universality, transfer without
    ``sources``) finds one: a model of the first model's architecture trained on the data
    set's own training split (see lenses.common.default_sources). Loaded models count."""
    if getattr(lens.params, "sources", ()) is not None or not hasattr(lens.params, "sources"):
        return
    plans = [plan for plan in spec.models if lens.covers(plan.name)]
    if not plans:
        return

    def arch(plan: ModelPlan) -> str:
        if plan.source == "adapter":
            return "adapter"
        net = nets.get(plan.name)
        return str(plan.arch or getattr(net, "arch", ""))

    first = arch(plans[0])
    if not any(arch(p) == first and p.train_on is None for p in plans):
        raise _fail(
            spec,
            f"lenses.{lens.name}",
            f"no default source models: no natural or adversarially trained {first!r} model "
            "(the first model's architecture); models trained on constructed sets are not "
            "sources",
            "list the sources (sources = [...]) or put a natural or robust model first",
        )
