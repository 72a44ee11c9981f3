"""Studies: a study file, its plan of lens units, their execution into a results store, and a
read-only view of those results. The whole pipeline, report included, is ``robustlens.runner``."""

from robustlens.study.spec import StudySpec, load_spec

__all__ = ["StudySpec", "load_spec"]
