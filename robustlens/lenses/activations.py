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

from dataclasses import dataclass

import numpy as np
import torch

from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import (
    LensContext,
    LensResult,
    LensSpec,
    StudyModel,
    palette,
    register_lens,
    tidy,
)
from robustlens.models.anatomy import capture_activations


@dataclass(frozen=True)
class ActivationParams:
    """τ_act = 0 and τ_dens = τ_sim = 0.95 as in §4.1–4.2; ``taps`` empty = every block."""

    tau_act: float = 0.0
    tau_dens: float = 0.95
    tau_sim: float = 0.95
    batch_size: int = 250
    taps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau_dens <= 1.0:
            raise ConfigError(f"tau_dens must lie in [0, 1], got {self.tau_dens}")
        if not -1.0 <= self.tau_sim <= 1.0:
            raise ConfigError(f"tau_sim is a cosine similarity in [-1, 1], got {self.tau_sim}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")


def map_states(
    acts: torch.Tensor, tau_act: float, tau_dens: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(active, densely active) indicators [B, C] of a batch of block outputs [B, C, H, W]."""
    above = (acts.flatten(2) > tau_act).float().mean(dim=2)
    return above > 0, above >= tau_dens


def cluster_count(adjacency: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """Connected components among ``nodes`` [B, C] of graphs ``adjacency`` [B, C, C].

    Min-label propagation: every node takes the smallest label among itself and its
    neighbours until nothing changes; components = distinct labels among the nodes.
    """
    b, c, _ = adjacency.shape
    big = c + 1
    labels = torch.where(nodes, torch.arange(c, device=adjacency.device).expand(b, c), big)
    for _ in range(c):
        neighbour = torch.where(adjacency, labels.unsqueeze(1).expand(b, c, c), big).amin(dim=2)
        new = torch.minimum(labels, neighbour)
        new = torch.where(nodes, new, big)
        if torch.equal(new, labels):
            break
        labels = new
    counts = torch.zeros(b, dtype=torch.long, device=adjacency.device)
    for i in range(b):
        counts[i] = torch.unique(labels[i][nodes[i]]).numel()
    return counts


def redundancy(
    acts: torch.Tensor, active: torch.Tensor, tau_sim: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: redundant active maps C^R, mean off-diagonal cosine similarity S̄ (NaN
    with fewer than two active maps) and the number of clusters (Eq. 2, Def. 3.4)."""
    flat = acts.flatten(2).float()
    unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(1e-12)
    sim = unit @ unit.transpose(1, 2)  # [B, C, C]
    pair = active.unsqueeze(2) & active.unsqueeze(1)
    eye = torch.eye(sim.shape[1], dtype=torch.bool, device=sim.device).unsqueeze(0)
    off = pair & ~eye
    linked = off & (sim > tau_sim)
    redundant = linked.any(dim=2).sum(dim=1)  # a node with a link sits in a cluster of > 1
    pairs = off.sum(dim=(1, 2))
    mean_sim = torch.where(pairs > 0, (sim * off).sum(dim=(1, 2)) / pairs.clamp_min(1), torch.nan)
    clusters = cluster_count(linked, active)
    return redundant, mean_sim, clusters


def compute(
    model: StudyModel, data: ImageSet, params: ActivationParams, ctx: LensContext
) -> LensResult:
    net = model.model
    taps = list(params.taps or net.taps)
    unknown = [t for t in taps if t not in dict(net.named_modules())]
    if unknown:
        raise ConfigError(
            f"model {model.name} has no tap {unknown[0]!r}", fix=f"its taps: {', '.join(net.taps)}"
        )
    dense: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
    active_n: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
    red: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
    sim: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
    clus: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
    channels: dict[str, int] = {}
    with torch.no_grad(), capture_activations(net, taps) as captured:
        for x, _ in data.batches(params.batch_size, device=ctx.device):
            net(x)
            for tap in taps:
                acts = captured[tap]
                channels[tap] = acts.shape[1]
                active, is_dense = map_states(acts, params.tau_act, params.tau_dens)
                r, s, c = redundancy(acts, active, params.tau_sim)
                dense[tap].append(is_dense.cpu())
                active_n[tap].append(active.sum(dim=1).cpu())
                red[tap].append(r.cpu())
                sim[tap].append(s.cpu())
                clus[tap].append(c.cpu())
    rows = []
    freq_rows = []
    arrays: dict[str, np.ndarray] = {}
    for depth, tap in enumerate(taps, start=1):
        d = torch.cat(dense[tap]).numpy()  # [N, C] densely active per image and map
        per_image = {
            "dense_maps": d.sum(axis=1).astype(np.float64),
            "active_maps": torch.cat(active_n[tap]).numpy().astype(np.float64),
            "redundant_maps": torch.cat(red[tap]).numpy().astype(np.float64),
            "mean_similarity": torch.cat(sim[tap]).numpy().astype(np.float64),
            "clusters": torch.cat(clus[tap]).numpy().astype(np.float64),
        }
        arrays[f"dense/{tap}"] = d
        for metric, values in per_image.items():
            arrays[f"{metric}/{tap}"] = values
        base = {"model": model.name, "layer": tap, "depth": depth, "channels": channels[tap]}
        n_always = int(d.all(axis=0).sum())
        rows.append(
            {**base, "setting": "", "metric": "always_dense_maps", "value": n_always, "n": len(d)}
        )
        for metric, values in per_image.items():
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
    arrays["taps"] = np.array(taps)
    notes = []
    if all(np.isnan(arrays[f"mean_similarity/{t}"]).all() for t in taps):
        notes.append(f"{model.name}: fewer than two active maps in every block; S̄ undefined")
    return LensResult(
        tables={"activations": tidy(rows), "activation_frequency": tidy(freq_rows)},
        arrays=arrays,
        notes=notes,
    )


def plot(tables, models: list[StudyModel], params: ActivationParams) -> dict:
    from robustlens.study.figures import new_figure

    frame = tables["activations"]
    colors = palette(models)
    figures = {}
    panels = [
        ("always_dense_maps", "N_k: maps densely active for every image (Fig. 1)"),
        ("redundant_maps", "C_k^R: redundant maps per image (Fig. 2)"),
        ("mean_similarity", "S̄_k: mean cosine similarity of active maps (Fig. 3)"),
    ]
    for metric, title in panels:
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
        ax.set_xlabel("block k")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(title)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
        figures[title] = fig
    return figures


SPEC = register_lens(
    LensSpec(
        name="activations",
        title="Densely active and redundant feature maps",
        paper="000_623867b7a7f4c6d9 (Carletti et al.)",
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
    )
)
