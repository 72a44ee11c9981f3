"""Progress bars for long work, shown only when asked for (the CLI asks; the library is quiet)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(
    enabled: bool, *, total: int | None, description: str
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; draws a rich progress bar on stderr when ``enabled``."""
    if not enabled:
        yield lambda k: None
        return
    # heavy: rich's progress machinery loads only when a bar is drawn (the library stays quiet)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k: bar.advance(task, k)
