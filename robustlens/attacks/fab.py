"""FAB, the fast adaptive boundary attack (Croce & Hein 2020, ICML), and its targeted FAB-T.

A minimum-norm attack in L∞, L2 or L1. At each iteration the classifier is linearised at the
current point x⁽ⁱ⁾ around one decision hyperplane π: untargeted, the class s ≠ y whose
linearised boundary is closest, |f_s| / ‖∇f_s‖_q (q the dual norm), with f_s = z_s − z_y;
targeted (FAB-T), the boundary to the target class. Both x⁽ⁱ⁾ and the original x are
projected onto π ∩ [0, 1]^d in the attack's norm (:func:`project_to_hyperplane`), giving δ
and δ_orig, and the next point mixes the two steps, each extrapolated by η:

    α = min(‖δ‖ / (‖δ‖ + ‖δ_orig‖), α_max)
    x⁽ⁱ⁺¹⁾ = clip((1 − α)(x⁽ⁱ⁾ + η δ) + α (x + η δ_orig), 0, 1)

When x⁽ⁱ⁺¹⁾ is misclassified it is kept if it is the closest found so far and pulled back,
x⁽ⁱ⁺¹⁾ ← x + β (x⁽ⁱ⁺¹⁾ − x) (Alg. 1 of the paper; α_max = 0.1, η = 1.05, β = 0.9). Restarts
after the first start from a random point at distance ½·min(smallest norm found so far, ε)
from x (ε: the bound, or :data:`RESTART_RADIUS` without one; the authors' code draws on the
sphere of radius ½ε); FAB-T runs once per target, the top classes other than the label by
clean logit (9, or K − 1 with fewer classes).

Two modes: without ``eps`` every run goes to every image and the result holds each image's
smallest adversarial perturbation (``norms``, inf where none was found); with ``eps`` (the
bounded attack AutoAttack runs) an image counts as broken when a perturbation of norm ≤ ε
was found, and it leaves the attack then: later targets and restarts go only to images still
robust, and a run stops spending steps on an image once it is broken.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from robustlens.attacks.base import Attack, check_finite, num_classes_of
from robustlens.attacks.result import AttackResult
from robustlens.attacks.threat import threat_model
from robustlens.errors import ConfigError

RESTART_RADIUS = {"linf": 0.3, "l2": 1.0, "l1": 5.0}
"""ε for the random restarts of the minimal-norm mode (the authors' defaults per norm)."""
DUAL = {"linf": 1.0, "l2": 2.0, "l1": math.inf}


def _rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def project_to_hyperplane(
    points: torch.Tensor, w: torch.Tensor, b: torch.Tensor, norm: str
) -> torch.Tensor:
    """The smallest step d (in ``norm``) with ⟨w, p + d⟩ = b and p + d ∈ [0, 1]^D, per row.

    ``points`` and ``w`` are [m, D], ``b`` is [m]. Where the box does not reach the
    hyperplane, the step goes as far toward it as the box allows (the limit of the problem).
    Every coordinate moves only in the direction that helps, by s_i ∈ [0, room_i]; with
    a_i = |w_i| the progress is Σ a_i s_i = gap. The minimisers have closed forms along one
    sorted sweep: L∞ s_i = min(r, room_i), L2 s_i = min(λ a_i, room_i) (the KKT point of
    the box-constrained least-norm problem), L1 fills the coordinates of largest a_i first.
    """
    value = (w * points).sum(dim=1) - b
    direction = torch.where(value.unsqueeze(1) > 0, -w, w)  # moving along it brings it to b
    gap = value.abs()
    a = direction.abs()
    room = torch.where(direction > 0, 1.0 - points, points).clamp_min(0.0)
    room = torch.where(a > 0, room, torch.zeros_like(room))
    step = _fill_largest(a, room, gap) if norm == "l1" else _sweep(a, room, gap, norm)
    return direction.sign() * step


def _sweep(a: torch.Tensor, room: torch.Tensor, gap: torch.Tensor, norm: str) -> torch.Tensor:
    """L∞ and L2: find the level t with progress(t) = gap, s_i = min(t·k_i, room_i)."""
    scale = torch.ones_like(a) if norm == "linf" else a  # s_i = min(t·scale_i, room_i)
    ok = (a > 0) & (scale > 0)
    breaks = torch.where(ok, room / torch.where(ok, scale, 1.0), torch.inf)
    order = breaks.argsort(dim=1)
    t_sorted = breaks.gather(1, order)
    a_sorted, k_sorted, r_sorted = a.gather(1, order), scale.gather(1, order), room.gather(1, order)
    done = (a_sorted * r_sorted).cumsum(dim=1)  # progress of the coordinates saturated by t_k
    rate = (a_sorted * k_sorted).flip(1).cumsum(dim=1).flip(1)  # Σ_{j ≥ k} a_j k_j
    after = torch.cat([rate[:, 1:], torch.zeros_like(rate[:, :1])], dim=1)  # Σ_{j > k}
    progress = torch.where(after > 0, done + t_sorted * after, done)
    progress = progress.cummax(dim=1).values
    k = torch.searchsorted(progress, gap.unsqueeze(1).contiguous()).squeeze(1)
    feasible = k < a.shape[1]
    k = k.clamp_max(a.shape[1] - 1)
    before = torch.where(k > 0, done.gather(1, (k - 1).clamp_min(0).unsqueeze(1)).squeeze(1), 0)
    level = (gap - before) / rate.gather(1, k.unsqueeze(1)).squeeze(1).clamp_min(1e-30)
    level = torch.where(feasible, level.clamp_min(0.0), torch.inf).unsqueeze(1)
    return torch.where(ok, torch.minimum(level * scale, room), torch.zeros_like(room))


def _fill_largest(a: torch.Tensor, room: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    """L1: saturate coordinates in order of decreasing a_i, the last one partly."""
    order = a.argsort(dim=1, descending=True)
    a_sorted, r_sorted = a.gather(1, order), room.gather(1, order)
    done = (a_sorted * r_sorted).cumsum(dim=1).cummax(dim=1).values
    k = torch.searchsorted(done, gap.unsqueeze(1).contiguous()).squeeze(1)
    feasible = k < a.shape[1]
    k = k.clamp_max(a.shape[1] - 1)
    before = torch.where(k > 0, done.gather(1, (k - 1).clamp_min(0).unsqueeze(1)).squeeze(1), 0)
    last = (gap - before) / a_sorted.gather(1, k.unsqueeze(1)).squeeze(1).clamp_min(1e-30)
    position = torch.arange(a.shape[1], device=a.device).unsqueeze(0)
    kk = k.unsqueeze(1)
    filled = torch.where(position < kk, r_sorted, torch.zeros_like(r_sorted))
    partial = torch.minimum(last.unsqueeze(1), r_sorted)
    filled = torch.where((position == kk) & feasible.unsqueeze(1), partial, filled)
    filled = torch.where(feasible.unsqueeze(1), filled, r_sorted)
    return torch.zeros_like(filled).scatter(1, order, filled)


class FAB(Attack):
    """FAB (``targets=0``) or FAB-T (``targets`` ≥ 1 target classes), L∞ / L2 / L1.

    Args:
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        steps: iterations per run (100 as in AutoAttack).
        restarts: runs per target; the first starts at the clean image, the others at random.
        targets: 0 for the untargeted attack, else how many of the most likely other classes
            to aim at in turn (FAB-T: 9; fewer when the model has fewer classes).
        eps: the bound of the bounded attack (success = norm ≤ ε); None = minimal norms.
        alpha_max, eta, beta: the paper's α_max = 0.1, η = 1.05, β = 0.9.
    """

    name = "fab"

    def __init__(
        self,
        model: nn.Module,
        norm: str = "linf",
        *,
        steps: int = 100,
        restarts: int = 1,
        targets: int = 0,
        eps: float | None = None,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__(model, seed=seed)
        key = str(norm).strip().lower()
        if key not in DUAL:
            raise ConfigError(f"FAB supports norm 'linf', 'l2' or 'l1', got {norm!r}")
        counts = (steps, restarts, targets)
        if any(isinstance(v, bool) or int(v) != v for v in counts):
            raise ConfigError(f"FAB steps, restarts and targets must be integers, got {counts}")
        if steps < 1 or restarts < 1 or targets < 0:
            raise ConfigError("FAB needs steps ≥ 1, restarts ≥ 1 and targets ≥ 0")
        if eps is not None and not (math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"FAB's bound must be a finite number ≥ 0, got {eps!r}")
        if not (0 <= alpha_max <= 1 and eta >= 1 and 0 < beta <= 1):
            raise ConfigError("FAB needs 0 ≤ α_max ≤ 1, η ≥ 1 and 0 < β ≤ 1")
        self.norm = key
        self.threat = threat_model(key, 0.0 if eps is None else float(eps))
        self.steps, self.restarts, self.targets = int(steps), int(restarts), int(targets)
        self.eps = None if eps is None else float(eps)
        self.alpha_max, self.eta, self.beta = float(alpha_max), float(eta), float(beta)

    # ------------------------------------------------------------------------ linearisation

    def _boundary(
        self, x: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, ∇f) at ``x`` for the hyperplane to follow: f [m], ∇f [m, D]."""
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(xg)
            check_finite(logits)
            own = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
            if targets is not None:
                diff = logits.gather(1, targets.unsqueeze(1)).squeeze(1) - own
                (grad,) = torch.autograd.grad(diff.sum(), xg)
                return diff.detach(), grad.flatten(1)
            k = logits.shape[1]
            grads = torch.stack(
                [
                    torch.autograd.grad(logits[:, j].sum(), xg, retain_graph=j < k - 1)[0]
                    for j in range(k)
                ],
                dim=1,
            ).flatten(2)
        rows = torch.arange(x.shape[0], device=x.device)
        diffs = logits.detach() - own.detach().unsqueeze(1)
        dgrads = grads - grads[rows, labels].unsqueeze(1)
        dual = dgrads.norm(p=DUAL[self.norm], dim=2)
        distance = diffs.abs() / (dual + 1e-12)
        distance[rows, labels] = torch.inf
        best = distance.argmin(dim=1)
        return diffs[rows, best], dgrads[rows, best]

    # --------------------------------------------------------------------------------- run

    def _start(self, x0: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """A random point at ``radius`` (per row) from ``x0`` in the attack's norm, in the box."""
        shape = x0.shape
        if self.norm == "linf":
            t = torch.rand(shape, generator=self.generator, dtype=x0.dtype) * 2 - 1
        else:
            t = torch.randn(shape, generator=self.generator, dtype=x0.dtype)
        t = t.to(x0.device)
        size = self.threat.norms(t).clamp_min(1e-12)
        return (x0 + t * _rows(radius / size, t)).clamp(0.0, 1.0)

    def _one_run(
        self,
        x0: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        x1: torch.Tensor,
        best_norm: torch.Tensor,
        best_adv: torch.Tensor,
        iterations: torch.Tensor,
    ) -> None:
        """One FAB run from ``x1``; updates the best norms / points of these rows in place."""
        m = x0.shape[0]
        live = torch.arange(m, device=x0.device)
        flat0 = x0.flatten(1)
        for _ in range(self.steps):
            if self.eps is not None:
                live = live[best_norm[live] > self.eps]
            if live.numel() == 0:
                return
            xl, x0l = x1[live], flat0[live]
            f, g = self._boundary(xl, labels[live], targets[live] if targets is not None else None)
            b = (g * xl.flatten(1)).sum(dim=1) - f  # π: ⟨g, z⟩ = b
            both = project_to_hyperplane(
                torch.cat([xl.flatten(1), x0l]), torch.cat([g, g]), torch.cat([b, b]), self.norm
            )
            size = self.threat.norms(both).clamp_min(1e-8)
            n = live.numel()
            d1, d0 = both[:n], both[n:]
            alpha = (size[:n] / (size[:n] + size[n:])).clamp(0.0, self.alpha_max).unsqueeze(1)
            moved = (1 - alpha) * (xl.flatten(1) + self.eta * d1) + alpha * (x0l + self.eta * d0)
            moved = moved.clamp(0.0, 1.0).view_as(xl)
            iterations[live] += 1
            with torch.no_grad():
                logits = self.model(moved)
            check_finite(logits)
            fooled = logits.argmax(dim=1) != labels[live]
            if bool(fooled.any()):
                rows = live[fooled]
                size = self.threat.norms(moved[fooled] - x0[rows])
                closer = size < best_norm[rows]
                best_norm[rows[closer]] = size[closer]
                best_adv[rows[closer]] = moved[fooled][closer]
                moved[fooled] = x0[rows] + self.beta * (moved[fooled] - x0[rows])
            x1[live] = moved

    def _run(
        self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> AttackResult:
        x = images
        n = x.shape[0]
        with torch.no_grad():
            clean = self.model(x)
        check_finite(clean)
        correct = clean.argmax(dim=1) == labels
        best_norm = torch.where(correct, torch.inf, 0.0).to(x.dtype)
        best_adv = x.clone()
        iterations = torch.zeros(n, dtype=torch.long, device=x.device)
        ranked = clean.scatter(1, labels.unsqueeze(1), -torch.inf).argsort(dim=1, descending=True)
        k = num_classes_of(self.model, x) if n else 2
        aims: list[int | None] = list(range(min(self.targets, k - 1))) if self.targets else [None]
        ceiling = RESTART_RADIUS[self.norm] if self.eps is None else self.eps
        for aim in aims:
            for restart in range(self.restarts):
                todo = correct.clone() if self.eps is None else correct & (best_norm > self.eps)
                rows = todo.nonzero().squeeze(1)
                if rows.numel() == 0:
                    continue
                x0 = x[rows]
                if restart == 0:
                    x1 = x0.clone()
                else:
                    x1 = self._start(x0, 0.5 * best_norm[rows].clamp_max(ceiling))
                norm_rows, adv_rows, iters = best_norm[rows], best_adv[rows], iterations[rows]
                aim_rows = None if aim is None else ranked[rows, aim]
                self._one_run(x0, labels[rows], aim_rows, x1, norm_rows, adv_rows, iters)
                best_norm[rows], best_adv[rows], iterations[rows] = norm_rows, adv_rows, iters
        limit = torch.inf if self.eps is None else self.eps
        found = correct & (best_norm <= limit)
        success = ~correct | found
        adversarial = torch.where(_rows(found, x), best_adv, x)
        norms = torch.where(success, torch.where(found, best_norm, 0.0), torch.inf)
        return AttackResult(adversarial, success, norms.to(x.dtype), iterations)

    def describe(self) -> dict[str, Any]:
        return {
            "attack": "fab-t" if self.targets else self.name,
            "norm": self.norm,
            "eps": self.eps,
            "steps": self.steps,
            "restarts": self.restarts,
            "targets": self.targets,
            "alpha_max": self.alpha_max,
            "eta": self.eta,
            "beta": self.beta,
            "seed": self.seed,
        }
