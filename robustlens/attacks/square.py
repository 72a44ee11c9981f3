"""Square Attack (Andriushchenko, Croce, Flammarion & Hein 2020, ECCV), score-based black box.

Random search on the model's scores only (no gradients): each query changes one square window
of every image still robust, and the change is kept when it lowers the loss (Alg. 1).

- L∞ (Alg. 1–2): start from vertical stripes, δ = ±ε per channel and column; each step sets a
  random h × h window of every channel to x ± ε (a ±2ε update projected onto the ε-ball and
  the [0, 1] box). A proposal that would not change the image is redrawn, as in the authors'
  code, so no query is spent on it.
- L2 (§3.2, Alg. 3): start from a grid of "centred squares" η (two halves of opposite sign,
  weights Σ 1/(k+1)² over the squares around the centre) with ±1 per channel, scaled to
  ‖δ‖₂ = ε; each step empties a second random window W2 and puts its mass, plus the budget
  left to ε, into a window W1 as η·(±1) + δ_W1/‖δ_W1‖ per channel, then rescales δ to ε.
- L1 (the authors' released AutoAttack code; the paper has no L1 version): as L2, with the
  squares weighted Σ 1/(k+1)⁴ and every pattern, window mass and budget measured in L1; each
  new window gets c·(room/c + its old mass over W1 ∪ W2) per channel (the authors' factor c,
  which changes nothing for grey images), and the point is the exact projection onto the
  L1 ball ∩ [0, 1] box (:func:`robustlens.attacks.apgd_l1.project_l1_box`). The start is
  the L2 grid of patterns, projected the same way.
- The window side is h = round(√(p·n_features/c)), at least 1 (L∞) or the odd number ≥ 3
  (L2, L1), at most the image side; p starts at p_init = 0.8 and halves at iterations 10, 50,
  200, 500, 1000, 2000, 4000, 6000 and 8000 of a 10 000-query run, the iteration rescaled to
  the query budget as in the authors' code (:func:`p_schedule`).
- Loss: the margin z_y − max_{k≠y} z_k untargeted; targeted, the cross-entropy of the target
  (the paper's choice for targeted attacks) or, with ``loss="margin"``, max_{k≠t} z_k − z_t.
- Queries go only to images not yet broken. The clean forward pass that finds the images the
  model already misclassifies is not counted (as in the paper, which counts queries on
  correctly classified points); the initialisation is query 1.

Window positions are drawn uniformly from {0, …, side − h} (Alg. 2 of the paper; the authors'
code excludes the last position), independently per image.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.attacks.apgd import inner_radius
from robustlens.attacks.apgd_l1 import project_l1_box
from robustlens.attacks.base import Attack, check_finite
from robustlens.attacks.result import AttackResult
from robustlens.attacks.threat import L1, L2, Linf, ThreatModel
from robustlens.errors import ConfigError

SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64))
SCHEDULE += ((6000, 128), (8000, 256))
"""(iteration of a 10 000-query run, divisor of p_init up to and including it)."""
LAST_DIVISOR = 512
MAX_REDRAWS = 64
"""Redraws of an L∞ proposal that would leave the image unchanged (one change always exists)."""


def p_schedule(p_init: float, iteration: int, queries: int) -> float:
    """The fraction of pixels changed at ``iteration`` (0-based) of a run of ``queries``."""
    it = int(iteration / queries * 10000)
    for last, divisor in SCHEDULE:
        if it <= last:
            return p_init / divisor
    return p_init / LAST_DIVISOR


def window_side(p: float, n_features: int, channels: int, height: int, width: int) -> int:
    """L∞ window side: round(√(p·n_features/c)), between 1 and the image's smaller side."""
    side = round(math.sqrt(p * n_features / channels))
    return max(1, min(side, height, width))


def l2_window_side(p: float, n_features: int, channels: int, height: int, width: int) -> int:
    """L2 window side: as :func:`window_side` but at least 3 and odd (centred squares)."""
    side = max(round(math.sqrt(p * n_features / channels)), 3)
    side += 1 - side % 2
    return min(side, height, width)


def window_mask(
    height: int, width: int, side: int, top: torch.Tensor, left: torch.Tensor
) -> torch.Tensor:
    """[m, 1, H, W] masks, True on the ``side`` × ``side`` window at (top_i, left_i)."""
    rows = torch.arange(height, device=top.device).view(1, height, 1)
    cols = torch.arange(width, device=top.device).view(1, 1, width)
    t, lft = top.view(-1, 1, 1), left.view(-1, 1, 1)
    inside = (rows >= t) & (rows < t + side) & (cols >= lft) & (cols < lft + side)
    return inside.unsqueeze(1)


SQUARE_POWER = {"l2": 2, "l1": 4}
"""The power q of the centred squares' weights 1/(k+1)^q: 2 in L2 (the paper), 4 in L1 (the
authors' code)."""


def centred_squares(rows: int, cols: int, norm: str = "l2") -> torch.Tensor:
    """Σ_{k ≥ d} 1/(k+1)^q over the squares of radius k around the centre, d = Chebyshev
    distance to (rows // 2, cols // 2), for k < max(rows, cols) // 2 + 1; q and the unit norm
    are the ``norm``'s (:data:`SQUARE_POWER`)."""
    if rows == 0 or cols == 0:
        return torch.zeros(rows, cols)
    count = max(rows // 2, cols // 2) + 1
    weights = 1.0 / torch.arange(1, count + 1, dtype=torch.float64).pow(SQUARE_POWER[norm])
    tails = weights.flip(0).cumsum(0).flip(0)  # tails[d] = Σ_{k ≥ d} weights[k]
    i = (torch.arange(rows) - rows // 2).abs().view(-1, 1)
    j = (torch.arange(cols) - cols // 2).abs().view(1, -1)
    values = tails[torch.maximum(i, j)]
    return (values / _unit(values, norm)).float()


def _unit(values: torch.Tensor, norm: str) -> torch.Tensor:
    return values.abs().sum() if norm == "l1" else values.norm()


def eta(side: int, transpose: bool, norm: str = "l2") -> torch.Tensor:
    """The L2 (or L1) update's pattern: centred squares on the top half, their negative below,
    unit norm (a new tensor each call; built once per window side and norm, since every query
    of every image asks)."""
    return _eta(side, transpose, norm).clone()


@functools.cache
def _eta(side: int, transpose: bool, norm: str) -> torch.Tensor:
    pattern = torch.cat(
        [centred_squares(side // 2, side, norm), -centred_squares(side - side // 2, side, norm)],
        dim=0,
    )
    pattern = pattern / _unit(pattern, norm).clamp_min(1e-12)
    return pattern.T if transpose else pattern


def _window_mass(values: torch.Tensor, l1: bool) -> torch.Tensor:
    """Per image and channel, the L1 (``l1``) or L2 norm over the last two dimensions."""
    if l1:
        return values.abs().sum(dim=(2, 3), keepdim=True)
    return values.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()


def _per_row(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


class Square(Attack):
    """Square Attack, L∞, L2 or L1, untargeted or targeted.

    Args:
        threat: ``Linf(eps)``, ``L2(eps)`` or ``L1(eps)``.
        queries: model queries per image, the initialisation included (5 000 by default).
        p_init: the initial fraction of pixels a window covers (0.8).
        loss: ``"margin"`` or ``"ce"``; None picks the paper's: margin untargeted, CE targeted.
    """

    name = "square"

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        queries: int = 5000,
        *,
        p_init: float = 0.8,
        loss: str | None = None,
        targeted: bool = False,
        target_mode: str = "random",
        seed: int = 0,
    ) -> None:
        super().__init__(model, targeted=targeted, target_mode=target_mode, seed=seed)
        if not isinstance(threat, Linf | L2 | L1):
            raise ConfigError(
                f"the Square Attack supports Linf(eps), L2(eps) and L1(eps), got {threat!r}",
                fix="pass one of those threat models",
            )
        if isinstance(queries, bool) or int(queries) != queries or int(queries) < 1:
            raise ConfigError(f"the Square Attack needs at least one query, got {queries!r}")
        if not 0.0 < float(p_init) <= 1.0:
            raise ConfigError(f"p_init must be in (0, 1], got {p_init!r}")
        if loss not in (None, "margin", "ce"):
            raise ConfigError(f"unknown Square loss {loss!r}", fix="use 'margin' or 'ce'")
        self.threat = threat
        self.queries = int(queries)
        self.p_init = float(p_init)
        self.loss_name = loss or ("ce" if targeted else "margin")

    # ----------------------------------------------------------------------------- scores

    def _scores(
        self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, success) per row."""
        check_finite(logits)
        success = self.is_success(logits, labels, targets)
        own = targets if self.targeted else labels
        if self.loss_name == "ce":
            ce = F.cross_entropy(logits, own, reduction="none")
            return (ce if self.targeted else -ce), success
        mine = logits.gather(1, own.unsqueeze(1)).squeeze(1)
        others = logits.scatter(1, own.unsqueeze(1), -torch.inf).amax(dim=1)
        return (others - mine if self.targeted else mine - others), success

    # ------------------------------------------------------------------------------ random

    def _signs(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        bits = torch.randint(0, 2, shape, generator=self.generator)
        return (bits * 2 - 1).to(device=device, dtype=torch.float32)

    def _positions(self, m: int, height: int, width: int, side: int, device: torch.device):
        top = torch.randint(0, height - side + 1, (m,), generator=self.generator)
        left = torch.randint(0, width - side + 1, (m,), generator=self.generator)
        return window_mask(height, width, side, top.to(device), left.to(device))

    # -------------------------------------------------------------------------------- init

    def _init_linf(self, x: torch.Tensor) -> torch.Tensor:
        n, c, _, w = x.shape
        stripes = self._signs((n, c, 1, w), x.device).to(x.dtype) * self.threat.eps
        return (x + stripes).clamp(0.0, 1.0)

    def _init_tiles(self, x: torch.Tensor) -> torch.Tensor:
        """A grid of ±η tiles (side min(H, W) // 5), one sign per image, channel and tile."""
        n, c, h, w = x.shape
        side = max(1, min(h, w) // 5)
        tiles_h, tiles_w = h // side, w // side
        top0, left0 = (h - tiles_h * side) // 2, (w - tiles_w * side) // 2
        delta = torch.zeros_like(x)
        for a in range(tiles_h):
            for b in range(tiles_w):
                flip = bool(torch.randint(0, 2, (1,), generator=self.generator))
                pattern = eta(side, flip, self.threat.norm).to(x)
                r, s = top0 + a * side, left0 + b * side
                signs = self._signs((n, c, 1, 1), x.device).to(x.dtype)
                delta[:, :, r : r + side, s : s + side] += pattern * signs
        return delta

    def _init_l2(self, x: torch.Tensor) -> torch.Tensor:
        return self._l2_point(x, self._init_tiles(x))

    def _init_l1(self, x: torch.Tensor) -> torch.Tensor:
        return self._l1_point(x, self._init_tiles(x))

    def _l2_point(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        return (x + delta * _per_row(self.threat.eps / norm)).clamp(0.0, 1.0)

    def _l1_point(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """x + the exact projection of δ onto the L1 ball ∩ box, at the radius just under ε
        that survives rounding (:func:`~robustlens.attacks.apgd.inner_radius`; the authors
        use ε·(1 − 10⁻⁶)); the clamp only absorbs the rounding of x + (1 − x)."""
        radius = inner_radius(self.threat, x)
        return (x + project_l1_box(delta, -x, 1.0 - x, radius)).clamp(0.0, 1.0)

    # ------------------------------------------------------------------------------- steps

    def _propose_linf(self, x: torch.Tensor, best: torch.Tensor, p: float) -> torch.Tensor:
        m, c, h, w = x.shape
        side = window_side(p, x[0].numel(), c, h, w)
        mask = self._positions(m, h, w, side, x.device)
        eps = self.threat.eps
        signs = self._signs((m, c, 1, 1), x.device).to(x.dtype)
        new = torch.where(mask, (x + signs * eps).clamp(0.0, 1.0), best)
        idle = (new == best).flatten(1).all(dim=1).nonzero().squeeze(1)
        for _ in range(MAX_REDRAWS):
            if idle.numel() == 0:
                break
            signs = self._signs((idle.numel(), c, 1, 1), x.device).to(x.dtype)
            redrawn = torch.where(mask[idle], (x[idle] + signs * eps).clamp(0.0, 1.0), best[idle])
            new[idle] = redrawn
            idle = idle[(redrawn == best[idle]).flatten(1).all(dim=1)]
        return new

    def _propose_windows(self, x: torch.Tensor, best: torch.Tensor, p: float) -> torch.Tensor:
        """The L2 step (§3.2), or in L1 the same step with L1 masses (the authors' code).

        W1 gets η·(±1) + δ_W1/‖δ_W1‖ per channel, scaled to the mass the budget leaves:
        √(room/c + ‖δ_{W1 ∪ W2}‖²) with room = ε² − ‖δ‖₂² in L2, c·(room/c + ‖δ_{W1 ∪ W2}‖₁)
        with room = ε − ‖δ‖₁ in L1; W2 is emptied; then the point is rescaled to ε (L2) or
        projected onto the ball ∩ box (L1)."""
        l1 = isinstance(self.threat, L1)
        m, c, h, w = x.shape
        side = l2_window_side(p, x[0].numel(), c, h, w)
        w1 = self._positions(m, h, w, side, x.device)
        w2 = self._positions(m, h, w, side, x.device)
        delta = best - x
        inside = delta.masked_select(w1.expand_as(delta)).view(m, c, side, side)
        union = _window_mass(delta * (w1 | w2), l1)
        flips = torch.randint(0, 2, (m,), generator=self.generator).bool().tolist()
        patterns = torch.stack([eta(side, f, self.threat.norm) for f in flips])
        update = patterns.to(x).unsqueeze(1) * self._signs((m, c, 1, 1), x.device).to(x.dtype)
        update = update + inside / (_window_mass(inside, l1) + 1e-12)
        if l1:
            room = (self.threat.eps - delta.abs().flatten(1).sum(dim=1)).clamp_min(0.0) / c
            size = (_per_row(room) + union) * c
        else:
            total = delta.flatten(1).norm(dim=1)
            room = (self.threat.eps**2 - total.pow(2)).clamp_min(0.0) / c
            size = (_per_row(room) + union.pow(2)).sqrt()
        update = update / _window_mass(update, l1).clamp_min(1e-12)
        delta = delta.masked_fill(w2, 0.0)
        delta = delta.masked_scatter(w1.expand_as(delta), update * size)
        return self._l1_point(x, delta) if l1 else self._l2_point(x, delta)

    # --------------------------------------------------------------------------------- run

    def _run(
        self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> AttackResult:
        if images.ndim != 4:
            raise ConfigError(
                f"the Square Attack needs NCHW images, got shape {tuple(images.shape)}"
            )
        with torch.no_grad():
            return self._search(images, labels, targets)

    def _steps(self):
        """(start, proposal) of the threat model's norm."""
        if isinstance(self.threat, Linf):
            return self._init_linf, self._propose_linf
        if isinstance(self.threat, L2):
            return self._init_l2, self._propose_windows
        return self._init_l1, self._propose_windows

    def _search(
        self, x: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> AttackResult:
        n = x.shape[0]
        dev = x.device
        best = x.clone()
        queries = torch.zeros(n, dtype=torch.long, device=dev)
        loss_clean, success = self._scores(self.model(x), labels, targets)
        loss_best = torch.where(success, loss_clean, torch.inf)
        rows = (~success).nonzero().squeeze(1)
        if rows.numel() and self.threat.eps > 0:
            x0 = x[rows]
            t = targets[rows] if targets is not None else None
            start, propose = self._steps()
            init = start(x0)
            loss, hit = self._scores(self.model(init), labels[rows], t)
            best[rows], loss_best[rows], success[rows] = init, loss, hit
            queries[rows] += 1
            for it in range(self.queries - 1):
                rows = rows[~success[rows]]
                if rows.numel() == 0:
                    break
                x0 = x[rows]
                t = targets[rows] if targets is not None else None
                new = propose(x0, best[rows], p_schedule(self.p_init, it, self.queries))
                loss, hit = self._scores(self.model(new), labels[rows], t)
                better = (loss < loss_best[rows]) | hit
                keep = rows[better]
                best[keep], loss_best[keep], success[keep] = new[better], loss[better], hit[better]
                queries[rows] += 1
        return AttackResult(
            adversarial=best,
            success=success,
            norms=self.threat.norms(best - x),
            iterations=queries,
            loss=loss_best,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            **self.threat.describe(),
            "queries": self.queries,
            "p_init": self.p_init,
            "loss": self.loss_name,
            "targeted": self.targeted,
            "target_mode": self.target_mode if self.targeted else None,
            "seed": self.seed,
        }
