"""Errors a user can cause and fix.

Every such error derives from :class:`RobustlensError`. Its message says what is wrong and how
to fix it; the CLI prints it on one line without a traceback and exits non-zero.
"""

from __future__ import annotations


class RobustlensError(Exception):
    """A problem the user can fix: ``problem`` says what is wrong, ``fix`` how to repair it."""

    def __init__(self, problem: str, *, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}. {fix}")


class ConfigError(RobustlensError):
    """An unknown name, a wrong type or an impossible value in arguments or a study file."""


class DataError(RobustlensError):
    """Data that is missing, corrupt, truncated or of the wrong shape."""


class StoreError(RobustlensError):
    """A study folder or its results database that cannot be used: in use by another run,
    corrupt, locked, read-only, or on a full disk."""

    exit_code = 1
    """The inputs were fine; the run's own folder or disk failed it (see ``cli.exit_code``)."""


class CheckpointError(RobustlensError):
    """A checkpoint that is missing, corrupt, unsafe to load or does not fit its architecture."""


class NumericalError(RobustlensError):
    """A model or computation that produced NaN or infinite values."""
