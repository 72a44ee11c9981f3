"""Auto-PGD (Croce & Hein 2020, Alg. 1 and §3): APGD with CE or DLR loss, and APGD-T.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (ICML 2020). APGD is PGD with momentum whose step size needs no tuning:

- the step size η starts at 2ε and is halved at the checkpoints w_j = ⌈p_j N⌉, with p_0 = 0,
  p_1 = 0.22 and p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), when (condition 1) fewer than
  ρ = 0.75 of the steps since the last checkpoint increased the loss, or (condition 2) η was not
  halved at the last checkpoint and the best loss has not changed since; after halving, the
  iterate restarts from the best point found so far. The conditions are tested as soon as
  x^(w_j) is evaluated, over the w_j − w_{j−1} comparisons f(x^(i+1)) > f(x^(i)) with
  w_{j−1} ≤ i < w_j, and a restart replaces x^(w_j) (the authors' implementation reads Alg. 1
  the same way);
- x^{k+1} = P_S(x^k + α(z^{k+1} − x^k) + (1 − α)(x^k − x^{k−1})) with z^{k+1} = P_S(x^k + η·s),
  s the steepest-ascent direction of the norm (sign of the gradient in L∞, the normalised
  gradient in L2), α = 0.75, and no momentum in the first step;
- S is the ε-ball intersected with the [0, 1] box, and P_S is the exact Euclidean projection
  onto it (in L2 by the breakpoint search of :func:`project_l2_box`, not ball-then-clip).

APGD-T (§4) runs APGD with the targeted DLR loss once per target, the top-k classes other than
the true one by clean logit, each on the images no earlier target broke.

Images go through a working pool (as in :class:`robustlens.attacks.pgd.PGD`): each row carries
its own iteration, step size, momentum and best point; a row leaves when it is fooled (with
early exit) or its runs are spent, and the next image takes its place at once. A composition
(AutoAttack) runs an attack on the images still robust, ``attack.run(x[robust], y[robust])``,
and reads which it broke from ``AttackResult.success``.

In L1 (``L1(eps)``) the attack is APGD-L1 of Croce & Hein 2021 ("Mind the box"): the sparse,
sparsity-adaptive step, the exact projection onto L1 ball ∩ box and, with ``large_eps``,
AutoAttack's 3ε → 2ε → ε stages (:mod:`robustlens.attacks.apgd_l1`).
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from robustlens.attacks.apgd_l1 import L1Schedule
from robustlens.attacks.base import Attack, check_finite, num_classes_of
from robustlens.attacks.losses import ce_loss, dlr_loss, need_classes, targeted_dlr_loss
from robustlens.attacks.result import AttackResult
from robustlens.attacks.threat import L1, L2, Linf, ThreatModel, _flat, _per_sample
from robustlens.errors import ConfigError

P1, DECAY, MIN_GAP = Fraction(22, 100), Fraction(3, 100), Fraction(6, 100)


def checkpoints(steps: int) -> list[int]:
    """The checkpoints w_j = ⌈p_j N⌉ (p_j ≤ 1) of an N-iteration run, w_0 = 0 first.

    p is computed in exact fractions: in floats 0.22 + 0.19 is 0.41000000000000003 and its
    ceiling times 100 would be 42, not 41. Equal w_j of very short runs appear once.
    """
    out = [0]
    before, p = Fraction(0), P1
    while p <= 1:
        w = math.ceil(p * steps)
        if w > out[-1]:
            out.append(w)
        before, p = p, p + max(p - before - DECAY, MIN_GAP)
    return out


def inner_radius(threat: ThreatModel, like: torch.Tensor) -> float:
    """The radius iterates are projected to, just under ε, so that ‖(x + δ) − x‖ computed in
    ``like``'s dtype never exceeds ε after rounding: 4 units of rounding (the sum x + δ and
    the difference back) per value in L∞, and that times √d in L2 (d values per image)."""
    return radius_under(threat, threat.eps, like)


def radius_under(threat: ThreatModel, eps: float, like: torch.Tensor) -> float:
    """:func:`inner_radius` for a ball of radius ``eps`` in ``threat``'s norm; in L1 the
    rounding slack is 4 units per value times d (the norm sums d values)."""
    tiny = torch.finfo(like.dtype).eps
    if isinstance(threat, Linf):
        return max(0.0, eps - 4 * tiny)
    d = max(1, like[0].numel())
    slack = 4 * tiny * (d if isinstance(threat, L1) else math.sqrt(d))
    return max(0.0, eps * (1 - slack) - slack)


ACTIVE_SET_ROUNDS = 32
"""Rounds of :func:`project_l2_box`'s active-set iteration before the rows it has not settled
go to the sort-based search (an iteration settles in a handful on images)."""


def project_l2_box(
    v: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    radius: float,
    rounds: int = ACTIVE_SET_ROUNDS,
) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto {δ : ‖δ‖₂ ≤ r, lo ≤ δ ≤ hi} (lo ≤ 0 ≤ hi).

    The KKT conditions give δ(s) = clip(s·v, lo, hi) for the largest s ∈ (0, 1] with
    φ(s) = ‖δ(s)‖² ≤ r². Coordinate i reaches its bound b_i at s = t_i = b_i / |v_i|, so
    φ(s) = Σ_{t_i ≤ s} b_i² + s² Σ_{t_i > s} v_i², nondecreasing in s. An active-set
    iteration finds s: from s₀ = r / ‖v‖ (φ(s₀) ≤ r²), hold the set clipped at s_k and solve
    Σ_{t_i ≤ s_k} b_i² + s² Σ_{t_i > s_k} v_i² = r² for s_{k+1}. That function bounds φ from
    above for s ≥ s_k (coordinates still free can only clip), so s_k ≤ s_{k+1} ≤ s*, and when
    the clipped set stops growing s_{k+1} = s*. Rows not settled after ``rounds`` rounds
    (:data:`ACTIVE_SET_ROUNDS`; 0: every row, the tests' reference) are solved by sorting the
    t_i (:func:`_scale_sorted`).
    """
    shape = v.shape
    v, lo, hi = _flat(v), _flat(lo), _flat(hi)
    clipped = torch.minimum(torch.maximum(v, lo), hi)
    over = clipped.square().sum(dim=1) > radius * radius
    if not bool(over.any()):
        return clipped.reshape(shape)
    vo, lo_o, hi_o = v[over], lo[over], hi[over]
    tiny = torch.finfo(v.dtype).tiny
    a2 = vo.square()
    bound = torch.where(vo > 0, hi_o, -lo_o)
    t = torch.where(a2 > 0, bound / vo.abs().clamp_min(tiny), torch.inf)
    r2, total = radius * radius, a2.sum(dim=1)
    sq = torch.stack([bound.square(), a2], dim=2)  # per row: (b_i², v_i²), one matmul per round
    s = (r2 / total.clamp_min(tiny)).sqrt()
    settled = torch.zeros_like(s, dtype=torch.bool)
    for _ in range(rounds):
        held = (t <= s.unsqueeze(1)).to(v.dtype).unsqueeze(1)
        sums = torch.bmm(held, sq).squeeze(1)  # Σ over the clipped coordinates of b², v²
        c, f = sums[:, 0], total - sums[:, 1]
        step = ((r2 - c).clamp_min(0) / f.clamp_min(tiny)).sqrt()
        settled = step <= s
        s = torch.maximum(s, step)
        if bool(settled.all()):
            break
    if not bool(settled.all()):
        rest = ~settled
        s[rest] = _scale_sorted(vo[rest], lo_o[rest], hi_o[rest], radius)
    clipped[over] = torch.minimum(torch.maximum(s.clamp_max(1.0).unsqueeze(1) * vo, lo_o), hi_o)
    return clipped.reshape(shape)


def _scale_sorted(
    v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, radius: float
) -> torch.Tensor:
    """The s of :func:`project_l2_box` for rows whose clipped norm exceeds r, by sorting the
    t_i and solving in closed form in the first segment whose end reaches r²."""
    a = v.abs()
    bound = torch.where(v > 0, hi, -lo)
    t = torch.where(a > 0, bound / a.clamp_min(torch.finfo(v.dtype).tiny), torch.inf)
    t_sorted, order = t.sort(dim=1)
    a2, b2 = a.gather(1, order).square(), bound.gather(1, order).square()
    clipped_before = b2.cumsum(dim=1) - b2  # Σ b² of the coordinates clipped before segment j
    free = a2.flip(1).cumsum(dim=1).flip(1)  # Σ v² of the coordinates still free in segment j
    at_end = torch.where(free > 0, clipped_before + t_sorted.square() * free, clipped_before)
    j = (at_end < radius * radius).sum(dim=1, keepdim=True).clamp_max(v.shape[1] - 1)
    c, f = clipped_before.gather(1, j), free.gather(1, j)
    s = ((radius * radius - c) / f.clamp_min(torch.finfo(v.dtype).tiny)).clamp_min(0).sqrt()
    return s.squeeze(1)


class _Set:
    """S = the ball of radius r around x0, intersected with the [0, 1] box; in L1 also the
    run's stages and step rules (``schedule``), whose radii change between stages."""

    def __init__(
        self, threat: ThreatModel, like: torch.Tensor, steps: int = 1, large_eps: bool = False
    ) -> None:
        self.linf = isinstance(threat, Linf)
        self.r = inner_radius(threat, like)
        self.schedule = (
            L1Schedule(threat, steps, lambda e: radius_under(threat, e, like), large_eps)
            if isinstance(threat, L1)
            else None
        )
        self.end = steps + (self.schedule.jumps if self.schedule else 0)

    def bounds(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        """L∞: each row's [max(x0 − r, 0), min(x0 + r, 1)], kept in the pool state so that a
        projection is one clamp; nothing in L2 and L1."""
        if not self.linf:
            return {}
        return {"lo": (x0 - self.r).clamp_min_(0.0), "hi": (x0 + self.r).clamp_max_(1.0)}

    def project(self, x0: torch.Tensor, xa: torch.Tensor) -> torch.Tensor:
        if self.linf:
            b = self.bounds(x0)
            return torch.clamp(xa, b["lo"], b["hi"])
        return x0 + project_l2_box(xa - x0, -x0, 1.0 - x0, self.r)


class APGD(Attack):
    """APGD in L∞ or L2 with the CE or DLR loss (APGD-CE / APGD-DLR).

    Args:
        model: classifier taking [0, 1] images.
        threat: ``Linf(eps)`` or ``L2(eps)``.
        steps: iterations N per run (100 in the paper).
        loss: ``"ce"`` or ``"dlr"``; with ``targeted`` the CE toward the target is descended
            and the targeted DLR loss ascended.
        restarts: runs per image, each from its own seeded random point of the ball; an image
            fooled by one run (with early exit) is not run again.
        rho, momentum: ρ of condition 1 and α of the momentum step (0.75 and 0.75).
        large_eps: L1 only: AutoAttack's 3ε → 2ε → ε stages (see :mod:`.apgd_l1`).
        early_stop: stop spending iterations on an image once it is fooled; it returns the
            first fooling iterate. Without it every image runs every iteration of every run
            and returns its best iterate (fooling first, then highest loss).
        eot: forward-backward passes averaged per step, for models with randomness in their
            forward pass (expectation over transformation, Athalye et al. 2018 §4.3;
            AutoAttack's ``rand`` uses 20): the loss and its gradient are means over the
            draws, a point counts as fooled when the mean logits misclassify it.
    """

    name = "apgd"
    pooled = True

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        steps: int = 100,
        *,
        loss: str = "ce",
        restarts: int = 1,
        rho: float = 0.75,
        momentum: float = 0.75,
        targeted: bool = False,
        target_mode: str = "random",
        early_stop: bool = True,
        eot: int = 1,
        large_eps: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(model, targeted=targeted, target_mode=target_mode, seed=seed)
        if int(eot) < 1:
            raise ConfigError(f"APGD needs eot ≥ 1 draws per step, got {eot}")
        self.eot = int(eot)
        if not isinstance(threat, Linf | L2 | L1):
            raise ConfigError(f"APGD runs in Linf(eps), L2(eps) or L1(eps), got {threat!r}")
        if large_eps and not isinstance(threat, L1):
            raise ConfigError(
                "large_eps (the 3ε → 2ε → ε stages) is APGD-L1's; it has no L∞ / L2 form",
                fix="leave large_eps out, or use L1(eps)",
            )
        self.large_eps = bool(large_eps)
        if int(steps) < 1 or int(restarts) < 1:
            raise ConfigError(f"APGD needs steps ≥ 1 and restarts ≥ 1, got {steps}, {restarts}")
        if loss not in ("ce", "dlr"):
            raise ConfigError(f"unknown APGD loss {loss!r}", fix="use 'ce' or 'dlr'")
        if not (0 < rho <= 1 and 0 < momentum <= 1):
            raise ConfigError(f"rho and momentum must be in (0, 1], got {rho}, {momentum}")
        self.threat = threat
        self.steps = int(steps)
        self.loss = loss
        self.restarts = int(restarts)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.early_stop = early_stop
        w = checkpoints(self.steps)
        self._span = torch.zeros(self.steps + 1, dtype=torch.long)
        self._span[w[1:]] = torch.tensor([b - a for a, b in pairwise(w)])

    @property
    def min_classes(self) -> int:
        return 3 if self.loss == "dlr" and not self.targeted else (4 if self.loss == "dlr" else 2)

    def objective(
        self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        """The per-sample loss APGD ascends."""
        if self.loss == "ce":
            return -ce_loss(logits, targets) if self.targeted else ce_loss(logits, labels)
        if self.targeted:
            return targeted_dlr_loss(logits, labels, targets)
        return dlr_loss(logits, labels)

    def _run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int | None = None,
    ) -> AttackResult:
        if images.shape[0]:
            k = num_classes_of(self.model, images)
            need_classes(k, self.min_classes, f"APGD-{self.loss.upper()}")
        table = targets.unsqueeze(1) if targets is not None else None
        return self._pool(images, labels, table, self.restarts, batch_size)

    # ------------------------------------------------------------------------------ engine

    def _pool(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        table: torch.Tensor | None,
        runs: int,
        batch_size: int | None,
    ) -> AttackResult:
        """Attack all of ``x`` through a pool of at most ``batch_size`` rows; run r of an image
        uses target ``table[image, r // restarts]`` (no target when ``table`` is None)."""
        n, dev = x.shape[0], x.device
        if n == 0:  # a composition may find no image left to attack
            none = torch.zeros(0, device=dev)
            return AttackResult(x.clone(), none.bool(), none, none.long(), none)
        capacity = n if batch_size is None else max(1, min(n, int(batch_size)))
        ball = _Set(self.threat, x, self.steps, self.large_eps)
        span = self._span.to(dev)
        best_adv, best_loss = x.clone(), torch.full((n,), -torch.inf, device=dev, dtype=x.dtype)
        best_success = torch.zeros(n, dtype=torch.bool, device=dev)
        iterations = torch.zeros(n, dtype=torch.long, device=dev)
        state: dict[str, torch.Tensor] = {}
        admitted = 0
        while admitted < n or state["row"].numel() > 0:
            room = capacity - (state["row"].numel() if state else 0)
            if room > 0 and admitted < n:
                new = torch.arange(admitted, min(n, admitted + room), device=dev)
                admitted += new.numel()
                fresh = {"row": new, "run": torch.zeros_like(new), **self._fresh(x[new], ball)}
                state = {k: torch.cat([state[k], v]) if state else v for k, v in fresh.items()}
            rows, run, t = state["row"], state["run"], state["t"]
            y = labels[rows]
            tgt = table[rows, run // self.restarts] if table is not None else None
            need_grad = bool((t < ball.end).any())
            xa = state["x"].requires_grad_(need_grad)
            with torch.set_grad_enabled(need_grad):
                logits, loss = self._expected(xa, y, tgt)
            success = self.is_success(logits.detach(), y, tgt)
            grad = torch.autograd.grad(loss.sum(), xa)[0] if need_grad else None
            state["x"], loss = xa.detach(), loss.detach()
            kept = loss
            if ball.schedule is not None:  # only iterates inside the ε-ball count
                inside = ball.schedule.admissible(state)
                success, kept = success & inside, torch.where(inside, loss, -torch.inf)
            self._keep_best(rows, state["x"], kept, success, best_adv, best_loss, best_success)
            if ball.schedule is None:
                grad = self._checkpoint(state, loss, grad, span)
            else:  # L1: the sparsity check replaces conditions 1 and 2
                grad = self._track_best(state, loss, grad)
                grad = ball.schedule.checkpoint(state, grad, x[rows])

            over = t >= ball.end
            if self.early_stop:
                over = over | success
            again = over & (run + 1 < runs)
            if self.early_stop:
                again = again & ~best_success[rows]
            moving = ~over
            if grad is not None and bool(moving.any()):
                stepped = self._step(state, x, grad, ball)
                iterations[rows[moving & stepped]] += 1
            if bool(again.any()):
                for k, v in self._fresh(x[rows[again]], ball).items():
                    state[k][again] = v
                state["run"][again] += 1
            stay = moving | again
            if not bool(stay.all()):
                state = {k: v[stay] for k, v in state.items()}
        return AttackResult(
            adversarial=best_adv,
            success=best_success,
            norms=self.threat.norms(best_adv - x),
            iterations=iterations,
            loss=-best_loss if self.targeted and self.loss == "ce" else best_loss,
        )

    def _expected(
        self, xa: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and loss at ``xa``: one pass, or the means over ``eot`` passes."""
        logits_sum, loss_sum = None, None
        for _ in range(self.eot):
            logits = self.model(xa)
            check_finite(logits)
            loss = self.objective(logits, y, tgt)
            logits_sum = logits if logits_sum is None else logits_sum + logits
            loss_sum = loss if loss_sum is None else loss_sum + loss
        return logits_sum / self.eot, loss_sum / self.eot

    def _fresh(self, x0: torch.Tensor, ball: _Set) -> dict[str, torch.Tensor]:
        """A new run: a seeded random point of S, η = 2ε, no best point yet (in L1, the
        schedule's start and step state)."""
        m = x0.shape[0]
        l1 = ball.schedule.fresh(x0, self.generator) if ball.schedule else {}
        start = (
            l1["x"] if l1 else ball.project(x0, x0 + self.threat.random_init(x0, self.generator))
        )
        none = torch.full((m,), -torch.inf, device=x0.device, dtype=x0.dtype)
        return {
            **ball.bounds(x0),
            "x": start,
            "prev": start.clone(),
            "t": torch.zeros(m, dtype=torch.long, device=x0.device),
            "eta": torch.full((m,), 2.0 * self.threat.eps, device=x0.device, dtype=x0.dtype),
            "loss_prev": none.clone(),
            "x_max": start.clone(),
            "g_max": torch.zeros_like(start),
            "loss_max": none.clone(),
            "loss_max_last": none,
            "increases": torch.zeros(m, dtype=torch.long, device=x0.device),
            "halved_last": torch.zeros(m, dtype=torch.bool, device=x0.device),
            **l1,
        }

    def _checkpoint(
        self,
        s: dict[str, torch.Tensor],
        loss: torch.Tensor,
        grad: torch.Tensor | None,
        span: torch.Tensor,
    ) -> torch.Tensor | None:
        """Count increases, keep the best point and, at a checkpoint, halve η where condition
        1 or 2 holds and move those rows back to their best point (with its gradient)."""
        t = s["t"]
        s["increases"] += (t > 0) & (loss > s["loss_prev"])
        grad = self._track_best(s, loss, grad)
        s["loss_max_last"] = torch.where(t == 0, s["loss_max"], s["loss_max_last"])
        gap = span[t]
        check = gap > 0
        if bool(check.any()):
            few_increases = s["increases"] < self.rho * gap  # condition 1
            stalled = ~s["halved_last"] & (s["loss_max"] <= s["loss_max_last"])  # condition 2
            halve = check & (few_increases | stalled)
            s["eta"] = torch.where(halve, s["eta"] / 2, s["eta"])
            hb = _per_sample(halve, s["x"])
            s["x"] = torch.where(hb, s["x_max"], s["x"])
            if grad is not None:
                grad = torch.where(hb, s["g_max"], grad)
            loss = torch.where(halve, s["loss_max"], loss)
            s["halved_last"] = torch.where(check, halve, s["halved_last"])
            s["loss_max_last"] = torch.where(check, s["loss_max"], s["loss_max_last"])
            s["increases"] = torch.where(check, 0, s["increases"])
        s["loss_prev"] = loss
        return grad

    @staticmethod
    def _track_best(
        s: dict[str, torch.Tensor], loss: torch.Tensor, grad: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Keep each row's highest-loss point of the run (with its gradient)."""
        better = loss > s["loss_max"]
        if bool(better.all()):  # e.g. the first iterate of every run: no copy needed
            s["x_max"], s["loss_max"] = s["x"], loss
            if grad is not None:
                s["g_max"] = grad
        elif bool(better.any()):  # copy the rows that improved, not the whole pool
            idx = better.nonzero().squeeze(1)
            # In place, unless the buffer is still shared with an iterate (see above).
            for key, src in (("x_max", s["x"]), ("g_max", grad)):
                if src is None:
                    continue
                if s[key].data_ptr() == src.data_ptr() or s[key] is s.get("prev"):
                    s[key] = s[key].clone()
                s[key].index_copy_(0, idx, src[idx])
            s["loss_max"] = torch.where(better, loss, s["loss_max"])
        return grad

    def _step(
        self, s: dict[str, torch.Tensor], images: torch.Tensor, grad: torch.Tensor, ball: _Set
    ) -> torch.Tensor:
        """z = P_S(x + η·direction); x ← P_S(x + α(z − x) + (1 − α)(x − x_prev)), written as
        P_S(lerp(2x − x_prev, z, α)) (the same point); in L∞ P_S is one clamp to the bounds
        the state keeps. In L1 the schedule's sparse step (no momentum) or its move to the
        next stage. Returns the rows that took a gradient step."""
        if ball.schedule is not None:
            return ball.schedule.step(s, images[s["row"]], grad)
        x, eta = s["x"], _per_sample(s["eta"], s["x"])
        first = s["t"] == 0
        if bool(first.any()):
            a = _per_sample(torch.where(first, 1.0, self.momentum).to(x.dtype), x)
        else:
            a = self.momentum
        if ball.linf:
            lo, hi = s["lo"], s["hi"]
            z = torch.addcmul(x, grad.sign(), eta).clamp_(lo, hi)
            new = torch.add(x, x).sub_(s["prev"]).lerp_(z, a).clamp_(lo, hi)
        else:
            x0 = images[s["row"]]
            z = ball.project(x0, x + self.threat.step(grad, 1.0, x) * eta)
            new = ball.project(x0, torch.add(x, x).sub_(s["prev"]).lerp_(z, a))
        s["prev"], s["x"] = x, new
        s["t"] = s["t"] + 1
        return torch.ones_like(s["t"], dtype=torch.bool)

    @staticmethod
    def _keep_best(
        rows: torch.Tensor,
        xa: torch.Tensor,
        loss: torch.Tensor,
        success: torch.Tensor,
        best_adv: torch.Tensor,
        best_loss: torch.Tensor,
        best_success: torch.Tensor,
    ) -> None:
        """Each image keeps its first fooling point, else its highest-loss point."""
        old = best_success[rows]
        better = (success & ~old) | (~success & ~old & (loss > best_loss[rows]))
        if bool(better.any()):
            idx = rows[better]
            best_adv[idx], best_loss[idx] = xa[better], loss[better]
            best_success[idx] = success[better]

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            **self.threat.describe(),
            "steps": self.steps,
            "loss": self.loss,
            "restarts": self.restarts,
            "rho": self.rho,
            "momentum": self.momentum,
            "initial_step": "eps" if isinstance(self.threat, L1) else "2·eps",
            "targeted": self.targeted,
            "target_mode": self.target_mode if self.targeted else None,
            "early_stop": self.early_stop,
            "eot": self.eot,
            "seed": self.seed,
            **({"large_eps": self.large_eps} if isinstance(self.threat, L1) else {}),
        }


class APGDT(APGD):
    """APGD-T: the targeted DLR loss toward each of the ``targets`` classes with the highest
    clean logits other than the true one (9, or K − 1 for K ≤ 10 classes), ``steps``
    iterations each, on the images no earlier target broke. Success is misclassification."""

    name = "apgd-t"

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        steps: int = 100,
        *,
        targets: int = 9,
        restarts: int = 1,
        rho: float = 0.75,
        momentum: float = 0.75,
        early_stop: bool = True,
        large_eps: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(
            model,
            threat,
            steps,
            loss="dlr",
            restarts=restarts,
            rho=rho,
            momentum=momentum,
            early_stop=early_stop,
            large_eps=large_eps,
            seed=seed,
        )
        if int(targets) < 1:
            raise ConfigError(f"APGD-T needs at least one target, got {targets}")
        self.n_targets = int(targets)

    min_classes = 4  # the targeted DLR ranks four logits

    def objective(
        self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        return targeted_dlr_loss(logits, labels, targets)

    def is_success(
        self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        return logits.argmax(dim=1) != labels

    def target_table(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None
    ) -> torch.Tensor:
        """(n, k) targets: the classes ranked 1…k by clean logit, the true class left out."""
        chunk = images.shape[0] if batch_size is None else max(1, int(batch_size))
        with torch.no_grad():
            logits = torch.cat(
                [self.model(images[i : i + chunk]) for i in range(0, len(images), chunk)]
            )
        check_finite(logits)
        need_classes(logits.shape[1], self.min_classes, "targeted DLR")
        k = min(self.n_targets, logits.shape[1] - 1)
        masked = logits.scatter(1, labels.unsqueeze(1), -torch.inf)
        return masked.topk(k, dim=1).indices

    def _run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int | None = None,
    ) -> AttackResult:
        if not images.shape[0]:
            return self._pool(images, labels, None, 1, batch_size)
        table = self.target_table(images, labels, batch_size)
        return self._pool(images, labels, table, table.shape[1] * self.restarts, batch_size)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "loss": "dlr-targeted", "targets": self.n_targets}
