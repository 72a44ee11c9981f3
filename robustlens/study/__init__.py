"""Studies: a data set, models and lenses → a results store, claim verdicts and a report."""

from robustlens.study.runner import RunSummary, Study
from robustlens.study.spec import StudySpec, load_spec

__all__ = ["RunSummary", "Study", "StudySpec", "load_spec"]
