"""Natural and adversarial training: recipes, schedules, the loop, and sweeps over ε."""

from robustlens.train.loop import TrainResult, train_model
from robustlens.train.recipe import Recipe
from robustlens.train.run import train, train_sweep

__all__ = ["Recipe", "TrainResult", "train", "train_model", "train_sweep"]
