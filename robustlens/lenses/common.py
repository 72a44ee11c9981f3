"""Helpers several lenses share: paper attack settings at the data's resolution, adversarial
examples computed once per run, penultimate representations, the names of per-attack arrays,
and the source models of paper 001's lenses (universality, transfer)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property

import numpy as np
import torch

from robustlens.attacks.evaluate import predict
from robustlens.attacks.result import AttackResult
from robustlens.attacks.spec import AttackSpec, parse_specs, repeats
from robustlens.constructed.inversion import representations as rep
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, StudyModel
from robustlens.lenses.parameters import LensParams, Refusal
from robustlens.models.anatomy import read_activations
from robustlens.params import ListOf, Satisfies

ATTACK_BATCH = 250


def attack_array(stem: str, key: str) -> str:
    """``<stem>/<attack key>``: the array ``stem`` of one attack setting (``AttackSpec.key()``),
    e.g. ``robust/pgd linf 0.025 10``; a key may itself hold spaces and ``@reference``."""
    return f"{stem}/{key}"


def attack_keys(names: Sequence[str], stem: str) -> list[str]:
    """The attack keys of the :func:`attack_array` names of ``stem`` among ``names``."""
    prefix = attack_array(stem, "")
    return [n[len(prefix) :] for n in names if n.startswith(prefix)]


ATTACK_SETTING = "an attack setting 'ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]'"
GRADIENT_SETTING = "a PGD or FGSM setting (a fixed budget, e.g. {example!r})"
ATTACK_LIST = ListOf(Satisfies(lambda text: isinstance(text, str), ATTACK_SETTING), min_len=1)
"""The constraint on a lens's ``attacks``: settings as text (each parsed by the lens's
:meth:`~robustlens.lenses.base.LensParams.refusals`, see :func:`attack_refusals`)."""


def attack_refusals(
    key: str, texts: str | Sequence[str], *, gradient: bool = False, example: str = ""
) -> Iterator[Refusal]:
    """Attack settings as written in a lens's parameters (``key``: one setting, or ``key[i]``
    of a list) that do not parse (the parser's complaint as the hint) or, with ``gradient``,
    are not PGD or FGSM (``example``: one the lens would take): a lens that needs
    perturbations of a fixed budget cannot use a minimal-norm attack."""
    rows = (
        [(key, texts)]
        if isinstance(texts, str)
        else [(f"{key}[{i}]", t) for i, t in enumerate(texts)]
    )
    for place, text in rows:
        try:
            spec = AttackSpec.parse(text)
        except ConfigError as exc:
            yield Refusal(place, text, ATTACK_SETTING, hint=exc.problem)
            continue
        if gradient and spec.minimal_norm:
            yield Refusal(place, text, GRADIENT_SETTING.format(example=example))


def repeated_attacks(
    key: str, texts: Sequence[str], specs: Sequence[AttackSpec], reference_dim: int
) -> Iterator[Refusal]:
    """Settings (``texts``, parsed as ``specs``) that are the same attack as an earlier one at
    every resolution (see :meth:`AttackSpec.identity`): they would give two identical rows."""
    for first, i in repeats(specs, reference_dim):
        yield Refusal(
            f"{key}[{i}]",
            texts[i],
            f"an attack other than {key}[{first}] ({texts[first]!r})",
            hint="both are the same attack (L∞ budgets are never rescaled; FGSM takes no "
            "steps): keep one of them",
        )


class ParsedAttacks(LensParams):
    """For lens parameters whose ``attacks`` hold attack settings as written in the study file
    ("pgd linf 0.025 5"): ``attack_specs`` parses them once. The text stays the stored
    parameter (and so the cache key); the lens works on the parsed settings."""

    attacks: tuple[str, ...]

    @cached_property
    def attack_specs(self) -> tuple[AttackSpec, ...]:
        """``attacks`` parsed, in order (the first bad one raises a ConfigError naming it)."""
        return tuple(parse_specs(self.attacks))


def resolve_attacks(
    specs: Sequence[AttackSpec], data: ImageSet, reference_dim: int
) -> list[tuple[AttackSpec, AttackSpec]]:
    """(as written, as run) attack settings: ε moved to the evaluation data's dimension from
    the input size the row names (``@imagenet``, ``@cifar10``, ``@N``) or, for a row naming
    none, from ``reference_dim`` input values (the paper's data set; 0 = use as written)."""
    dim = data.info.dimension
    return [(spec, spec.scaled(dim, reference_dim)) for spec in specs]


def adversarial(
    ctx: LensContext,
    model: StudyModel,
    data: ImageSet,
    spec: AttackSpec,
    *,
    early_stop: bool,
    cw_binary_steps: int = 9,
) -> AttackResult:
    """The attack's result on ``data`` (on the CPU), computed once per study run and shared by
    every lens asking for the same model, data, setting and early-exit choice."""
    key = (
        "adversarial",
        model.digest,
        data.fingerprint(),
        spec.run_key(early_stop=early_stop, cw_binary_steps=cw_binary_steps),
        ctx.seed,
    )
    if key not in ctx.cache:
        attack = spec.build(
            model.model, seed=ctx.seed, early_stop=early_stop, cw_binary_steps=cw_binary_steps
        )
        x, y = data.images.to(ctx.device), data.labels.to(ctx.device)
        result = attack.run(x, y, batch_size=ATTACK_BATCH)
        ctx.cache[key] = AttackResult(
            result.adversarial.cpu(),
            result.success.cpu(),
            result.norms.cpu(),
            result.iterations.cpu(),
            None if result.loss is None else result.loss.cpu(),
        )
    return ctx.cache[key]


def predictions(model: StudyModel, images: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    """Predicted classes on the CPU (batched, NaN outputs refused; see attacks.evaluate)."""
    return predict(model.model, images.to(device), batch).cpu()


def representations(
    model: StudyModel, images: torch.Tensor, device, batch: int = 500
) -> np.ndarray:
    """Penultimate representations f(x) as float64 [N, D]."""
    return rep(model.model, images.to(device), batch).double().cpu().numpy()


def per_sample_loss(
    model: StudyModel, images: torch.Tensor, labels: torch.Tensor, device, batch: int = 500
) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            logits = model.model(images[i : i + batch].to(device))
            out.append(
                torch.nn.functional.cross_entropy(
                    logits, labels[i : i + batch].to(device), reduction="none"
                ).cpu()
            )
    return torch.cat(out).double().numpy()


def subset(data: ImageSet, n: int | None) -> ImageSet:
    """The first ``n`` evaluation images, class-balanced (all when None)."""
    return data if n is None or n >= len(data) else data.subset(n, seed=0)


# ---------------------------------------------------------------- source models (paper 001)


def model_arch(m: StudyModel) -> str:
    """The architecture a study model was built as (its card's, else the model's)."""
    return str(getattr(m.card, "arch", "") or getattr(m.model, "arch", ""))


def default_sources(models: list[StudyModel], lens: str) -> list[StudyModel]:
    """The models of the first model's architecture that are natural or adversarially trained
    on the data set's own training split (Springer et al. §5: standard and ε-robust ResNet50
    sources); models trained on constructed sets are not sources."""
    if not models:
        raise ConfigError(f"{lens} needs models", fix="add models to the study")
    arch = model_arch(models[0])
    chosen = [m for m in models if model_arch(m) == arch and (m.is_natural or m.is_robust)]
    if not chosen:
        raise ConfigError(
            f"{lens}: no default source models: no natural or adversarially trained "
            f"{arch!r} model (the first model's architecture); models trained on constructed "
            "sets are not sources",
            fix="list the sources (sources = [...]) or put a natural or robust model first",
        )
    return chosen


def chosen_sources(
    models: list[StudyModel], wanted: Sequence[str] | None, lens: str
) -> list[StudyModel]:
    """The models named in ``wanted`` (study order), or :func:`default_sources` when None."""
    if wanted is None:
        return default_sources(models, lens)
    names = [m.name for m in models]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(
            f"{lens} sources {', '.join(unknown)} are not models of the study",
            fix=f"choose from {', '.join(names)}",
        )
    return [m for m in models if m.name in wanted]


def source_order(sources: Sequence[StudyModel]) -> list[StudyModel]:
    """Natural sources first (study order), then robust ones by norm and training ε."""
    index = {m.name: i for i, m in enumerate(sources)}
    return sorted(
        sources,
        key=lambda m: (not m.is_natural, m.train_norm or "", m.train_eps, index[m.name]),
    )


# ------------------------------------------------------------------------ model anatomy


def tap_shapes(net: torch.nn.Module, taps: Sequence[str] | None = None) -> dict[str, tuple]:
    """The output shape (without the batch) of each tap (default: the model's own) on one
    grey image of the model's input size: one forward in eval mode, training flags restored."""
    shape = tuple(getattr(net, "input_shape", ()))
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    x = torch.full((1, *shape), 0.5, device=device)
    acts = read_activations(net, x, taps)
    return {name: tuple(out.shape[1:]) for name, out in acts.items()}


def convolutional_taps(
    net: torch.nn.Module, taps: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """(taps that output feature maps [C, H, W], taps that output vectors [C]) among ``taps``
    (default: the model's own), in order: lenses about feature maps choose the first."""
    shapes = tap_shapes(net, taps)
    maps = [name for name, s in shapes.items() if len(s) == 3]
    return maps, [name for name in shapes if name not in maps]
