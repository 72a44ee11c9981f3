"""Data sets: a registry of their facts, readers for their file formats, and a loader.

>>> from robustlens.data import load_dataset
>>> test = load_dataset("fashion-mnist", "test", n=1000)  # doctest: +SKIP

Files are looked for in an explicit ``root``, ``$ROBUSTLENS_DATA/<name>``, the cache
``$XDG_CACHE_HOME/robustlens/<name>`` and ``/usr/share/datasets/<name>``, in that order, and
downloaded into the cache (checksum-verified) when absent.
"""

from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.data.loading import (
    dataset_info,
    fetch_dataset,
    list_datasets,
    load_dataset,
    locate_dataset,
)

__all__ = [
    "DatasetInfo",
    "ImageSet",
    "dataset_info",
    "fetch_dataset",
    "list_datasets",
    "load_dataset",
    "locate_dataset",
]
