"""Constructed data sets (Springer et al. 2021; Ilyas et al. 2019): robustified sets by
representation inversion, saved with the checks that say how well the construction worked."""

from robustlens.constructed.build import build_in_chunks, build_robustified
from robustlens.constructed.inversion import InversionResult, default_schedule, robustify
from robustlens.constructed.sets import ConstructedSet, load_set, save_set

__all__ = [
    "ConstructedSet",
    "InversionResult",
    "build_in_chunks",
    "build_robustified",
    "default_schedule",
    "load_set",
    "robustify",
    "save_set",
]
