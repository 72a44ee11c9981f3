"""One training loop for natural and adversarial training, resumable after any interruption.

Adversarial training minimises the loss on attacked inputs (Madry et al. 2018, Eq. 2.1):
min_θ E_(x,y) max_{δ∈S} L(θ, x + δ, y), the inner maximisation done by PGD, by FGSM with a
random start (Wong et al. 2020) or N-FGSM (de Jorge et al. 2022); TRADES and MART minimise
their own losses (robustlens.train.methods). Single-step methods hold out a training batch and
check the PGD accuracy on it several times per epoch: a collapse (catastrophic overfitting)
restores the best check's weights and stops (robustlens.train.guard). Every epoch is
checkpointed; shuffling and attack noise come from generators seeded by (seed, epoch), so a
resumed run gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from robustlens.attacks.apgd import APGDT
from robustlens.attacks.autoattack import AutoAttack
from robustlens.attacks.base import Attack
from robustlens.attacks.evaluate import robust_accuracy
from robustlens.attacks.pgd import PGD
from robustlens.attacks.threat import threat_model
from robustlens.data.imageset import ImageSet
from robustlens.data.subsets import choose_subset
from robustlens.distributed import all_sum, main_first
from robustlens.errors import CheckpointError, ConfigError, NumericalError
from robustlens.models import ModelCard, RobustClassifier, load_checkpoint, save_checkpoint
from robustlens.models.checkpoint import (
    checkpoint_paths,
    finish_checkpoint_unit,
    save_checkpoint_unit,
)
from robustlens.models.mode import eval_mode
from robustlens.progress import progress_bar
from robustlens.runtime import default_device
from robustlens.train.augment import augment
from robustlens.train.guard import CollapseGuard
from robustlens.train.killpoint import kill_point
from robustlens.train.methods import TrainingAttack, batch_loss
from robustlens.train.parallel import Runtime
from robustlens.train.recipe import Recipe
from robustlens.train.schedule import learning_rate, training_eps

log = logging.getLogger(__name__)

FINAL = "model.safetensors"
METRICS = "metrics.jsonl"
STATE_DIR = "state"
MONITOR_N = 256
CHECK_N = 256
"""Training images held out for the catastrophic-overfitting check (at most a tenth)."""
CHECK_STEPS = 10


@dataclass
class TrainResult:
    """A trained model with its card, per-epoch history and where it was saved."""

    model: RobustClassifier
    card: ModelCard
    history: list[dict[str, Any]]
    checkpoint: Path
    seconds: float
    reused: bool = False


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def training_identity(model: RobustClassifier, train_set: ImageSet, recipe: Recipe) -> dict:
    """What decides the trained weights: architecture, data and recipe."""
    return {
        "arch": model.arch,
        "arch_kwargs": model.arch_kwargs,
        "dataset": train_set.info.name,
        "split": train_set.split,
        "n": len(train_set),
        "data_fingerprint": train_set.fingerprint(),
        "recipe": recipe.to_dict(),
    }


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class _Trainer:
    """State of one training run; see :func:`train_model`."""

    def __init__(
        self,
        model: RobustClassifier,
        train_set: ImageSet,
        recipe: Recipe,
        out_dir: Path,
        eval_set: ImageSet | None,
        device: torch.device,
        progress: bool,
        runtime: Runtime | None = None,
    ) -> None:
        self.runtime = runtime or Runtime.for_run(recipe, device)
        self.where = self.runtime.where
        # self.net: what the training loss calls (the model in DDP with several processes)
        self.model, self.net = self.runtime.prepare(model)
        self.train_set = train_set
        self.recipe = recipe
        self.out_dir = out_dir
        self.state_dir = out_dir / STATE_DIR
        self.eval_set = eval_set
        self.device = device
        self.progress = progress
        self.identity = training_identity(model, train_set, recipe)
        self.guard: CollapseGuard | None = None
        self.check_set: ImageSet | None = None
        self.stopped = False
        if recipe.single_step and recipe.overfit_checks > 0:
            self.train_set, self.check_set = hold_out(train_set, recipe.seed)
            if self.check_set is None:
                log.warning("%d training images: too few to hold out a check batch", len(train_set))
            else:
                self.guard = CollapseGuard(recipe.overfit_drop)
        self.batches_per_epoch = -(-len(self.train_set) // recipe.batch_size)
        self.total_steps = self.batches_per_epoch * recipe.epochs
        self.check_every = max(1, math.ceil(self.batches_per_epoch / max(recipe.overfit_checks, 1)))
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov and recipe.momentum > 0,
            weight_decay=recipe.weight_decay,
        )
        self.history: list[dict[str, Any]] = []
        self.epoch = 0

    # ------------------------------------------------------------------ checkpoint / resume

    def save_state(self) -> None:
        """Checkpoint after an epoch: numbered files first, then the pointer, then clean up
        (rank 0 only; the others wait until it is done)."""
        with main_first(self.where):
            if self.where.is_main:
                self._save_state()

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tag = f"epoch-{self.epoch:04d}"
        save_checkpoint(
            self.model, self.state_dir / f"{tag}.safetensors", recipe=self.card_recipe()
        )
        buffers = {
            name: self.optimizer.state[p]["momentum_buffer"]
            for name, p in self.model.named_parameters()
            if p in self.optimizer.state and "momentum_buffer" in self.optimizer.state[p]
        }
        _atomic_save_tensors(buffers, self.state_dir / f"{tag}.optimizer.safetensors")
        if self.guard is not None and self.guard.best_state is not None:
            _atomic_save_tensors(self.guard.best_state, self.state_dir / f"{tag}.best.safetensors")
        kill_point(f"epoch-{self.epoch}-files", self.out_dir)
        pointer = {
            "epoch": self.epoch,
            "tag": tag,
            "identity": self.identity,
            "history": self.history,
        }
        if self.where.sharded:  # resumed by as many processes (absent: one)
            pointer["world_size"] = self.where.world_size
        if self.guard is not None:
            pointer |= {"stopped": self.stopped, "guard": self.guard.to_json()}
        _atomic_write_text(self.state_dir / "progress.json", json.dumps(pointer, indent=1))
        for old in self.state_dir.glob("epoch-*"):
            if not old.name.startswith(tag):
                old.unlink(missing_ok=True)

    def try_resume(self) -> bool:
        pointer_path = self.state_dir / "progress.json"
        if not pointer_path.exists():
            return False
        try:
            pointer = json.loads(pointer_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(
                f"cannot read the training progress file {pointer_path}: {exc}",
                fix=f"delete {self.state_dir} to start this training run afresh",
            ) from exc
        if pointer.get("identity") != self.identity:
            raise ConfigError(
                f"{self.out_dir} holds an unfinished run with another recipe, model or data",
                fix="use another output folder, or delete it to start afresh",
            )
        ranks = pointer.get("world_size", 1)
        if ranks != self.where.world_size:
            raise ConfigError(
                f"{self.out_dir} holds a run interrupted with {ranks} process(es); "
                f"this one has {self.where.world_size}",
                fix=f"resume it with {ranks} process(es) (torchrun --nproc_per_node {ranks}), "
                "or delete the folder to start afresh",
            )
        tag = pointer["tag"]
        saved, _ = load_checkpoint(self.state_dir / f"{tag}.safetensors")
        self.model.load_state_dict(saved.state_dict())
        buffers = load_file(str(self.state_dir / f"{tag}.optimizer.safetensors"))
        for name, p in self.model.named_parameters():
            if name in buffers:
                self.optimizer.state[p]["momentum_buffer"] = buffers[name].to(self.device)
        self.epoch = int(pointer["epoch"])
        self.history = list(pointer["history"])
        self.stopped = bool(pointer.get("stopped", False))
        if self.guard is not None and pointer.get("guard") is not None:
            best = self.state_dir / f"{tag}.best.safetensors"
            state = load_file(str(best), device=str(self.device)) if best.exists() else None
            self.guard = CollapseGuard.from_json(pointer["guard"], state)
        log.info("resuming %s after epoch %d", self.out_dir, self.epoch)
        return True

    def card_recipe(self) -> dict[str, Any]:
        """The recipe as recorded in model cards, with the data it saw, the run's identity and,
        for single-step methods, the catastrophic-overfitting check (``overfitting``)."""
        card = {
            **self.recipe.to_dict(),
            "data": {k: self.identity[k] for k in ("dataset", "split", "n", "data_fingerprint")},
            "identity": identity_digest(self.identity),
            "runtime": self.runtime.card(),
        }
        if self.guard is not None and self.check_set is not None:
            attack = self.check_attack().describe()
            card["overfitting"] = self.guard.card_record(attack, len(self.check_set))
        return card

    # -------------------------------------------------------------------------------- train

    def make_attack(self, eps: float) -> TrainingAttack:
        return TrainingAttack(self.model, self.recipe, eps)

    def check_attack(self) -> PGD:
        """The catastrophic-overfitting check's attack: PGD-10 at the recipe's ε."""
        return PGD(self.model, threat_model(self.recipe.norm, self.recipe.eps), steps=CHECK_STEPS)

    def check_accuracy(self) -> float:
        """PGD accuracy on the held-out training batch (in eval mode; the mode is restored)."""
        assert self.check_set is not None
        data = (self.check_set.images.to(self.device), self.check_set.labels.to(self.device))
        return robust_accuracy(self.model, data, self.check_attack()).robust_accuracy

    def check_overfitting(self, epoch: float, step: int) -> bool:
        """One check; on a collapse the best check's weights come back and training stops."""
        assert self.guard is not None
        if not self.guard.observe(self.check_accuracy(), epoch, step, self.model):
            return False
        collapse = self.guard.collapse or {}
        log.warning(
            "catastrophic overfitting at epoch %.2f: PGD-%d accuracy on held-out training "
            "images fell from %.3f to %.3f; keeping the weights of epoch %.2f and stopping",
            epoch,
            CHECK_STEPS,
            collapse.get("best_accuracy"),
            collapse.get("accuracy"),
            collapse.get("kept", {}).get("epoch"),
        )
        self.guard.restore_best(self.model)
        self.stopped = True
        return True

    def run_epoch(self) -> dict[str, Any]:
        recipe = self.recipe
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = 0
        seen = 0
        start = time.perf_counter()
        step0 = self.epoch * self.batches_per_epoch
        eps = 0.0
        lr = recipe.lr
        checks: list[float] = []
        desc = f"epoch {self.epoch + 1}/{recipe.epochs} {recipe.label()}"
        shown = self.progress and self.where.is_main
        with progress_bar(shown, total=len(self.train_set), description=desc) as advance:
            # x, y: this process's share of the batch of batch_n images (all of it with one)
            gen, batches = self.runtime.batches(self.train_set, recipe, self.epoch)
            for i, (x, y, batch_n) in enumerate(batches):
                x = augment(x, recipe.augment, gen)
                eps = training_eps(recipe, self.epoch + i / self.batches_per_epoch)
                lr = learning_rate(recipe, step0 + i, self.total_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x_adv = None
                if recipe.adversarial and eps > 0 and y.numel():
                    if recipe.attack_in_eval_mode:
                        self.model.eval()
                    x_adv = self.make_attack(eps).perturb(x, y, generator=gen)
                self.model.train()
                if y.numel():
                    layout = self.runtime.layout
                    x_adv = None if x_adv is None else layout(x_adv)
                    loss, logits = batch_loss(self.net, recipe, layout(x), x_adv, y)
                else:  # an empty share (see Runtime.weighted)
                    logits = self.net(x)
                    loss = logits.sum() * 0.0
                if not torch.isfinite(loss):
                    raise NumericalError(
                        f"training loss became {loss.item()} in epoch {self.epoch + 1}, batch {i}",
                        fix="lower the learning rate (lr) or add an ε warm-up (eps_warmup_epochs)",
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.runtime.weighted(loss, logits, y.shape[0], batch_n).backward()
                self.optimizer.step()
                self.runtime.sync_buffers(self.model)
                if i == 0:
                    kill_point(f"epoch-{self.epoch + 1}", self.out_dir)
                # accumulated on the CPU: an in-place add of a CUDA value into a CPU tensor is
                # refused (pytorch/pytorch#40986), and float64 is not on every device
                total_loss += loss.detach().cpu().double() * y.shape[0]
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += y.shape[0]
                advance(batch_n)
                done = i + 1
                if self.guard is not None and (
                    done % self.check_every == 0 or done == self.batches_per_epoch
                ):
                    collapsed = self.check_overfitting(
                        self.epoch + done / self.batches_per_epoch, step0 + done
                    )
                    checks.append(self.guard.checks[-1]["accuracy"])
                    if collapsed:
                        break
        total, correct, seen = all_sum([float(total_loss), correct, seen], self.where)
        self.model.eval()
        record: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "lr_last": lr,
            "eps": eps,
            "train_loss": total / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "seconds": time.perf_counter() - start,
        }
        if self.guard is not None:
            record["check_pgd10_accuracy"] = checks
            if self.stopped:
                record["catastrophic_overfitting"] = self.guard.collapse
        record.update(self.monitor(eps))
        return record

    def monitor(self, eps: float) -> dict[str, Any]:
        """A cheap per-epoch check on held-out images (catches catastrophic overfitting)."""
        if self.eval_set is None:
            return {}
        subset = self.eval_set.subset(min(MONITOR_N, len(self.eval_set)), seed=1)
        x, y = subset.images.to(self.device), subset.labels.to(self.device)
        with torch.no_grad(), eval_mode(self.model):
            out = {"monitor_clean_accuracy": float((self.model(x).argmax(1) == y).float().mean())}
        if self.recipe.adversarial and eps > 0:
            attack = PGD(self.model, threat_model(self.recipe.norm, eps), steps=10)
            out["monitor_pgd10_accuracy"] = robust_accuracy(
                self.model, (x, y), attack
            ).robust_accuracy
            best = max((h.get("monitor_pgd10_accuracy", 0.0) for h in self.history), default=0.0)
            if best - out["monitor_pgd10_accuracy"] > 0.2:
                log.warning(
                    "PGD-10 accuracy fell from %.2f to %.2f: catastrophic overfitting? "
                    "(Wong et al. 2020) Consider a smaller step size or PGD training.",
                    best,
                    out["monitor_pgd10_accuracy"],
                )
                out["catastrophic_overfitting_warning"] = True
        return out

    def final_attack(self) -> Attack:
        """The recipe's final evaluation attack at the training norm and ε."""
        r = self.recipe
        if r.eval_attack == "autoattack":
            return AutoAttack(self.model, r.norm, r.eps, version="standard", seed=r.seed)
        return PGD(self.model, threat_model(r.norm, r.eps), steps=r.eval_steps)

    def final_metrics(self) -> list[dict[str, Any]]:
        """Clean (and for adversarial recipes PGD) accuracy on ``eval_n`` held-out images, with
        the model in eval mode whatever mode it is in (e.g. just resumed)."""
        if self.eval_set is None:
            return []
        subset = self.eval_set.subset(self.recipe.eval_n, seed=0)
        with eval_mode(self.model):
            if not self.recipe.adversarial:
                x, y = subset.images.to(self.device), subset.labels.to(self.device)
                with torch.no_grad():
                    acc = float((self.model(x).argmax(1) == y).float().mean())
                metrics = [
                    {"name": "clean_accuracy", "value": acc, "n": len(subset), "attack": None}
                ]
            else:
                attack = self.final_attack()
                result = robust_accuracy(self.model, subset, attack, progress=self.progress)
                metrics = result.as_metrics()
            kill_point("during-evaluation", self.out_dir)
        return metrics


def hold_out(train_set: ImageSet, seed: int) -> tuple[ImageSet, ImageSet | None]:
    """(the images to train on, the held-out check batch): CHECK_N class-balanced training
    images, at most a tenth of them, chosen by ``seed``; None when a tenth is under one."""
    n = min(CHECK_N, len(train_set) // 10)
    if n < 1:
        return train_set, None
    chosen = choose_subset(train_set.labels, n, seed=seed, balanced=True)
    keep = torch.ones(len(train_set), dtype=torch.bool)
    keep[chosen] = False
    return train_set.take(keep.nonzero().flatten()), train_set.take(chosen)


def _unfinished_identity(out_dir: Path) -> Any:
    """The training identity of an interrupted run in ``out_dir`` (None when there is none)."""
    pointer = out_dir / STATE_DIR / "progress.json"
    try:
        return json.loads(pointer.read_text()).get("identity") if pointer.exists() else None
    except (OSError, json.JSONDecodeError):
        return "unreadable"


def _remove_state(out_dir: Path) -> None:
    """Remove the run's state folder: the progress pointer first, so that a kill part-way
    leaves no pointer to files already gone."""
    state = out_dir / STATE_DIR
    if state.is_dir():
        (state / "progress.json").unlink(missing_ok=True)
        for leftover in state.glob("*"):  # includes hidden temporaries of a killed save
            leftover.unlink()
        state.rmdir()


def _remove_model_files(out_dir: Path) -> None:
    """Remove what train_model writes in ``out_dir``: the model, its card, its metrics log and
    the unfinished run's state (nothing else in the folder is touched)."""
    for path in (*checkpoint_paths(out_dir / FINAL), out_dir / METRICS):
        path.unlink(missing_ok=True)
    _remove_state(out_dir)


def _recover(out_dir: Path, identity: dict[str, Any]) -> None:
    """Repair what a kill can leave in ``out_dir``: a model save that was interrupted is
    completed (its pair committed) or discarded (still being staged); weights without their
    card beside the unfinished run that wrote them (earlier versions saved the two files one
    by one) are discarded, to be evaluated and saved again; temporaries of the metrics log
    are removed."""
    finish_checkpoint_unit(out_dir / FINAL)
    weights, card = checkpoint_paths(out_dir / FINAL)
    if weights.exists() and not card.exists() and _unfinished_identity(out_dir) == identity:
        log.warning("%s: discarding weights saved without their card by a killed run", weights)
        weights.unlink()
    for leftover in out_dir.glob(f".{METRICS}.tmp-*"):
        leftover.unlink()


def _write_history(out_dir: Path, history: list[dict[str, Any]]) -> None:
    _atomic_write_text(out_dir / METRICS, "".join(json.dumps(h) + "\n" for h in history))


def train_model(
    model: RobustClassifier,
    train_set: ImageSet,
    recipe: Recipe,
    out_dir: str | Path,
    *,
    eval_set: ImageSet | None = None,
    device: torch.device | str | None = None,
    resume: bool = True,
    progress: bool = False,
    replace: bool = False,
) -> TrainResult:
    """Train ``model`` on ``train_set`` by ``recipe`` and save it as ``out_dir/model.safetensors``.

    If ``out_dir`` already holds a finished model trained by the same architecture, recipe and
    data, it is loaded instead of trained again (``reused=True``). An interrupted run resumes
    from its last finished epoch. The card records the recipe, the data fingerprint and the
    final clean and robust accuracies on ``eval_set`` (PGD-``eval_steps``, or AutoAttack with
    ``eval_attack = "autoattack"``) with the exact attack.

    A folder holding a model (finished or not) of another architecture, recipe or data is an
    error, unless ``replace`` (the study runner, which owns its model folders): then that
    model's files are removed and the new one is trained in its place.

    A run killed at any point (``kill -9``) resumes to the same weights, card and metrics as an
    uninterrupted one: weights and card are saved as one unit, evaluation always runs in eval
    mode. The model is returned in eval mode.

    In a process group of several ranks (torchrun; robustlens.distributed) every rank calls
    this: the ranks train one model data-parallel (robustlens.train.parallel), only rank 0
    writes files, and a run resumes with the same number of ranks.
    """
    classes = getattr(model, "num_classes", None)
    need = APGDT.min_classes
    if recipe.adversarial and recipe.eval_attack == "autoattack" and (classes or 0) < need:
        raise ConfigError(
            f"eval_attack = 'autoattack' needs a model of at least {need} classes (APGD-T's "
            f"targeted DLR loss ranks four logits); this one has {classes}",
            fix="leave eval_attack at 'pgd' for this model",
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else default_device()
    runtime = Runtime.for_run(recipe, device)
    where = runtime.where
    final = out_dir / FINAL
    start = time.perf_counter()
    identity = training_identity(model, train_set, recipe)
    with main_first(where):  # rank 0 repairs and clears the folder; the others find it done
        reused = _reuse_or_clear(out_dir, identity, device, replace)
    if reused is not None:
        return reused
    trainer = _Trainer(model, train_set, recipe, out_dir, eval_set, device, progress, runtime)
    if resume:
        trainer.try_resume()
    while trainer.epoch < recipe.epochs and not trainer.stopped:
        record = trainer.run_epoch()
        trainer.epoch += 1
        trainer.history.append(record)
        log.info("epoch %d: %s", trainer.epoch, record)
        trainer.save_state()
        kill_point(f"epoch-{trainer.epoch}-saved", out_dir)
        if where.is_main:
            _write_history(out_dir, trainer.history)
        kill_point(f"epoch-{trainer.epoch}-done", out_dir)
    kill_point("before-evaluation", out_dir)
    # evaluated as it is saved and returned: its own forward (fp32), outside the process group
    model = trainer.model = runtime.finish(trainer.model)
    metrics = trainer.final_metrics()
    with main_first(where):
        if where.is_main:
            # the history is complete before the model exists (reuse reads it)
            _write_history(out_dir, trainer.history)
            card = save_checkpoint_unit(
                model,
                final,
                recipe=trainer.card_recipe(),
                metrics=metrics,
                seed=recipe.seed,
                dataset=train_set.info.name,
                at=lambda phase: kill_point(phase, out_dir),
            )
            kill_point("before-cleanup", out_dir)
            _remove_state(out_dir)
        else:
            _, card = load_checkpoint(final)
    model.eval()
    return TrainResult(model, card, trainer.history, final, time.perf_counter() - start)


def _reuse_or_clear(
    out_dir: Path, identity: dict[str, Any], device: torch.device, replace: bool
) -> TrainResult | None:
    """The finished model of this identity in ``out_dir`` (None when there is none, after
    repairing what a kill left and, with ``replace``, removing another run's files)."""
    final = out_dir / FINAL
    _recover(out_dir, identity)
    if final.exists():
        saved, card = load_checkpoint(final)
        if (card.recipe or {}).get("identity") == identity_digest(identity):
            if _unfinished_identity(out_dir) in (None, identity):
                _remove_state(out_dir)  # a kill came after saving, before the clean-up
            saved.to(device)
            history = [json.loads(line) for line in (out_dir / METRICS).read_text().splitlines()]
            return TrainResult(saved, card, history, final, 0.0, reused=True)
        if not replace:
            raise ConfigError(
                f"{out_dir} already holds a model trained with another recipe, model or data",
                fix="choose another output folder, or delete that one",
            )
        log.warning("%s holds a model of another recipe, model or data: retraining", out_dir)
        _remove_model_files(out_dir)
    elif replace and _unfinished_identity(out_dir) not in (None, identity):
        log.warning("%s holds an unfinished run of another recipe: starting afresh", out_dir)
        _remove_model_files(out_dir)
    return None
