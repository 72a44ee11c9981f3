"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016), L2 and L∞, batched.

At each iteration the classifier is linearised around the current point; for every candidate
class k ≠ y, f_k = Z_k − Z_y and w_k = ∇f_k; the closest linearised boundary is
k* = argmin_k |f_k| / ‖w_k‖_q (q = 2 for L2, q = 1 for L∞, the dual norm), and the step that
reaches it is r = (|f_k*| + 1e-4) / ‖w_k*‖₂² · w_k* (L2) or (|f_k*| + 1e-4) / ‖w_k*‖₁ ·
sign(w_k*) (L∞). Steps accumulate into r_tot, and the overshoot is applied to the total,
never to each step: x_adv = x + (1 + η)·r_tot (Algorithms 1–2 of the paper, which has no
box), here clipped to [0, 1] at every iterate. With the clip this is the algorithm of
Foolbox's ``L2DeepFoolAttack`` (the oracle test checks that both
find the same perturbations). Images go through a working pool that a finished image leaves
and the next one joins at once, like PGD's, so no batch idles on its slowest image.

Box-aware steps (opt-in, ``box_aware=True``): the clip to [0, 1] throws away every part of a
step that pushes a pixel already at a bound further out, so on images with saturated pixels
(the black background of Fashion-MNIST) plain DeepFool needs many iterations (7.9 on average
for the quickstart's natural small CNN). With ``box_aware`` the gradient components of such
pixels are left out of w_k before the step is computed and r_tot is kept inside the box:
about 2 iterations and 3x faster there, but the perturbations it finds are 2-11 % larger on
average (benchmarks/RESULTS.md), so the original algorithm stays the default.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustlens.attacks.base import Attack, check_finite, num_classes_of
from robustlens.attacks.result import AttackResult
from robustlens.attacks.threat import L2, Linf, ThreatModel
from robustlens.errors import ConfigError


class DeepFool(Attack):
    """Minimal-perturbation attack returning per-sample norms and iterations used.

    Args:
        norm: ``"l2"`` or ``"linf"``.
        steps: maximum iterations per sample (50 as in Foolbox).
        overshoot: η, applied to the accumulated perturbation (0.02 as in the paper).
        candidates: how many of the top clean classes to consider (all when None).
        box_aware: leave out of each step the pixels held at a bound of [0, 1] that it would
            push further out (see the module docstring); False gives plain DeepFool.
    """

    name = "deepfool"
    pooled = True

    def __init__(
        self,
        model: nn.Module,
        norm: str = "l2",
        *,
        steps: int = 50,
        overshoot: float = 0.02,
        candidates: int | None = 10,
        box_aware: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(model, seed=seed)
        key = norm.strip().lower()
        if key not in ("l2", "linf"):
            raise ConfigError(f"DeepFool supports norm 'l2' or 'linf', got {norm!r}")
        if steps < 1 or overshoot < 0 or (candidates is not None and candidates < 2):
            raise ConfigError("DeepFool needs steps ≥ 1, overshoot ≥ 0 and candidates ≥ 2")
        self.norm = key
        self.threat: ThreatModel = L2(0.0) if key == "l2" else Linf(0.0)
        self.steps = int(steps)
        self.overshoot = float(overshoot)
        self.candidates = candidates
        self.box_aware = bool(box_aware)

    def _candidate_classes(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[N, C−1] classes other than the label, the most likely first."""
        k = logits.shape[1]
        c = k if self.candidates is None else min(self.candidates, k)
        ranked = logits.scatter(1, labels.unsqueeze(1), -torch.inf).argsort(dim=1, descending=True)
        return ranked[:, : c - 1]

    def _run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int | None = None,
    ) -> AttackResult:
        """Attack all of ``images`` through a working pool of at most ``batch_size`` rows.

        A row leaves the pool once it is misclassified or has taken ``steps`` steps, and the
        next image takes its place at once: samples are independent, so the results are those
        of fixed batches, without the tail of nearly empty batches that every fixed batch
        would have (a few images need many more iterations than the mean).
        """
        x = images
        n = x.shape[0]
        dev = x.device
        capacity = n if batch_size is None else max(1, min(n, int(batch_size)))
        r_total = torch.zeros_like(x)
        x_adv = x.clone()
        success = torch.zeros(n, dtype=torch.bool, device=dev)
        iterations = torch.zeros(n, dtype=torch.long, device=dev)
        cands = torch.zeros((n, self._num_candidates(x) - 1), dtype=torch.long, device=dev)
        rows = torch.zeros(0, dtype=torch.long, device=dev)
        admitted = 0
        while admitted < n or rows.numel() > 0:
            if rows.numel() < capacity and admitted < n:
                new = torch.arange(admitted, min(n, admitted + capacity - rows.numel()), device=dev)
                admitted += new.numel()
                rows = torch.cat([rows, new])
            xa = x_adv[rows].requires_grad_(True)
            with torch.enable_grad():
                logits = self.model(xa)
                check_finite(logits)
            own = labels[rows]
            fresh = iterations[rows] == 0  # admitted this round: x_adv is still x, clean logits
            if bool(fresh.any()):
                cands[rows[fresh]] = self._candidate_classes(logits.detach()[fresh], own[fresh])
            fooled = logits.detach().argmax(dim=1) != own
            success[rows[fooled]] = True
            keep = ~fooled & (iterations[rows] < self.steps)
            if bool(keep.any()):
                grads, diffs = self._class_gradients(xa, logits, own, cands[rows])
                grads, diffs = grads[:, keep], diffs[:, keep]
                moving = rows[keep]
                if self.box_aware:
                    grads = self._free(grads, x[moving] + r_total[moving])
                r_total[moving] += self._step(grads, diffs)
                if self.box_aware:
                    r_total[moving] = (x[moving] + r_total[moving]).clamp(0, 1) - x[moving]
                x_adv[moving] = (x[moving] + (1 + self.overshoot) * r_total[moving]).clamp(0, 1)
                iterations[moving] += 1
            rows = rows[keep]
        # like every minimal-norm attack: no perturbation found means an infinite norm
        norms = torch.where(success, self.threat.norms(x_adv - x), torch.inf)
        return AttackResult(x_adv, success, norms, iterations)

    def _num_candidates(self, x: torch.Tensor) -> int:
        k = num_classes_of(self.model, x)
        return k if self.candidates is None else min(self.candidates, k)

    def _class_gradients(
        self, xa: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, cands: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """∇(Z_k − Z_y) and Z_k − Z_y for each candidate k: shapes [C−1, N, ...] and [C−1, N]."""
        c = cands.shape[1]
        basis = torch.zeros((c, *logits.shape), device=logits.device, dtype=logits.dtype)
        rows = torch.arange(logits.shape[0], device=logits.device)
        for j in range(c):
            basis[j, rows, cands[:, j]] = 1.0
            basis[j, rows, labels] = -1.0
        grads = None
        if xa.device.type != "cpu":  # one batched backward: fastest where kernels run in parallel
            try:
                (grads,) = torch.autograd.grad(
                    logits, xa, basis, is_grads_batched=True, retain_graph=True
                )
            except RuntimeError:  # an op without a batching rule
                grads = None
        if grads is None:  # on the CPU a backward per class is 1.5x faster than the batched one
            grads = torch.stack(
                [
                    torch.autograd.grad(logits, xa, basis[j], retain_graph=j < c - 1)[0]
                    for j in range(c)
                ]
            )
        own = logits.detach().gather(1, labels.unsqueeze(1))
        diffs = (logits.detach().gather(1, cands) - own).T
        return grads.detach(), diffs

    @staticmethod
    def _free(grads: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        """Gradients [C, N, ...] with the components zeroed whose ascent step (along +w) would
        push a pixel of ``point`` [N, ...] beyond the bound it already sits on."""
        low, high = (point <= 0).unsqueeze(0), (point >= 1).unsqueeze(0)
        blocked = (low & (grads < 0)) | (high & (grads > 0))
        return grads.masked_fill(blocked, 0.0)

    def _step(self, grads: torch.Tensor, diffs: torch.Tensor) -> torch.Tensor:
        """The step to the closest linearised boundary, per sample."""
        c, n = diffs.shape
        flat = grads.reshape(c, n, -1)
        dual = flat.norm(p=2, dim=2) if self.norm == "l2" else flat.abs().sum(dim=2)
        dual = dual.clamp_min(1e-12)
        distance = diffs.abs() / dual
        best = distance.argmin(dim=0)
        rows = torch.arange(n, device=grads.device)
        w = flat[best, rows]
        f = diffs[best, rows].abs() + 1e-4
        d = dual[best, rows]
        if self.norm == "l2":
            step = w * (f / d.pow(2)).unsqueeze(1)
        else:
            step = w.sign() * (f / d).unsqueeze(1)
        return step.reshape(grads.shape[1:])

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            "norm": self.norm,
            "steps": self.steps,
            "overshoot": self.overshoot,
            "candidates": self.candidates,
            "box_aware": self.box_aware,
        }
