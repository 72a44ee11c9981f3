"""The training losses of TRADES and MART, from logits, per sample or as a batch mean.

TRADES (Zhang et al. 2019, Eq. 5): CE(f(x), y) + β·KL(f(x) ‖ f(x')).
MART (Wang et al. 2020, Eq. 6 and 7): BCE(p(x'), y) + λ·KL(p(x) ‖ p(x'))·(1 − p_y(x)), with the
boosted cross-entropy BCE(p(x'), y) = −log p_y(x') − log(1 − max_{k≠y} p_k(x')).
Every log-probability comes from a log-softmax (and log(1 − p_k) from a log-sum-exp over the
other classes), so no ε is added inside a logarithm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_per_sample(clean_logits: torch.Tensor, adv_logits: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) per row, p = softmax(clean), q = softmax(adv)."""
    log_p = F.log_softmax(clean_logits, dim=1)
    log_q = F.log_softmax(adv_logits, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def trades_loss(
    clean_logits: torch.Tensor, adv_logits: torch.Tensor, labels: torch.Tensor, beta: float
) -> torch.Tensor:
    """The TRADES objective, averaged over the batch."""
    natural = F.cross_entropy(clean_logits, labels)
    return natural + beta * kl_per_sample(clean_logits, adv_logits).mean()


def log_one_minus_top_other(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log(1 − max_{k≠y} p_k) per row: log Σ_{j≠m} e^{z_j} − log Σ_j e^{z_j}, where m is the
    most likely class other than y."""
    others = logits.scatter(1, labels[:, None], float("-inf"))
    top = others.argmax(dim=1, keepdim=True)
    rest = logits.scatter(1, top, float("-inf"))
    return torch.logsumexp(rest, dim=1) - torch.logsumexp(logits, dim=1)


def boosted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MART's BCE per row: −log p_y − log(1 − max_{k≠y} p_k)."""
    ce = F.cross_entropy(logits, labels, reduction="none")
    return ce - log_one_minus_top_other(logits, labels)


def mart_loss(
    clean_logits: torch.Tensor, adv_logits: torch.Tensor, labels: torch.Tensor, beta: float
) -> torch.Tensor:
    """The MART objective, averaged over the batch (``beta`` is the paper's λ)."""
    p_true = F.softmax(clean_logits, dim=1).gather(1, labels[:, None]).squeeze(1)
    weight = 1.0 - p_true
    robust = kl_per_sample(clean_logits, adv_logits) * weight
    return boosted_cross_entropy(adv_logits, labels).mean() + beta * robust.mean()
