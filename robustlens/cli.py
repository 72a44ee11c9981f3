"""The ``robustlens`` command line: data, models, training, evaluation, studies, reports.

Errors a user can make print one line (``error: …``), no traceback. Exit status: 0 success,
1 an error during the run (e.g. training diverged), 2 bad usage or bad input.

Each command imports the parts of the library it needs inside its own function (heavy: torch,
pandas, matplotlib): ``robustlens --help`` and a mistyped option answer in about 0.2 s instead of
the 2 s that loading torch takes. These are the only function-local imports kept for speed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from robustlens._version import __version__
from robustlens.errors import ConfigError, NumericalError, RobustlensError
from robustlens.params import Interval, Options, Satisfies, check, invalid

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train natural and adversarially-trained classifiers, attack them, look inside them.",
)
data_app = typer.Typer(no_args_is_help=True, help="Data sets: list, inspect, fetch.")
models_app = typer.Typer(no_args_is_help=True, help="Architectures and checkpoints.")
study_app = typer.Typer(no_args_is_help=True, help="Run studies and see how far they got.")
lenses_app = typer.Typer(no_args_is_help=True, help="The lenses and their paper defaults.")
sets_app = typer.Typer(no_args_is_help=True, help="Constructed data sets (robustified, targeted).")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(study_app, name="study")
app.add_typer(lenses_app, name="lenses")
app.add_typer(sets_app, name="sets")

out = Console()
err = Console(stderr=True)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """``text`` made safe to print: control characters (terminal escape codes) shown as
    ``\\xNN`` and rich markup escaped, so names from files print literally."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return escape(shown)


def option(name: str) -> str:
    """How a parameter is written on the command line: ``eval_n`` → ``--eval-n``."""
    return "--" + name.replace("_", "-")


EPS_OPTION = Interval("real", 0, None, closed="left")
EPS_HINT = "e.g. --eps 0.1 (pixel units in [0, 1]; 0 for no attack)"
OUT_FOLDER = Satisfies(
    lambda path: not (path.exists() and not path.is_dir()),
    "a folder path (created if missing), not an existing file",
)
ATTACKS = (
    "pgd", "fgsm", "cw", "cw-l2", "deepfool",
    "apgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square", "autoattack",
)  # fmt: skip
AUTOATTACK_VERSIONS = ("standard", "plus", "rand")


def check_out_folder(path: Path | None, flag: str = "--out") -> None:
    """Refuse an output folder path that names an existing file (it is never overwritten)."""
    if path is not None:
        check(path, OUT_FOLDER, key=flag, hint="the file is left untouched")


def check_eps_values(values: list[float] | None, flag: str = "--eps") -> None:
    """Refuse NaN, infinite or negative budgets given on the command line."""
    for value in values or ():
        check(value, EPS_OPTION, key=flag, hint=EPS_HINT)


def _version(value: bool) -> None:
    if value:
        out.print(f"robustlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


# ----------------------------------------------------------------------------------- data


@data_app.command("list")
def data_list() -> None:
    """List the registered data sets and where their files are."""
    from robustlens.data import dataset_info, list_datasets, locate_dataset

    table = Table(title="data sets")
    for col in ("name", "classes", "shape", "splits", "files"):
        table.add_column(col)
    for name in list_datasets():
        if name == "imagefolder":
            table.add_row(name, "from folders", "any (resized)", "train/val/test or all", "--root")
            continue
        info = dataset_info(name)
        where = locate_dataset(name)
        table.add_row(
            name,
            str(info.num_classes),
            "×".join(map(str, info.shape)),
            ", ".join(info.splits),
            str(where) if where else "[yellow]not found[/] (robustlens data fetch " + name + ")",
        )
    out.print(table)


@data_app.command("info")
def data_info(name: str, root: Annotated[Path | None, typer.Option()] = None) -> None:
    """Show one data set's facts."""
    from robustlens.data import dataset_info, locate_dataset

    info = dataset_info(name, root=root)
    table = Table(title=safe(info.name), show_header=False)
    for key in ("num_classes", "shape", "mean", "std", "splits", "homepage"):
        table.add_row(key, safe(getattr(info, key)))
    table.add_row("classes", safe(", ".join(info.class_names)))
    table.add_row("files", safe(locate_dataset(name, root=root) or "not found"))
    out.print(table)


@data_app.command("fetch")
def data_fetch(name: str, root: Annotated[Path | None, typer.Option()] = None) -> None:
    """Make a data set available: find it on disk, else download it (checksums verified)."""
    from robustlens.data import fetch_dataset

    where = fetch_dataset(name, root=root)
    out.print(safe(f"{name}: {where}"))


# --------------------------------------------------------------------------------- models


@models_app.command("list")
def models_list() -> None:
    """List the architectures."""
    from robustlens.models import list_architectures

    for name in list_architectures():
        out.print(name)


@models_app.command("card")
def models_card(checkpoint: Path) -> None:
    """Print a checkpoint's model card (after verifying its weights' hash)."""
    from robustlens.models import load_checkpoint

    _, card = load_checkpoint(checkpoint)
    out.print_json(card.to_json())


# ---------------------------------------------------------------------------------- train


def _recipe_from_options(**values: Any):
    """The recipe the options given (not None) make; a bad one is named as its option."""
    from robustlens.train import Recipe

    given = {k: v for k, v in values.items() if v is not None}
    return Recipe.from_dict(given, where="", spell=option)


@app.command("train")
def train_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (one per model).")],
    data: Annotated[str, typer.Option(help="Data set name.")] = "fashion-mnist",
    arch: Annotated[str, typer.Option(help="Architecture (robustlens models list).")] = "small-cnn",
    method: Annotated[
        str, typer.Option(help="natural | pgd | fgsm-rs | n-fgsm | trades | mart")
    ] = "natural",
    norm: Annotated[str, typer.Option(help="linf | l2 | l1")] = "linf",
    eps: Annotated[
        list[float] | None,
        typer.Option(help="Training ε; repeat for a sweep (0 trains a natural model)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="PGD steps during training.")] = None,
    step_size: Annotated[float | None, typer.Option(help="Attack step size.")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    schedule: Annotated[str | None, typer.Option(help="one-cycle | cosine | constant")] = None,
    augment: Annotated[str | None, typer.Option(help="none | crop | crop-flip")] = None,
    eps_warmup_epochs: Annotated[float | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    eval_n: Annotated[
        int | None, typer.Option(help="Test images for the final evaluation.")
    ] = None,
    eval_attack: Annotated[
        str | None,
        typer.Option(help="Final evaluation: pgd (PGD-20) | autoattack (AutoAttack standard)."),
    ] = None,
    train_n: Annotated[int | None, typer.Option(help="Train on a subset of this size.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Folder holding the data set.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, … (default: GPU if any)")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32 | bf16 (CUDA only)")] = None,
    channels_last: Annotated[
        bool | None, typer.Option("--channels-last", help="NHWC layout (CUDA only).")
    ] = None,
    sync_batchnorm: Annotated[
        bool | None, typer.Option("--sync-batchnorm", help="SyncBatchNorm under torchrun (GPUs).")
    ] = None,
) -> None:
    """Train one model, or one per ε with repeated --eps. Under ``torchrun --nproc_per_node N``
    the N processes train each model data-parallel (one GPU each; gloo on CPUs)."""
    from robustlens.runtime import resolve_device

    check_out_folder(out_dir)
    check_eps_values(eps)
    if device is not None:
        resolve_device(device)
    from robustlens.train import train, train_sweep

    epsilons = eps or [0.0]
    base_eps = next((e for e in epsilons if e > 0), 0.0)
    if method == "natural" and base_eps > 0:
        raise invalid(
            "",
            "--eps",
            base_eps,
            "0 (or no --eps) with --method natural",
            "or --method pgd or fgsm-rs",
        )
    recipe = _recipe_from_options(
        method=method,
        norm=norm,
        eps=base_eps,
        steps=steps,
        step_size=step_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        augment=augment,
        eps_warmup_epochs=eps_warmup_epochs,
        seed=seed,
        eval_n=eval_n,
        eval_attack=eval_attack,
        precision=precision,
        channels_last=channels_last,
        sync_batchnorm=sync_batchnorm,
    )
    from robustlens.distributed import process_group

    with process_group(device) as (where, rank_device):
        kwargs = dict(train_n=train_n, data_root=data_root, device=rank_device, progress=True)
        if len(epsilons) == 1:
            results = [train(arch, data, recipe, out_dir, **kwargs)]
        else:
            results = train_sweep(arch, data, recipe, epsilons, out_dir, **kwargs)
    if not where.is_main:
        return
    table = Table(title="trained (accuracies with 95 % Wilson intervals)")
    for col in ("checkpoint", "recipe", "clean acc", "robust acc", "n", "attack", "minutes"):
        table.add_column(col)
    for r in results:
        clean, robust = r.card.interval("clean_accuracy"), r.card.interval("robust_accuracy")
        attack = (r.card.metric("robust_accuracy") or {}).get("attack")
        table.add_row(
            safe(r.checkpoint),
            safe(r.card.recipe.get("method", "")) if r.card.recipe else "",
            str(clean) if clean else "-",
            str(robust) if robust else "-",
            str((clean or robust).n) if clean or robust else "-",
            safe(_attack_label(attack)) if attack else "-",
            "reused" if r.reused else f"{r.seconds / 60:.1f}",
        )
    out.print(table)


def _attack_label(attack: dict[str, Any] | None) -> str:
    if not attack:
        return "-"
    name = attack.get("attack", "?")
    parts = [name.upper(), attack.get("norm", "").upper(), f"ε={attack.get('eps', '?'):g}"]
    if "steps" in attack:
        parts.append(f"{attack['steps']} steps")
    return " ".join(p for p in parts if p)


def attack_brief(attack: dict[str, Any]) -> str:
    """A measured attack in a few words: ``PGD-20, L∞ 0.1``, ``DeepFool, L2 0.5``."""
    from robustlens.attacks.spec import NORM_NAMES

    name = str(attack.get("attack", "?"))
    label = {"pgd": "PGD", "fgsm": "FGSM", "cw-l2": "C&W", "deepfool": "DeepFool"}.get(name, name)
    if attack.get("version"):
        label += f" {attack['version']}"
    elif attack.get("steps") and name not in ("fgsm", "cw-l2", "deepfool"):
        label += f"-{attack['steps']}"
    norm = NORM_NAMES.get(str(attack.get("norm", "")), str(attack.get("norm", "")))
    eps = attack.get("eps")
    budget = " ".join(p for p in (norm, f"{eps:g}" if isinstance(eps, int | float) else "") if p)
    return f"{label}, {budget}" if budget else label


def accuracy_line(what: str, value: Any, attack: dict[str, Any] | None = None) -> str:
    """``robust accuracy 0.734 [0.706, 0.760] (n = 1000, PGD-20, L∞ 0.1)``: a proportion
    (``robustlens.proportions.Proportion``) with its 95 % Wilson interval and what measured it."""
    extra = f", {attack_brief(attack)}" if attack else ""
    return f"{what} {value} (n = {value.n}{extra})"


# ----------------------------------------------------------------------------------- eval


def load_any_model(spec: str, *, arch: str | None, data: str | None) -> tuple[Any, str | None]:
    """A model from a robustlens checkpoint, a foreign .pt/.pth file, or an adapter id, with
    the data set its card names (None for an adapter, which has no card)."""
    from robustlens.models import load_checkpoint

    path = Path(spec)
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        from robustlens.models.foreign import load_foreign_weights

        if not arch or not data:
            raise ConfigError(
                f"{path.name} is a foreign state dict: give --arch and --data to load it"
            )
        model, card = load_foreign_weights(path, arch, data)
        return model, card.dataset
    if not path.exists() and ":" in spec:
        from robustlens.models.adapters import load_adapter

        return load_adapter(spec), None
    model, card = load_checkpoint(path)
    return model, card.dataset


def build_attack(
    model,
    name: str,
    norm: str,
    eps: float,
    steps: int,
    step_size: float | None,
    restarts: int,
    seed: int,
    version: str = "standard",
):
    from robustlens.attacks import FGSM, PGD, CarliniWagnerL2, DeepFool, threat_model
    from robustlens.attacks.spec import AttackSpec

    key = check(name.lower(), Options(ATTACKS), key="--attack")
    if key == "autoattack":
        check(version, Options(AUTOATTACK_VERSIONS), key="--version")
        text = "autoattack" if version == "standard" else f"autoattack-{version}"
        return AttackSpec.parse(f"{text} {norm} {eps!r}").build(model, seed=seed)
    if key.startswith(("apgd", "fab", "square")):
        # their own budgets: --steps is APGD's / FAB's iterations, Square's queries
        return AttackSpec.parse(f"{key} {norm} {eps!r} {steps}").build(model, seed=seed)
    if key == "pgd":
        return PGD(model, threat_model(norm, eps), steps, step_size, restarts=restarts, seed=seed)
    if key == "fgsm":
        return FGSM(model, threat_model(norm, eps), seed=seed)
    if key in ("cw", "cw-l2"):
        if norm != "l2":
            raise invalid("", "--norm", norm, "'l2' with --attack cw", "C&W is an L2 attack")
        return CarliniWagnerL2(model, steps=steps, seed=seed)
    return DeepFool(model, norm, steps=steps, seed=seed)


@app.command("eval")
def eval_cmd(
    model_spec: Annotated[str, typer.Argument(metavar="MODEL", help="Checkpoint or adapter id.")],
    attack: Annotated[
        str,
        typer.Option(
            help="pgd | fgsm | cw | deepfool | apgd | apgd-dlr | apgd-t | fab | fab-t | square "
            "| autoattack"
        ),
    ] = "pgd",
    norm: Annotated[str, typer.Option(help="linf | l2 | l1")] = "linf",
    eps: Annotated[
        str, typer.Option(help="Budget in [0, 1] pixel units; a fraction such as 8/255 too.")
    ] = "0.1",
    steps: Annotated[
        int, typer.Option(help="Iterations (Square: queries); AutoAttack fixes its own.")
    ] = 20,
    version: Annotated[
        str, typer.Option(help="AutoAttack's version: standard | plus | rand.")
    ] = "standard",
    per_image: Annotated[
        Path | None,
        typer.Option(
            help="Also write per-image results (clean, robust, norm, which attack broke it) "
            "to this new JSON file."
        ),
    ] = None,
    step_size: Annotated[float | None, typer.Option(help="Default 2.5·ε/steps.")] = None,
    restarts: Annotated[int, typer.Option()] = 1,
    n: Annotated[
        int,
        typer.Option(
            "--n",
            "--images",
            help="Test images (class-balanced subset); --images under torchrun, whose own "
            "options take --n for theirs.",
        ),
    ] = 1000,
    data: Annotated[str | None, typer.Option(help="Data set (default: the model's).")] = None,
    arch: Annotated[str | None, typer.Option(help="Architecture, for foreign .pt files.")] = None,
    split: Annotated[str, typer.Option()] = "test",
    seed: Annotated[int, typer.Option()] = 0,
    batch_size: Annotated[int, typer.Option()] = 256,
    data_root: Annotated[Path | None, typer.Option()] = None,
    on_set: Annotated[
        Path | None,
        typer.Option(help="A constructed set's folder to evaluate on instead of a split."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Write the result into the model's card as its evaluation of record (attack, "
            "n, ε, accuracies with intervals, date, version); the card's other fields stay.",
        ),
    ] = False,
) -> None:
    """Clean and robust accuracy of a model under one attack."""
    from robustlens.attacks.spec import parse_eps
    from robustlens.data import dataset_info, load_dataset
    from robustlens.distributed import process_group
    from robustlens.models.zoo import check_model_fits

    try:
        eps_value = parse_eps(eps)
    except (ValueError, ZeroDivisionError) as exc:
        raise invalid("", "--eps", eps, "a number such as 0.1 or 8/255", "not a number") from exc
    eps = eps_value
    check_eps_values([eps])
    if per_image is not None and per_image.exists():
        raise ConfigError(
            f"{per_image} exists; robustlens never overwrites a file",
            fix="give --per-image a new file name",
        )
    card_path, weights_sha = record_target(model_spec, on_set) if record else (None, None)
    model, card_dataset = load_any_model(model_spec, arch=arch, data=data)
    dataset = data or card_dataset
    if not dataset:
        raise ConfigError(
            f"{model_spec} names no data set (adapters have no model card)",
            fix="give --data, e.g. --data cifar10",
        )
    if dataset != "imagefolder":
        info = dataset_info(dataset, root=data_root)
        check_model_fits(model, info.num_classes, info.shape, dataset)
    if on_set is not None:
        images = constructed_images(on_set, dataset, model, n)
        split = f"constructed set {on_set}"
    else:
        images = load_dataset(dataset, split, n=n, seed=seed, root=data_root)
        check_model_fits(model, images.info.num_classes, tuple(images.images.shape[1:]), dataset)
    with process_group() as (where, device):
        result = _evaluate(
            model,
            images,
            device,
            (attack, norm, eps, steps, step_size, restarts, seed, version),
            batch_size,
        )
    if not where.is_main:
        return
    clean, robust = result.clean_proportion, result.robust_proportion
    summary = {
        "model": model_spec,
        "data": dataset,
        "split": split,
        "n": result.n,
        "clean_accuracy": result.clean_accuracy,
        "clean_ci": [clean.low, clean.high],
        "robust_accuracy": result.robust_accuracy,
        "robust_ci": [robust.low, robust.high],
        "confidence": robust.confidence,
        "attack": result.attack,
        "seconds": result.seconds,
    }
    if per_image is not None:
        write_per_image(per_image, summary, result)
    if card_path is not None:
        summary["recorded_in"] = str(
            write_record(card_path, weights_sha, result, dataset, split, seed)
        )
    if as_json:
        out.print_json(json.dumps(summary))
        return
    out.print(safe(f"{model_spec} on {dataset} ({split}); 95 % Wilson intervals"))
    for line in (
        accuracy_line("clean accuracy ", clean),
        accuracy_line("robust accuracy", robust, result.attack),
        f"mean iterations {result.iterations.float().mean():.1f}, {result.seconds:.1f} s",
        *([f"recorded as the evaluation of record in {card_path}"] if card_path else []),
    ):
        out.print(safe(line), soft_wrap=True, highlight=False)


def record_target(model_spec: str, on_set: Path | None) -> tuple[Path, str | None]:
    """The card ``--record`` writes to, checked before any work (one clear error), and the
    sha256 of the weights it describes now."""
    from robustlens.models import ModelCard
    from robustlens.models.record import card_to_record

    if on_set is not None:
        raise ConfigError(
            "--record writes a model's evaluation of record, which is on a data split, not "
            "on a constructed set",
            fix="leave --on-set out, or --record",
        )
    card_path = card_to_record(model_spec)
    return card_path, ModelCard.read(card_path).weights_sha256


def write_record(
    card_path: Path, weights_sha: str | None, result, dataset: str, split: str, seed: int
) -> Path:
    """The measurement written into the card's ``evaluation`` field (atomically)."""
    from robustlens.models.record import evaluation_record, record_evaluation

    entry = evaluation_record(
        attack=dict(result.attack),
        label=attack_brief(result.attack),
        clean=result.clean_proportion,
        robust=result.robust_proportion,
        data=dataset,
        split=split,
        seed=seed,
        weights_sha256=weights_sha,
    )
    record_evaluation(card_path, entry)
    return card_path


def write_per_image(path: Path, summary: dict, result) -> None:
    """The summary and one record per image (clean correct, robust, perturbation norm, the
    attack that broke it for AutoAttack), written to the new file ``path`` whole or not at
    all."""
    records = [
        {
            "index": i,
            "clean_correct": bool(result.clean_correct[i]),
            "robust": bool(result.robust[i]),
            "norm": float(result.norms[i]),
            **({"broken_by": result.broken_by[i]} if result.broken_by is not None else {}),
        }
        for i in range(result.n)
    ]
    text = json.dumps({**summary, "images": records}, indent=1, allow_nan=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _evaluate(model, images, device, attack_args: tuple, batch_size: int):
    """``robust_accuracy`` of ``model`` on ``device`` (the default device when None): under
    torchrun the images are sharded across the processes and the results gathered."""
    from robustlens.attacks import robust_accuracy
    from robustlens.runtime import default_device

    model = model.to(device or default_device()).eval()
    atk = build_attack(model, *attack_args)
    return robust_accuracy(
        model, images, atk, eps=attack_args[2], batch_size=batch_size, progress=True
    )


def constructed_images(folder: Path, dataset: str, model, n: int):
    """The first ``n`` images of a constructed set, checked against the model's data set and
    input shape, as an ImageSet (labels: the set's own, e.g. ŷ for targeted sets)."""
    import torch

    from robustlens.constructed import load_set
    from robustlens.data import dataset_info

    info = dataset_info(dataset)
    shape = tuple(getattr(model, "input_shape", None) or info.shape)
    images = load_set(folder, dataset=dataset, shape=shape).as_imageset(info)
    return images if n >= len(images) else images.take(torch.arange(n))


@sets_app.command("show")
def sets_show(
    folder: Annotated[Path, typer.Argument(help="The set's folder (card.json + images).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole card as JSON.")] = False,
) -> None:
    """What a constructed set is and the checks recorded when it was made (hash verified)."""
    from robustlens.constructed import load_set

    constructed = load_set(folder)
    card = constructed.card
    if as_json:
        out.print_json(json.dumps(card))
        return
    table = Table(title=safe(f"{folder}: {card.get('kind', 'constructed')} set"), show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("data set", safe(f"{card.get('dataset')} ({card.get('split', '?')} split)"))
    table.add_row("images", safe(f"{len(constructed.images)} of shape {card.get('image_shape')}"))
    table.add_row("made against", safe(card.get("model") or "?"))
    for key in ("steps", "step_size", "eps", "seed_mode", "mode", "seed"):
        if card.get(key) is not None:
            table.add_row(key, safe(card[key]))
    for key, value in sorted((card.get("statistics") or {}).items()):
        if isinstance(value, float):
            shown = f"{value:.4g}"
        elif isinstance(value, list):
            shown = safe(", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value))
        else:
            shown = safe(value)
        table.add_row(safe(key), shown)
    leak = card.get("leakage")
    if leak:
        from robustlens.constructed.targeted import describe_leakage

        table.add_row("leakage check", safe(describe_leakage(leak)))
    out.print(table)


# ---------------------------------------------------------------------------------- study


@study_app.command("run")
def study_run(
    file: Annotated[Path, typer.Argument(help="Study file (TOML).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Default: runs/<study name>.")
    ] = None,
    force: Annotated[
        list[str] | None, typer.Option("--force", help="Recompute this lens (repeatable).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, … (default: GPU if any)")] = None,
    fail_fast: Annotated[
        bool,
        typer.Option(
            "--fail-fast", help="Stop at the first lens that fails (default: run all others)."
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Run the lenses on a local Dask cluster of N processes (one per GPU on CUDA); "
            "needs robustlens[cluster].",
            min=1,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run the lenses on a running Dask cluster (tcp://host:8786); "
            "needs robustlens[cluster]."
        ),
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke",
            help="Scaled down to minutes on a CPU (1 epoch, few images and steps), in "
            "runs/<name>-smoke: a test of the whole path, not the paper's numbers.",
        ),
    ] = False,
) -> None:
    """Train or load the study's models, run its lenses (cached), write the report.

    A lens that fails is recorded and the others still run; the report lists the failure,
    the exit status is 1, and running the study again retries only what failed. With
    --workers or --scheduler the lens units run on a Dask cluster (docs/SCALING-dask.md)."""
    from robustlens.distributed import launched
    from robustlens.runtime import resolve_device

    if launched():
        raise ConfigError(
            "study run is one process (it writes one results store); torchrun started several",
            fix="run it without torchrun; train a big model with torchrun ... robustlens train "
            "and name its checkpoint in the study (docs/SCALING.md)",
        )
    check_out_folder(out_dir)
    if device is not None:
        resolve_device(device)
    from robustlens.runner import Study

    if smoke:
        from robustlens.study.smoke import smoke_spec
        from robustlens.study.spec import load_spec

        spec = smoke_spec(load_spec(file))
        study = Study(spec, out_dir or Path("runs") / spec.name, device=device)
        out.print(f"smoke run of {safe(file)} in {safe(study.dir)}", highlight=False)
    else:
        study = Study.from_file(file, out_dir, device=device)
    summary = study.run(
        force=tuple(force or ()),
        progress=True,
        fail_fast=fail_fast,
        workers=workers,
        scheduler=scheduler,
    )
    out.print(
        f"models: {len(summary.trained)} trained, {len(summary.reused)} reused, "
        f"{len(summary.loaded)} loaded; lens runs: {len(summary.computed)} computed, "
        f"{len(summary.cached)} cached, {len(summary.not_applicable)} not applicable, "
        f"{len(summary.failed)} failed; {summary.seconds / 60:.1f} min"
    )
    if summary.superseded:
        out.print(
            f"{summary.superseded} lens results already in {safe(study.dir)} were made with "
            "other settings (another study seed, data, lens parameters, models or robustlens "
            "version) and were not used; they stay in the store",
            highlight=False,
        )
    out.print(f"report: {safe(summary.report)}")
    if summary.failed:
        for failure in summary.failed:
            err.print(
                f"[bold red]failed:[/] {safe(failure.text())}", highlight=False, soft_wrap=True
            )
        err.print("run the study again to retry only the failed lens runs", highlight=False)
        raise typer.Exit(1)


@study_app.command("check")
def study_check(file: Annotated[Path, typer.Argument(help="Study file (TOML).")]) -> None:
    """Check a study file, its checkpoints, architectures and budgets; train nothing."""
    from robustlens.study.spec import load_spec
    from robustlens.study.validate import validate_study

    spec = load_spec(file)
    validate_study(spec)
    out.print(
        f"{escape(str(file))}: ok ({len(spec.models)} models, {len(spec.lenses)} lenses)",
        highlight=False,
        soft_wrap=True,
    )


@study_app.command("status")
def study_status(
    directory: Annotated[Path, typer.Argument(help="Study output folder.")],
    claims: Annotated[
        bool,
        typer.Option(
            "--claims", help="Also each claim's status, with the paper's own figure beside ours."
        ),
    ] = False,
    provenance: Annotated[
        bool,
        typer.Option(
            "--provenance",
            help="Also how to reproduce the last run: code, libraries, machine, data, seeds.",
        ),
    ] = False,
) -> None:
    """What a study has done and what is left (and, with --claims, where each claim stands;
    with --provenance, how to reproduce the last run)."""
    from robustlens.runner import Study

    study = Study.open(directory)
    status = study.status()
    table = Table(title=safe(f"study {status['study']} ({status['dir']})"))
    for col in ("item", "state"):
        table.add_column(col)
    for m in status["models"]:
        table.add_row(
            safe(f"model {m['model']} ({m['source']})"), "done" if m["done"] else "[yellow]left"
        )
    for lens in status["lenses"]:
        state = f"{lens['done']}/{lens['total']}"
        if lens.get("failed"):
            state += f", [red]{lens['failed']} failed[/]"
        if lens.get("not_applicable"):
            state += f" ({lens['not_applicable']} not applicable)"
        table.add_row(
            safe(f"lens {lens['lens']}"),
            state if lens["done"] == lens["total"] else f"[yellow]{state}",
        )
    table.add_row("report", safe(status["report"]) if status["report"] else "[yellow]not written")
    out.print(table)
    if claims:
        _print_claims(study)
    if provenance:
        _print_provenance(study)


def _print_provenance(study: Any) -> None:
    """The provenance the last run recorded, one "label: text" line each."""
    from robustlens.study.provenance import provenance_rows

    with study.read() as results:
        record = results.provenance
    if record is None:
        out.print("[yellow]no provenance recorded[/]: run the study again with this robustlens")
        return
    out.print("\n[bold]provenance[/]")
    for label, text in provenance_rows(record):
        out.print(f"{safe(label)}: {safe(text)}", highlight=False, soft_wrap=True)


STATUS_STYLE = {"holds": "green", "fails": "red", "inconclusive": "yellow"}


def _print_claims(study: Any) -> None:
    """Each claim's status, then "paper: <the paper's figure, cited> → ours: <our evidence>"
    and the direction the paper reports, read from the study's results as the report is."""
    from robustlens.report.builder import claim_rows

    with study.read() as results:
        rows = claim_rows(results)
    if not rows:
        out.print("claims: none of the study's lenses is needed by a claim", highlight=False)
        return
    for row in rows:
        style = STATUS_STYLE.get(row.status, "dim")
        out.print(
            f"\n[bold]{safe(row.claim_id)}[/]  [{style}]{safe(row.status)}[/]"
            + (f"  ({safe(row.seeds)})" if row.seeds else ""),
            highlight=False,
            soft_wrap=True,
        )
        if row.paper_figure:
            out.print(f"  paper: {safe(row.paper_figure)}", highlight=False, soft_wrap=True)
            out.print(f"  → ours: {safe(row.evidence)}", highlight=False, soft_wrap=True)
            out.print(
                f"  paper's direction: {safe(row.direction)}", highlight=False, soft_wrap=True
            )
        else:
            out.print(f"  ours: {safe(row.evidence)}", highlight=False, soft_wrap=True)


@app.command("report")
def report_cmd(directory: Annotated[Path, typer.Argument(help="Study output folder.")]) -> None:
    """Write the study's HTML report again from its results."""
    from robustlens.runner import Study

    path = Study.open(directory).write_report()
    out.print(f"report: {safe(path)}")


@lenses_app.command("list")
def lenses_list(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/LENSES.md.")] = False,
) -> None:
    """List the lenses with their papers and default parameters."""
    from robustlens.lenses.docs import lens_table_markdown

    if markdown:
        print(lens_table_markdown(), end="")
        return
    from robustlens.lenses import LENSES

    table = Table(title="lenses")
    for col in ("lens", "paper", "section", "parameters (defaults)"):
        table.add_column(col)
    for name, spec in LENSES.items():
        table.add_row(name, spec.paper, spec.section, spec.params.__doc__ or "")
    out.print(table)


EXIT_RUN_FAILED = 1
"""The work started and then failed (e.g. training diverged: a NumericalError)."""
EXIT_BAD_INPUT = 2
"""Bad usage or bad input, found before any work: Typer's usage errors and every other
RobustlensError (ConfigError, DataError, CheckpointError)."""


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
"""Errors of the file system a run writes to (full disk, quota, read-only, permission): one
line and exit 1, wherever they strike (checkpoints, constructed sets, figures)."""


def exit_code(exc: RobustlensError) -> int:
    """The exit status for ``exc``: its own ``exit_code`` if it sets one, else 1 for a
    NumericalError (a computation that failed while running) and 2 for bad input."""
    default = EXIT_RUN_FAILED if isinstance(exc, NumericalError) else EXIT_BAD_INPUT
    return int(getattr(exc, "exit_code", default))


QUIET_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    # (message regex, category, module regex): dependency noise a user cannot act on.
    (r".*weights_only.*", FutureWarning, r"torch(\.|$)"),
    (r".*TypedStorage is deprecated.*", UserWarning, r"torch(\.|$)"),
    (r".*non-full backward hook.*", UserWarning, r"torch(\.|$)"),
    (r"", UserWarning, r"captum(\.|$)"),
    (r"", FutureWarning, r"captum(\.|$)"),
    (r"", UserWarning, r"kornia(\.|$)"),
    (r"", DeprecationWarning, r"kornia(\.|$)"),
)


def quiet_dependency_warnings() -> None:
    """Hide the known dependency warnings of :data:`QUIET_WARNINGS` (targeted by message and
    module: any other warning, e.g. one of ours that a user can act on, still shows)."""
    for message, category, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and a non-zero exit
    (0 success, 1 an error during the run, 2 bad usage or bad input)."""
    quiet_dependency_warnings()
    try:
        app()
    except RobustlensError as exc:
        line = " ".join(str(exc).splitlines())  # one line, whatever the message holds
        err.print(f"[bold red]error:[/] {safe(line)}", highlight=False, soft_wrap=True)
        sys.exit(exit_code(exc))
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        err.print(
            f"[bold red]error:[/] {safe(exc.strerror or exc)}{safe(where)}. Free some space, or "
            "choose a folder you can write to; finished work is kept and a rerun resumes",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_RUN_FAILED)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
