"""Constructed data sets (Springer et al. 2021; Ilyas et al. 2019): robustified sets by
representation inversion and zero- / negative-robust sets by targeted attacks, saved with the
checks that say how well the construction worked."""

from robustlens.constructed.build import build_in_chunks, build_robustified, build_targeted
from robustlens.constructed.inversion import InversionResult, default_schedule, robustify
from robustlens.constructed.request import TrainOn
from robustlens.constructed.sets import ConstructedSet, load_set, save_set, update_card
from robustlens.constructed.targeted import TargetedResult, leakage, targeted_examples

__all__ = [
    "ConstructedSet",
    "InversionResult",
    "TargetedResult",
    "TrainOn",
    "build_in_chunks",
    "build_robustified",
    "build_targeted",
    "default_schedule",
    "leakage",
    "load_set",
    "robustify",
    "save_set",
    "targeted_examples",
    "update_card",
]
