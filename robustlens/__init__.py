"""robustlens: natural and adversarially-trained classifiers, attacks, and lenses into them."""

__version__ = "0.1.0.dev0"

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
