"""RobustBench's checkpoint layouts, written out for the tests: the key names and shapes its
WideResNet, PreActResNet, CIFAR ResNet-50 and torchvision ResNet-50 state dicts have, random
weights in them, and a forward pass computed from the state dict alone with torch.nn.functional
as RobustBench's model code does it (the reference the loaded models are compared with)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

Shapes = dict[str, tuple[int, ...]]


def _bn(shapes: Shapes, name: str, c: int) -> None:
    for part in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{name}.{part}"] = (c,)
    shapes[f"{name}.num_batches_tracked"] = ()


def wrn_shapes(depth: int, widen: int, classes: int = 10, sub_block1: bool = False) -> Shapes:
    n = (depth - 4) // 6
    channels = [16, 16 * widen, 32 * widen, 64 * widen]
    shapes: Shapes = {"conv1.weight": (16, 3, 3, 3)}
    stages = [
        ("block1", 1),
        *([("sub_block1", 1)] if sub_block1 else []),
        ("block2", 2),
        ("block3", 3),
    ]
    for name, s in stages:
        for i in range(n):
            cin = channels[s - 1] if i == 0 else channels[s]
            cout = channels[s]
            p = f"{name}.layer.{i}"
            _bn(shapes, f"{p}.bn1", cin)
            shapes[f"{p}.conv1.weight"] = (cout, cin, 3, 3)
            _bn(shapes, f"{p}.bn2", cout)
            shapes[f"{p}.conv2.weight"] = (cout, cout, 3, 3)
            if cin != cout:
                shapes[f"{p}.convShortcut.weight"] = (cout, cin, 1, 1)
    _bn(shapes, "bn1", channels[3])
    shapes["fc.weight"], shapes["fc.bias"] = (classes, channels[3]), (classes,)
    return shapes


def preact_shapes(width: int = 64, bn_before_fc: bool = True, classes: int = 10) -> Shapes:
    shapes: Shapes = {"conv1.weight": (width, 3, 3, 3)}
    planes = width
    for s in range(4):
        out = width * 2**s
        for b in range(2):
            p, stride = f"layer{s + 1}.{b}", 2 if (b == 0 and s) else 1
            _bn(shapes, f"{p}.bn1", planes)
            shapes[f"{p}.conv1.weight"] = (out, planes, 3, 3)
            _bn(shapes, f"{p}.bn2", out)
            shapes[f"{p}.conv2.weight"] = (out, out, 3, 3)
            if stride != 1 or planes != out:
                shapes[f"{p}.shortcut.0.weight"] = (out, planes, 1, 1)
            planes = out
    if bn_before_fc:
        _bn(shapes, "bn", planes)
    shapes["linear.weight"], shapes["linear.bias"] = (classes, planes), (classes,)
    return shapes


def resnet50_shapes(width: int = 64, torchvision: bool = False, classes: int = 10) -> Shapes:
    """The CIFAR ResNet-50 (``shortcut``, ``linear``; 3×3 stem) or torchvision's
    (``downsample``, ``fc``; 7×7 stem)."""
    down, head = ("downsample", "fc") if torchvision else ("shortcut", "linear")
    shapes: Shapes = {"conv1.weight": (width, 3, 7, 7) if torchvision else (width, 3, 3, 3)}
    _bn(shapes, "bn1", width)
    planes = width
    for s, count in enumerate((3, 4, 6, 3)):
        inner = width * 2**s
        for b in range(count):
            p, stride = f"layer{s + 1}.{b}", 2 if (b == 0 and s) else 1
            shapes[f"{p}.conv1.weight"] = (inner, planes, 1, 1)
            _bn(shapes, f"{p}.bn1", inner)
            shapes[f"{p}.conv2.weight"] = (inner, inner, 3, 3)
            _bn(shapes, f"{p}.bn2", inner)
            shapes[f"{p}.conv3.weight"] = (4 * inner, inner, 1, 1)
            _bn(shapes, f"{p}.bn3", 4 * inner)
            if stride != 1 or planes != 4 * inner:
                shapes[f"{p}.{down}.0.weight"] = (4 * inner, planes, 1, 1)
                _bn(shapes, f"{p}.{down}.1", 4 * inner)
            planes = 4 * inner
    shapes[f"{head}.weight"], shapes[f"{head}.bias"] = (classes, planes), (classes,)
    return shapes


def random_weights(shapes: Shapes, seed: int) -> dict[str, Tensor]:
    """Trained-looking weights: He-scaled convs, BatchNorm statistics away from 0 and 1."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(100)
        elif name.endswith(("running_var", ".weight")) and len(shape) == 1:  # BN scale, var
            out[name] = 0.5 + torch.rand(shape, generator=gen)
        elif len(shape) == 1:  # BN bias, running mean, linear bias
            out[name] = 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            out[name] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return out


def _bn_f(sd: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    return F.batch_norm(
        x,
        sd[f"{name}.running_mean"],
        sd[f"{name}.running_var"],
        sd[f"{name}.weight"],
        sd[f"{name}.bias"],
        training=False,
        eps=1e-5,
    )


def _conv(sd: dict[str, Tensor], name: str, x: Tensor, stride: int = 1, pad: int = 0) -> Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], stride=stride, padding=pad)


def wrn_forward(sd: dict[str, Tensor], x: Tensor, depth: int) -> Tensor:
    """RobustBench's WideResNet forward (its BasicBlock: the pre-activated input feeds both
    conv1 and the 1×1 shortcut when the width changes)."""
    out = _conv(sd, "conv1", x, 1, 1)
    for s in (1, 2, 3):
        for i in range((depth - 4) // 6):
            p, stride = f"block{s}.layer.{i}", (2 if s > 1 else 1) if i == 0 else 1
            if f"{p}.convShortcut.weight" in sd:
                act = F.relu(_bn_f(sd, f"{p}.bn1", out))
                shortcut, h = _conv(sd, f"{p}.convShortcut", act, stride), act
            else:
                shortcut, h = out, F.relu(_bn_f(sd, f"{p}.bn1", out))
            h = F.relu(_bn_f(sd, f"{p}.bn2", _conv(sd, f"{p}.conv1", h, stride, 1)))
            out = shortcut + _conv(sd, f"{p}.conv2", h, 1, 1)
    out = F.relu(_bn_f(sd, "bn1", out))
    return F.linear(out.mean(dim=(2, 3)), sd["fc.weight"], sd["fc.bias"])


def preact_forward(sd: dict[str, Tensor], x: Tensor, shortcut_from_input: bool) -> Tensor:
    """RobustBench's PreActResNet forward: ``PreActBlock`` takes the 1×1 shortcut from the
    block's input (``shortcut_from_input``), ``PreActBlockV2`` from ``relu(bn1(x))``; the
    final BN → ReLU only where the file has ``bn``."""
    out = _conv(sd, "conv1", x, 1, 1)
    for s in range(4):
        for b in range(2):
            p, stride = f"layer{s + 1}.{b}", 2 if (b == 0 and s) else 1
            act = F.relu(_bn_f(sd, f"{p}.bn1", out))
            if f"{p}.shortcut.0.weight" in sd:
                shortcut = _conv(sd, f"{p}.shortcut.0", out if shortcut_from_input else act, stride)
            else:
                shortcut = out
            h = _conv(sd, f"{p}.conv1", act, stride, 1)
            out = _conv(sd, f"{p}.conv2", F.relu(_bn_f(sd, f"{p}.bn2", h)), 1, 1) + shortcut
    if "bn.weight" in sd:
        out = F.relu(_bn_f(sd, "bn", out))
    return F.linear(out.mean(dim=(2, 3)), sd["linear.weight"], sd["linear.bias"])


def resnet50_forward(sd: dict[str, Tensor], x: Tensor, torchvision: bool) -> Tensor:
    """The bottleneck ResNet forward, CIFAR stem or torchvision's (7×7/2 conv, 3×3/2 max-pool);
    stride on the 3×3 conv in both."""
    down, head = ("downsample", "fc") if torchvision else ("shortcut", "linear")
    if torchvision:
        out = F.max_pool2d(F.relu(_bn_f(sd, "bn1", _conv(sd, "conv1", x, 2, 3))), 3, 2, 1)
    else:
        out = F.relu(_bn_f(sd, "bn1", _conv(sd, "conv1", x, 1, 1)))
    for s, count in enumerate((3, 4, 6, 3)):
        for b in range(count):
            p, stride = f"layer{s + 1}.{b}", 2 if (b == 0 and s) else 1
            h = F.relu(_bn_f(sd, f"{p}.bn1", _conv(sd, f"{p}.conv1", out)))
            h = F.relu(_bn_f(sd, f"{p}.bn2", _conv(sd, f"{p}.conv2", h, stride, 1)))
            h = _bn_f(sd, f"{p}.bn3", _conv(sd, f"{p}.conv3", h))
            if f"{p}.{down}.0.weight" in sd:
                shortcut = _bn_f(sd, f"{p}.{down}.1", _conv(sd, f"{p}.{down}.0", out, stride))
            else:
                shortcut = out
            out = F.relu(h + shortcut)
    return F.linear(out.mean(dim=(2, 3)), sd[f"{head}.weight"], sd[f"{head}.bias"])
