"""robustlens: natural and adversarially-trained classifiers, attacks, and lenses into them."""

from robustlens._version import __version__
from robustlens.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    NumericalError,
    RobustlensError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "NumericalError",
    "RobustlensError",
    "__version__",
]
