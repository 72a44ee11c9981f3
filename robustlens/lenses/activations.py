"""Densely active and redundant feature maps (Carletti et al. 2022, §3.1–3.2, §4.1–4.2).

For the output x^k of every block k (C_k maps of H_k × W_k):

* a map is τ_act-active when at least one activation exceeds τ_act (Def. 3.1), and densely
  active at level τ_dens when at least τ_dens·100 % of them do (Def. 3.2);
* N_k counts the maps densely active for *every* image (Fig. 1, 5);
* per image, the cosine-similarity matrix S of its active maps (Eq. 2) joins maps whose
  similarity exceeds τ_sim into clusters; C_k^R counts maps in clusters of more than one map
  (Def. 3.4, Fig. 2) and S̄ is the mean off-diagonal similarity (Fig. 3).

Images are streamed in batches; memory holds one batch of activations and per-image scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import convolutional_taps
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.models.anatomy import capture_activations
from robustlens.papers import CARLETTI
from robustlens.params import Interval
from robustlens.plotting import new_figure

# Names of the arrays the claims read (written and read through these, never spelled out).
TAPS = "taps"
"""Array: the taps (blocks) the lens looked at, in depth order."""
DENSE = "dense"
"""Per tap: [N, C] whether each map is densely active for each image."""
REDUNDANT_MAPS, MEAN_SIMILARITY = "redundant_maps", "mean_similarity"
"""Per tap: per-image C_k^R and S̄ [N]."""


def per_tap(what: str, tap: str) -> str:
    """The name of the array ``what`` (``DENSE`` or a per-image metric) at ``tap``."""
    return f"{what}/{tap}"


@dataclass(frozen=True)
class ActivationParams(LensParams):
    """τ_act = 0 and τ_dens = τ_sim = 0.95 as in §4.1–4.2; ``taps`` empty = every
    convolutional tap of the model (fully connected taps have no feature maps);
    ``count_clusters`` also counts the clusters n_k per image (the "effective number of
    active channels" of §3.2), which costs a union–find over the similar pairs."""

    tau_act: float = 0.0
    tau_dens: float = field(default=0.95, metadata=rule(Interval(float, 0, 1)))
    tau_sim: float = field(
        default=0.95, metadata=rule(Interval(float, -1, 1), hint="it is a cosine similarity")
    )
    batch_size: int = field(default=250, metadata=rule(Interval(int, 1, None)))
    taps: tuple[str, ...] = ()
    count_clusters: bool = False


PER_IMAGE = ("dense_maps", "active_maps", "redundant_maps", "mean_similarity", "clusters")


def map_states(
    acts: torch.Tensor, tau_act: float, tau_dens: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(active, densely active) indicators [B, C] of a batch of block outputs [B, C, H, W]."""
    if acts.ndim != 4:
        raise ConfigError(
            f"feature maps are [B, C, H, W] block outputs; got shape {tuple(acts.shape)}",
            fix="choose convolutional taps (fully connected outputs have no maps)",
        )
    size = acts.shape[2] * acts.shape[3]
    if tau_act == 0 and bool(acts.amin() >= 0):
        # Post-ReLU outputs: the positive entries are those of sign 1, and summing signs is
        # about twice as fast as counting a materialised boolean tensor.
        above = torch.sign(acts).sum(dim=(2, 3))
    else:
        above = (acts > tau_act).sum(dim=(2, 3), dtype=torch.int32)
    # "at least τ_dens·100 % of activations": count / size ≥ τ_dens, compared in integers
    # (with a tolerance for τ_dens·size landing just above a whole number in floating point).
    return above > 0, above >= math.ceil(tau_dens * size - 1e-9)


def _components_by_propagation(adjacency: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """Min-label propagation (vectorised; used for dense graphs)."""
    b, c, _ = adjacency.shape
    big = c + 1
    labels = torch.where(nodes, torch.arange(c, device=adjacency.device).expand(b, c), big)
    for _ in range(c):
        neighbour = torch.where(adjacency, labels.unsqueeze(1).expand(b, c, c), big).amin(dim=2)
        new = torch.where(nodes, torch.minimum(labels, neighbour), big)
        if torch.equal(new, labels):
            break
        labels = new
    roots = (labels == torch.arange(c, device=adjacency.device)) & nodes
    return roots.sum(dim=1)


MAX_UNION_FIND_EDGES = 50_000


def components_from_edges(
    nodes: torch.Tensor, edges: torch.Tensor, adjacency: torch.Tensor | None = None
) -> torch.Tensor:
    """Connected components per image: the node count minus the edges that join two
    components (union–find over ``edges`` [E, 3] = (image, i, j)). With many edges and the
    ``adjacency`` at hand, vectorised min-label propagation is used instead."""
    counts = nodes.sum(dim=1).to(torch.long)
    if edges.shape[0] == 0:
        return counts
    if edges.shape[0] > MAX_UNION_FIND_EDGES and adjacency is not None:
        return _components_by_propagation(adjacency | adjacency.transpose(1, 2), nodes)
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(x: tuple[int, int]) -> tuple[int, int]:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            x, parent[x] = parent.get(x, x), root
        return root

    merged = [0] * counts.shape[0]
    for img, i, j in edges.tolist():
        a, b = find((img, i)), find((img, j))
        if a != b:
            parent[a] = b
            merged[img] += 1
    return counts - torch.tensor(merged, device=counts.device)


def cluster_count(adjacency: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """Connected components among ``nodes`` [B, C] of the symmetric graphs ``adjacency``
    [B, C, C] (edges touching other nodes are ignored)."""
    adjacency = adjacency & nodes.unsqueeze(2) & nodes.unsqueeze(1)
    edges = torch.triu(adjacency, diagonal=1).nonzero()
    return components_from_edges(nodes, edges, adjacency)


def redundancy(
    acts: torch.Tensor, active: torch.Tensor, tau_sim: float, *, clusters: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per image: redundant active maps C^R, mean off-diagonal cosine similarity S̄ (NaN
    with fewer than two active maps) and, with ``clusters``, the number of clusters
    (Eq. 2, Def. 3.4; None without).

    Inactive maps are zeroed before the Gram matrix; Σ_{i≠j} ⟨u_i, u_j⟩ = ‖Σ_i u_i‖² −
    Σ_i ‖u_i‖² gives S̄ without it; a map is redundant when its row of the thresholded Gram
    matrix has an entry off the diagonal.
    """
    flat = acts.flatten(2).float()
    norm = flat.norm(dim=2)
    unit = flat * (active / norm.clamp_min(1e-12)).unsqueeze(2)
    n = active.sum(dim=1)
    pairs = n * (n - 1)
    squares = (active & (norm > 0)).sum(dim=1)  # Σ_i ‖u_i‖²: 1 per active non-zero map
    off_sum = unit.sum(dim=1).pow(2).sum(dim=1) - squares
    mean_sim = torch.where(pairs > 0, off_sum / pairs.clamp_min(1), torch.nan)
    gram = torch.bmm(unit, unit.transpose(1, 2))
    if not clusters and tau_sim >= 0:
        # Fast path: count each row's entries above τ_sim (zeroed inactive maps never are),
        # minus the diagonal entry ‖u_i‖² = 1 when it is above τ_sim too.
        diagonal = gram.diagonal(dim1=1, dim2=2) > tau_sim
        degree = gram.gt_(tau_sim).sum(dim=2) - diagonal.to(gram.dtype)
        return (degree > 0).sum(dim=1), mean_sim, None
    above = gram > tau_sim
    if tau_sim < 0:  # zeroed (inactive) maps would otherwise look similar to everything
        above &= active.unsqueeze(2) & active.unsqueeze(1)
    edges = above.nonzero()
    edges = edges[edges[:, 1] < edges[:, 2]]  # each pair once, no diagonal
    linked = torch.zeros_like(active)
    linked[edges[:, 0], edges[:, 1]] = True
    linked[edges[:, 0], edges[:, 2]] = True
    redundant = linked.sum(dim=1)  # a map with a link sits in a cluster of more than one
    if not clusters:
        return redundant, mean_sim, None
    return redundant, mean_sim, components_from_edges(active, edges, above)


def chosen_taps(model: StudyModel, params: ActivationParams) -> tuple[list[str], list[str]]:
    """(taps the lens looks at, the model's taps left out as fully connected). A feature map
    is a channel of a tap's [C, H, W] output (Def. 3.1); fully-connected outputs [C] have no
    maps, so by default the lens takes the convolutional taps among the model's own. Taps the
    user names must all output feature maps."""
    net = model.model
    modules = dict(net.named_modules())
    unknown = [t for t in params.taps if t not in modules]
    if unknown:
        raise ConfigError(
            f"model {model.name} has no tap {unknown[0]!r}",
            fix=f"its taps: {', '.join(net.taps) or '(none)'}; or any name from "
            "model.named_modules()",
        )
    if params.taps:
        maps, vectors = convolutional_taps(net, params.taps)
        if vectors:
            raise ConfigError(
                f"tap {vectors[0]!r} of model {model.name} outputs a vector (fully connected "
                "units), not feature maps",
                fix="choose taps that output [C, H, W] maps (convolutional blocks)",
            )
        return maps, []
    return convolutional_taps(net)


def applies(model: StudyModel, params: ActivationParams) -> str | None:
    """Why the lens cannot run on ``model`` (no convolutional taps), or None."""
    if params.taps:
        return None  # named taps are checked (and refused with a ConfigError) in compute
    maps, vectors = convolutional_taps(model.model)
    if not maps:
        listed = ", ".join(vectors) or "none"
        return (
            f"no feature maps: the taps of {model.name} ({listed}) output vectors (fully "
            "connected units), and dense activity and redundancy are defined per feature map"
        )
    return None


def compute(
    model: StudyModel, data: ImageSet, params: ActivationParams, ctx: LensContext
) -> LensResult:
    net = model.model
    taps, vectors = chosen_taps(model, params)
    n = len(data)
    # Per-image results go into arrays sized for every image up front: no allocation that
    # lives past its batch, so memory stays flat however many images stream through.
    per_image: dict[str, dict[str, np.ndarray]] = {}
    dense: dict[str, np.ndarray] = {}
    channels: dict[str, int] = {}
    start = 0
    # Zoo models have no in-place operations, so their block outputs need no defensive copy.
    safe = type(net).__module__.startswith("robustlens.models.") and net.arch != "adapter"
    with torch.no_grad(), capture_activations(net, taps, clone=not safe) as captured:
        for x, _ in data.batches(params.batch_size, device=ctx.device):
            net(x)
            stop = start + x.shape[0]
            for tap in taps:
                acts = captured[tap]
                if tap not in dense:
                    channels[tap] = acts.shape[1]
                    dense[tap] = np.zeros((n, acts.shape[1]), dtype=bool)
                    names = PER_IMAGE if params.count_clusters else PER_IMAGE[:-1]
                    per_image[tap] = {m: np.zeros(n) for m in names}
                active, is_dense = map_states(acts, params.tau_act, params.tau_dens)
                r, s, c = redundancy(acts, active, params.tau_sim, clusters=params.count_clusters)
                dense[tap][start:stop] = is_dense.cpu().numpy()
                values = per_image[tap]
                values["dense_maps"][start:stop] = is_dense.sum(dim=1).cpu().numpy()
                values["active_maps"][start:stop] = active.sum(dim=1).cpu().numpy()
                values["redundant_maps"][start:stop] = r.cpu().numpy()
                values["mean_similarity"][start:stop] = s.cpu().numpy()
                if c is not None:
                    values["clusters"][start:stop] = c.cpu().numpy()
            start = stop
    rows = []
    freq_rows = []
    arrays: dict[str, np.ndarray] = {}
    for depth, tap in enumerate(taps, start=1):
        d = dense[tap]  # [N, C] densely active per image and map
        arrays[per_tap(DENSE, tap)] = d
        for metric, values in per_image[tap].items():
            arrays[per_tap(metric, tap)] = values
        base = {"model": model.name, "layer": tap, "depth": depth, "channels": channels[tap]}
        n_always = int(d.all(axis=0).sum())
        rows.append(
            {**base, "setting": "", "metric": "always_dense_maps", "value": n_always, "n": len(d)}
        )
        for metric, values in per_image[tap].items():
            ok = values[~np.isnan(values)]
            mean = float(ok.mean()) if ok.size else float("nan")
            half = 1.96 * float(ok.std(ddof=1)) / np.sqrt(ok.size) if ok.size > 1 else float("nan")
            rows.append(
                {
                    **base,
                    "setting": "",
                    "metric": metric,
                    "value": mean,
                    "n": int(ok.size),
                    "ci_low": mean - half,
                    "ci_high": mean + half,
                }
            )
        for i, f in enumerate(d.mean(axis=0)):
            freq_rows.append(
                {**base, "setting": f"map {i}", "metric": "dense_frequency", "value": float(f)}
            )
    arrays[TAPS] = np.array(taps)
    notes = [f"{model.name}: feature maps of {', '.join(taps)}"]
    if vectors:
        notes.append(
            f"{model.name}: left out {', '.join(vectors)}: they output vectors (fully "
            "connected units), not feature maps"
        )
    if all(np.isnan(arrays[per_tap(MEAN_SIMILARITY, t)]).all() for t in taps):
        notes.append(f"{model.name}: fewer than two active maps in every block; S̄ undefined")
    return LensResult(
        tables={"activations": tidy(rows), "activation_frequency": tidy(freq_rows)},
        arrays=arrays,
        notes=notes,
    )


def plot(tables, models: list[StudyModel], params: ActivationParams, arrays=None) -> dict:
    frame = tables["activations"]
    colors = palette(models)
    figures = {}
    panels = [
        ("always_dense_maps", "N_k: maps densely active for every image (Fig. 1)", "N_k (maps)"),
        ("redundant_maps", "C_k^R: redundant maps per image (Fig. 2)", "C_k^R (maps per image)"),
        (
            "mean_similarity",
            "S̄_k: mean cosine similarity of active maps (Fig. 3)",
            "S̄_k (cosine similarity, −1 to 1)",
        ),
    ]
    for metric, title, ylabel in panels:
        why = _degenerate(frame[frame.metric == metric], metric, params)
        if why:
            figures[title] = why
            continue
        fig, ax = new_figure()
        for m in models:
            rows = frame[(frame.model == m.name) & (frame.metric == metric)].sort_values("depth")
            if rows.empty:
                continue
            ax.plot(rows.depth, rows.value, marker="o", color=colors[m.name], label=m.label())
            if "ci_low" in rows and rows.ci_low.notna().any():
                ax.fill_between(
                    rows.depth, rows.ci_low, rows.ci_high, color=colors[m.name], alpha=0.15
                )
        ax.set_xlabel("block k (depth)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
        figures[title] = fig
    return figures


def _degenerate(rows: pd.DataFrame, metric: str, params: ActivationParams) -> str:
    """Why ``metric`` is not drawn when it is the same for every model and block (N_k: 0
    everywhere, no map densely active for every image), or undefined; '' when it varies."""
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return f"{metric.replace('_', ' ')} is undefined for every model and block."
    if metric != "always_dense_maps" or not np.all(finite == 0):
        return ""
    return (
        "N_k is 0 in every block for every model: no feature map is densely active (at least "
        f"τ_dens = {params.tau_dens:g} of its activations above τ_act = {params.tau_act:g}) "
        "for every evaluation image, so the measure does not tell the models apart here and "
        "its flat lines at zero are not drawn. A lower τ_dens (parameter tau_dens) counts "
        "maps densely active for most, not all, images."
    )


SPEC = register_lens(
    LensSpec(
        name="activations",
        title="Densely active and redundant feature maps",
        paper=CARLETTI.label,
        section="§3.1–3.2, §4.1–4.2, Fig. 1–3",
        description=(
            "Per block: N_k, the number of feature maps densely active (≥ τ_dens of activations "
            "above τ_act) for every evaluation image; per image, the number of densely active "
            "maps, the redundant maps C_k^R (active maps whose cosine similarity with another "
            "exceeds τ_sim) and the mean off-diagonal cosine similarity S̄_k."
        ),
        params=ActivationParams,
        compute=compute,
        plot=plot,
        applies=applies,
        anatomy=(
            "Reads the model's taps that output feature maps [C, H, W] (convolutional blocks); "
            "fully connected taps, whose outputs are vectors, are left out and named in the "
            "report's notes. Not applicable to a model without such taps (an MLP)."
        ),
    )
)
