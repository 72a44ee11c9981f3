"""How the builder turns a lens's figures into report blocks: drawn (SVG/PNG with alt text) or,
for a degenerate measure, a note; and how either is kept in and read back from the store."""

from __future__ import annotations

import numpy as np

from robustlens.plotting import new_figure, read_image
from robustlens.report.builder import _figure_block, _pack_figure, _unpack_figure


def _figure(ys: list[list[float]]):
    fig, ax = new_figure(figsize=(3, 2))
    for i, y in enumerate(ys):
        ax.plot(range(len(y)), y, label=f"m{i}")
    ax.set_xlabel("block k")
    ax.set_ylabel("maps")
    ax.legend()
    return fig


def test_a_drawn_figure_carries_its_title_in_its_alt_text() -> None:
    block = _figure_block("Maps per block", _figure([[1, 2], [2, 4]]))
    assert not block.note
    image = read_image(block.png)
    assert image is not None and image.mime == "image/svg+xml"
    assert image.alt == "Maps per block. maps against block k for m0, m1."
    assert _unpack_figure(block.title, _pack_figure(block)) == block


def test_flat_figures_and_lens_notes_become_notes_that_survive_the_store() -> None:
    flat = _figure_block("N_k", _figure([[0, 0], [0, 0], [np.nan, 0]]))
    assert flat.png == b""
    assert (
        flat.note == "Every plotted value is 0 for every model: the lines would lie on one another."
    )
    said = _figure_block("S_k", "S_k is undefined: fewer than two active maps.")
    assert said.note == "S_k is undefined: fewer than two active maps." and said.png == b""
    for block in (flat, said):
        assert _unpack_figure(block.title, _pack_figure(block)) == block
