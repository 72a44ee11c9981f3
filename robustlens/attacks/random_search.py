"""A score-based random search: a small gradient-free baseline attack (L∞ and L2).

It reads only the model's outputs, never its gradients, so it is what a gradient-masking audit
compares white-box attacks with (Carlini et al. 2019, "On evaluating adversarial robustness",
§4.4: a gradient-free attack that beats a gradient-based one points at masked gradients). The
proposals follow Andriushchenko et al. 2020 (Square attack) in spirit, kept small: start at a
random vertex of the L∞ ball (a random point on the L2 sphere), then change a random square
window of the perturbation (new random signs ×ε in L∞; a Gaussian window, the whole
perturbation rescaled back to norm ε, in L2) and keep the change when it lowers the margin
``logit_y − max_{j≠y} logit_j``. The window covers ``p`` of the image, halved at fixed fractions
of the queries. An image leaves the search once it is misclassified. It is a baseline, not the
Square attack of record (``attacks/square.py``, when it exists).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from robustlens.attacks.base import Attack, check_finite
from robustlens.attacks.result import AttackResult
from robustlens.attacks.threat import L2, Linf, ThreatModel, clip_to_box
from robustlens.errors import ConfigError

HALVINGS = (0.1, 0.25, 0.5, 0.75)
"""Fractions of the query budget after which the window's share ``p`` is halved."""


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``logit_y − max_{j≠y} logit_j`` per row: negative once the image is misclassified."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.scatter(1, labels[:, None], -torch.inf).amax(dim=1)
    return true - other


class RandomSearch(Attack):
    """Untargeted score-based random search in an L∞ or L2 ball (``queries`` model calls per
    image at most, besides the first)."""

    name = "random-search"

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        queries: int = 500,
        p_init: float = 0.1,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(model, seed=seed)
        if not isinstance(threat, Linf | L2):
            raise ConfigError(
                f"the random search covers L∞ and L2 balls, not {threat}", fix="use linf or l2"
            )
        if int(queries) < 1 or not 0 < float(p_init) <= 1:
            raise ConfigError(
                f"random search needs queries ≥ 1 and 0 < p_init ≤ 1, got {queries}, {p_init}"
            )
        self.threat = threat
        self.queries = int(queries)
        self.p_init = float(p_init)

    def _scores(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = self.model(x)
        check_finite(logits)
        return margin(logits, labels)

    def _start(self, x: torch.Tensor) -> torch.Tensor:
        gen = self.generator
        if isinstance(self.threat, Linf):
            signs = torch.randint(0, 2, x.shape, generator=gen).to(x.dtype) * 2 - 1
            return clip_to_box(x, signs.to(x.device) * self.threat.eps)
        g = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        return clip_to_box(x, self._rescale(g))

    def _rescale(self, delta: torch.Tensor) -> torch.Tensor:
        """``delta`` with each row's L2 norm set to ε."""
        norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        return delta * (self.threat.eps / norm).reshape(-1, *([1] * (delta.ndim - 1)))

    def _window(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """A [N, 1, H, W] mask of one random square per image, covering about ``p`` of it."""
        n, _, h, w = x.shape
        p = self.p_init / 2 ** sum(t >= f * self.queries for f in HALVINGS)
        side = max(1, min(h, w, round(math.sqrt(p * h * w))))
        gen = self.generator
        top = torch.randint(0, h - side + 1, (n,), generator=gen)
        left = torch.randint(0, w - side + 1, (n,), generator=gen)
        rows = torch.arange(h)[None, :]
        cols = torch.arange(w)[None, :]
        inside_r = (rows >= top[:, None]) & (rows < top[:, None] + side)
        inside_c = (cols >= left[:, None]) & (cols < left[:, None] + side)
        mask = inside_r[:, :, None] & inside_c[:, None, :]
        return mask[:, None].to(x.device)

    def _propose(self, x: torch.Tensor, delta: torch.Tensor, t: int) -> torch.Tensor:
        mask = self._window(x, t)
        gen = self.generator
        if isinstance(self.threat, Linf):
            shape = (x.shape[0], x.shape[1], 1, 1)
            signs = torch.randint(0, 2, shape, generator=gen).to(x.dtype).to(x.device) * 2 - 1
            new = torch.where(mask, signs * self.threat.eps, delta)
            return clip_to_box(x, new)
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        size = self.threat.eps * math.sqrt(float(mask[0].float().mean()))
        step = self._rescale(noise * mask) * (size / self.threat.eps if self.threat.eps else 0)
        return clip_to_box(x, self._rescale(delta + step))

    def _run(
        self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None, *args: Any
    ) -> AttackResult:
        if images.ndim != 4:
            raise ConfigError(f"the random search needs NCHW images, got {tuple(images.shape)}")
        x = images
        delta = self._start(x)
        score = self._scores(x + delta, labels)
        iterations = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for t in range(self.queries):
            active = (score >= 0).nonzero().flatten()
            if active.numel() == 0:
                break
            proposal = self._propose(x[active], delta[active], t)
            new = self._scores(x[active] + proposal, labels[active])
            better = new < score[active]
            delta[active[better]] = proposal[better]
            score[active[better]] = new[better]
            iterations[active] += 1
        adversarial = x + delta
        return AttackResult(
            adversarial=adversarial,
            success=score < 0,
            norms=self.threat.norms(delta),
            iterations=iterations,
            loss=-score,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            **self.threat.describe(),
            "queries": self.queries,
            "p_init": self.p_init,
            "seed": self.seed,
        }
