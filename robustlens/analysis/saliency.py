"""Sensitivity maps through Captum, and numbers that compare them (Itazuri et al. 2019, §3.4,
App. A; Adebayo et al. 2018 for the randomisation check).

Methods (App. A, Eq. 13–17): ``vanilla`` ∇ₓ f_y(x) (the label's logit); ``loss`` ∇ₓ L(f(x), y)
(cross-entropy); ``guided`` guided backpropagation (Captum hooks every ``nn.ReLU`` module);
``smoothgrad`` the vanilla gradient averaged over inputs with Gaussian noise of standard
deviation ``noise`` × the input range ([0, 1] here, so 0.15 by default); ``integrated``
integrated gradients from a zero baseline x′ in 50 steps, batched: by default Eq. 17's path
integral of the gradient alone, ∫₀¹ ∇ₓ f_t(x′ + α(x − x′)) dα (App. A.1 omits the element-wise
product with the input for every method), or, with ``multiply_by_inputs``, the usual form of
Sundararajan et al. (Captum's default) that multiplies it by (x − x′). Maps keep the input's
shape and sign.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn
from torch.overrides import TorchFunctionMode

from robustlens.data.probes import edge_map
from robustlens.errors import ConfigError

METHODS = ("vanilla", "loss", "guided", "smoothgrad", "integrated")
INPUT_RANGE = 1.0
"""Images are in [0, 1]: SmoothGrad's σ is its ``noise`` fraction of this range."""


class _ReluCalls(TorchFunctionMode):
    """Counts ReLU function calls (from modules and functional code alike)."""

    RELUS = (torch.relu, F.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_)

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.RELUS:
            self.calls += 1
        return func(*args, **(kwargs or {}))


def check_guided_backprop(model: nn.Module, sample: torch.Tensor) -> int:
    """The number of ``nn.ReLU`` module calls guided backpropagation can hook in one forward
    pass; a clear error when a ReLU is applied functionally (``F.relu``, ``torch.relu``) or
    the model has none, because guided backprop would then silently be a plain gradient."""
    module_calls = [0]

    def count(*_):
        module_calls[0] += 1

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad(), _ReluCalls() as mode:
            model(sample[:1])
    finally:
        for h in handles:
            h.remove()
    functional = mode.calls - module_calls[0]
    if module_calls[0] == 0 or functional > 0:
        raise ConfigError(
            f"guided backpropagation can only modify nn.ReLU modules; {type(model).__name__} "
            f"applies {functional} ReLU(s) as functions and {module_calls[0]} as modules",
            fix="use nn.ReLU modules in the model, or leave 'guided' out of the lens's methods",
        )
    return module_calls[0]


def attribute(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    method: str,
    *,
    noise: float = 0.15,
    samples: int = 50,
    steps: int = 50,
    multiply_by_inputs: bool = False,
    batch: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """The ``method``'s map for each image toward its label, shape of ``images`` (CPU).
    ``multiply_by_inputs``: integrated gradients times (x − x′) instead of Eq. 17's integral."""
    # heavy: captum loads only when maps are computed
    from captum.attr import (
        GuidedBackprop,
        IntegratedGradients,
        NoiseTunnel,
        Saliency,
    )

    if method not in METHODS:
        raise ConfigError(f"unknown saliency method {method!r}", fix=f"use {', '.join(METHODS)}")
    device = next(model.parameters()).device
    out = []
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # SmoothGrad's noise comes from the global generator in Captum
    try:
        with warnings.catch_warnings():
            # Captum's notes on inputs without requires_grad and on backward hooks of modules
            warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
            for start in range(0, images.shape[0], batch):
                x = images[start : start + batch].to(device).clone().requires_grad_(True)
                y = labels[start : start + batch].to(device)
                if method == "vanilla":
                    a = Saliency(model).attribute(x, target=y, abs=False)
                elif method == "loss":

                    def loss(z: torch.Tensor, y: torch.Tensor = y) -> torch.Tensor:
                        return F.cross_entropy(model(z), y, reduction="none")

                    a = Saliency(loss).attribute(x, abs=False)
                elif method == "guided":
                    a = GuidedBackprop(model).attribute(x, target=y)
                elif method == "smoothgrad":
                    a = NoiseTunnel(Saliency(model)).attribute(
                        x,
                        nt_type="smoothgrad",
                        nt_samples=samples,
                        nt_samples_batch_size=max(1, 256 // x.shape[0]),
                        stdevs=noise * INPUT_RANGE,
                        target=y,
                        abs=False,
                    )
                else:
                    ig = IntegratedGradients(model, multiply_by_inputs=multiply_by_inputs)
                    a = ig.attribute(
                        x, baselines=torch.zeros_like(x), target=y, n_steps=steps,
                        internal_batch_size=256,
                    )  # fmt: skip
                out.append(a.detach().cpu())
    finally:
        torch.random.set_rng_state(generator_state)
    return torch.cat(out)


def _magnitude(maps: torch.Tensor) -> np.ndarray:
    """|map| summed over channels: [N, H, W] float64."""
    return maps.abs().sum(dim=1).double().numpy()


def high_frequency_fraction(maps: torch.Tensor, cutoff: float = 0.5) -> np.ndarray:
    """Per map, the share of its spectral energy (DC left out, channels summed) at radial
    frequencies above ``cutoff`` × Nyquist."""
    x = maps.double()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2).sum(dim=1)  # [N, H, W]
    h, w = power.shape[1:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).view(1, -1)
    radius = torch.sqrt(fy**2 + fx**2) / 0.5
    total = power.sum(dim=(1, 2))
    high = (power * (radius > cutoff)).sum(dim=(1, 2))
    return torch.where(total > 0, high / total.clamp_min(1e-300), torch.nan).numpy()


def _rank_rows(values: np.ndarray) -> np.ndarray:
    return rankdata(values, axis=1)


def rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` [N, D] with the same row of ``b``
    (NaN where a row is constant)."""
    ra, rb = _rank_rows(a), _rank_rows(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    num = (ra * rb).sum(axis=1)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def edge_alignment(maps: torch.Tensor, images: torch.Tensor) -> np.ndarray:
    """Per image, the Spearman correlation between the map's magnitude and the image's Sobel
    edge magnitude: how much the map follows the image's edges."""
    edges = edge_map(images)[:, 0].double().numpy()
    n = maps.shape[0]
    return rowwise_spearman(_magnitude(maps).reshape(n, -1), edges.reshape(n, -1))


def map_similarity(original: torch.Tensor, other: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image (Spearman rank correlation, SSIM) between the magnitudes of two maps, each
    scaled to [0, 1] for SSIM (Adebayo et al. 2018)."""
    # heavy: kornia loads only when maps are compared
    import kornia

    n = original.shape[0]
    a, b = _magnitude(original), _magnitude(other)
    rho = rowwise_spearman(a.reshape(n, -1), b.reshape(n, -1))
    ta, tb = torch.from_numpy(a).unsqueeze(1), torch.from_numpy(b).unsqueeze(1)
    ta = ta / ta.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    tb = tb / tb.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    size = min(ta.shape[-2:])
    window = 11 if size >= 44 else max(3, (size // 4) | 1)
    ssim = kornia.metrics.ssim(ta, tb, window_size=window).flatten(1).mean(dim=1)
    return rho, ssim.numpy()


def randomizable_layers(model: nn.Module) -> list[str]:
    """Names of the convolution and linear layers, from the output down (the cascade order)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if not names:
        raise ConfigError("the randomisation check needs convolution or linear layers")
    return names[::-1]


def cascading_randomization(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attribute_fn: Callable[[nn.Module], torch.Tensor],
    *,
    seed: int = 0,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Adebayo et al.'s cascading check: re-initialise the layers one after another from the
    output down (each keeping the ones above random), and after each step compare the maps
    ``attribute_fn(model)`` gives with the trained model's. Returns (layer, Spearman [N],
    SSIM [N]) per step; the model itself is not changed."""
    original = attribute_fn(model)
    copy_ = copy.deepcopy(model)
    modules = dict(copy_.named_modules())
    steps = []
    gen = torch.Generator().manual_seed(seed)
    for name in randomizable_layers(model):
        layer = modules[name]
        with torch.no_grad():
            for p in layer.parameters(recurse=False):
                fan = p[0].numel() if p.ndim > 1 else p.numel()
                p.copy_((torch.randn(p.shape, generator=gen) / np.sqrt(fan)).to(p))
        rho, ssim = map_similarity(original, attribute_fn(copy_))
        steps.append((name, rho, ssim))
    return steps
