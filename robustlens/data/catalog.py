"""The registered data sets, one :class:`DatasetEntry` each in :data:`DATASETS`.

Each entry gives the data set's :class:`DatasetInfo`, the files per split, the download URLs
with checksums, the expected image counts, and the reader for its format (the subclasses
below). Finding folders, downloading and building image sets is
:mod:`robustlens.data.loading`'s job.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from robustlens.data import formats, sources
from robustlens.data.entry import DatasetEntry, RemoteFile
from robustlens.data.imagefolder import ImageFolderDataset
from robustlens.data.info import DatasetInfo
from robustlens.data.sources import FileGroup
from robustlens.registry import Registry

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- IDX (MNIST)


@dataclass(frozen=True)
class IdxDataset(DatasetEntry):
    """MNIST-style data: per split an images file and a labels file in IDX format."""

    def read(
        self, folder: Path, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        images_group, labels_group = self.files[split]
        assert self.info is not None
        return formats.read_idx_pair(
            self.path(folder, images_group),
            self.path(folder, labels_group),
            image_shape=self.info.shape[1:],
            count=self.counts.get(split),
            num_classes=self.info.num_classes,
        )


def _idx_groups(prefix: str) -> tuple[FileGroup, FileGroup]:
    images, labels = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    return (f"{images}.gz", images), (f"{labels}.gz", labels)


def _idx_downloads(base_url: str, sha256: Mapping[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, f"{base_url}/{name}", sha256=digest) for name, digest in sha256.items()
    )


# ---------------------------------------------------------------------------- CIFAR pickles


@dataclass(frozen=True)
class CifarDataset(DatasetEntry):
    """CIFAR python version: pickled batches, one or more per split, and a meta file."""

    label_key: str = "labels"
    meta: FileGroup = ()
    meta_key: str = "label_names"

    def required(self) -> tuple[FileGroup, ...]:
        return (*super().required(), self.meta)

    def describe(self, folder: Path | None, options: Mapping[str, Any]) -> DatasetInfo:
        """Class names come from the meta file when the files are there, else the built-in list."""
        assert self.info is not None
        if folder is None:
            return self.info
        meta = sources.find_file(folder, self.meta)
        if meta is None:
            return self.info
        names = tuple(formats.read_cifar_names(meta, self.meta_key))
        if len(names) != self.info.num_classes:
            raise formats.corrupt(
                meta, f"{len(names)} class names, expected {self.info.num_classes}"
            )
        if names == self.info.class_names:
            return self.info
        logger.warning("class names in %s differ from the built-in ones; using the file's", meta)
        return replace(self.info, class_names=names)

    def read(
        self, folder: Path, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self.info is not None
        parts = [
            formats.read_cifar_batch(
                self.path(folder, g), label_key=self.label_key, num_classes=self.info.num_classes
            )
            for g in self.files[split]
        ]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        self.check_count(split, len(labels), self.path(folder, self.files[split][0]).parent)
        return images, labels


def _cifar_group(subdir: str, name: str) -> FileGroup:
    return (f"{subdir}/{name}", name)


# ------------------------------------------------------------------------------ SVHN (.mat)


@dataclass(frozen=True)
class SvhnDataset(DatasetEntry):
    """SVHN cropped digits: one MATLAB file per split."""

    def read(
        self, folder: Path, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        path = self.path(folder, self.files[split][0])
        images, labels = formats.read_svhn_mat(path)
        self.check_count(split, len(labels), path)
        return images, labels


# -------------------------------------------------------------------- scikit-learn digits


def digits_test_mask(target: np.ndarray) -> np.ndarray:
    """The fixed test split of the digits: every 5th image of each class, in file order.

    scikit-learn's digits have no official split; this one is stratified, 80/20 up to
    rounding (1442 train / 355 test) and uses no random numbers, so it cannot drift with
    library versions.
    """
    test = np.zeros(target.shape[0], dtype=bool)
    for c in np.unique(target):
        test[np.flatnonzero(target == c)[4::5]] = True
    return test


@dataclass(frozen=True)
class DigitsDataset(DatasetEntry):
    """The 8×8 handwritten digits bundled with scikit-learn (no download)."""

    def search_dirs(self, root: Path | str | None) -> list[Path]:
        spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
        if spec is None or spec.origin is None:
            return []
        return [Path(spec.origin).parent / "datasets" / "data"]

    def is_complete(self, folder: Path) -> bool:
        return (folder / "digits.csv.gz").is_file()

    def expected_files(self) -> list[str]:
        return ["digits.csv.gz (part of scikit-learn; reinstall scikit-learn)"]

    def read(
        self, folder: Path, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        # heavy: scikit-learn loads only when its bundled digits are read
        from sklearn.datasets import load_digits

        try:
            bunch = load_digits()
        except Exception as err:  # a damaged scikit-learn install
            raise formats.corrupt(
                folder / "digits.csv.gz", f"scikit-learn cannot read it ({err})"
            ) from err
        images = np.asarray(bunch.images, dtype=np.float64)
        target = np.asarray(bunch.target, dtype=np.int64)
        self.check_count("all", len(target), folder / "digits.csv.gz")
        keep = digits_test_mask(target) == (split == "test")
        pixels = (images[keep] / 16.0).astype(np.float32)[:, None, :, :]
        return pixels, target[keep]


# ------------------------------------------------------------------------------- registry

DATASETS: Registry[DatasetEntry] = Registry("data set")

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
    crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
    keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
    mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
    porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
    snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television
    tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()  # noqa: SIM905
)
assert len(CIFAR100_CLASSES) == 100

_IDX_FILES = {"train": _idx_groups("train"), "test": _idx_groups("t10k")}
_IDX_COUNTS = {"train": 60000, "test": 10000}
_IDX_NOTE = "each may also be uncompressed, without .gz"

DATASETS.add(
    "fashion-mnist",
    IdxDataset(
        name="fashion-mnist",
        info=DatasetInfo(
            name="fashion-mnist",
            num_classes=10,
            class_names=FASHION_MNIST_CLASSES,
            shape=(1, 28, 28),
            mean=(0.2860,),
            std=(0.3530,),
            splits=("train", "test"),
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            citation="Xiao, Rasul and Vollgraf. Fashion-MNIST: a Novel Image Dataset for "
            "Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017.",
        ),
        files=_IDX_FILES,
        files_note=_IDX_NOTE,
        counts=_IDX_COUNTS,
        downloads=_idx_downloads(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
            {
                "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed27"
                "1626dd12800ba2636569512369268a84",
                "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc"
                "97de4d1bfaf8ba1a3aa29af54cc90845",
                "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a4"
                "84bd415d4595297633bb08f03db6a073",
                "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3c"
                "d6d1c2608764d35dfb1850b086bf8dd5",
            },
        ),
    ),
)

DATASETS.add(
    "mnist",
    IdxDataset(
        name="mnist",
        info=DatasetInfo(
            name="mnist",
            num_classes=10,
            class_names=DIGIT_CLASSES,
            shape=(1, 28, 28),
            mean=(0.1307,),
            std=(0.3081,),
            splits=("train", "test"),
            homepage="http://yann.lecun.com/exdb/mnist/",
            citation="LeCun, Bottou, Bengio and Haffner. Gradient-based learning applied to "
            "document recognition. Proceedings of the IEEE 86(11), 1998.",
        ),
        files=_IDX_FILES,
        files_note=_IDX_NOTE,
        counts=_IDX_COUNTS,
        downloads=_idx_downloads(
            "https://ossci-datasets.s3.amazonaws.com/mnist",
            {
                "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea37026"
                "5605f56be210a4024d2ca8f203523609",
                "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cc"
                "a23d567ec52cac8be1a0730e8010255c",
                "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e3"
                "3eeafee792b84584aec276f5a2dbc4e6",
                "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd"
                "2371eca3ffa0defaefb259924204aec6",
            },
        ),
    ),
)

_CIFAR_CITATION = (
    "Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Technical report, "
    "University of Toronto, 2009."
)
_CIFAR_NOTE = "or the same files directly in the folder"
_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR100_DIR = "cifar-100-python"

DATASETS.add(
    "cifar10",
    CifarDataset(
        name="cifar10",
        info=DatasetInfo(
            name="cifar10",
            num_classes=10,
            class_names=CIFAR10_CLASSES,
            shape=(3, 32, 32),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            splits=("train", "test"),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            citation=_CIFAR_CITATION,
        ),
        files={
            "train": tuple(_cifar_group(_CIFAR10_DIR, f"data_batch_{i}") for i in range(1, 6)),
            "test": (_cifar_group(_CIFAR10_DIR, "test_batch"),),
        },
        counts={"train": 50000, "test": 10000},
        downloads=(
            RemoteFile(
                "cifar-10-python.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                extract=True,
            ),
        ),
        files_note=_CIFAR_NOTE,
        label_key="labels",
        meta=_cifar_group(_CIFAR10_DIR, "batches.meta"),
        meta_key="label_names",
    ),
)

DATASETS.add(
    "cifar100",
    CifarDataset(
        name="cifar100",
        info=DatasetInfo(
            name="cifar100",
            num_classes=100,
            class_names=CIFAR100_CLASSES,
            shape=(3, 32, 32),
            mean=(0.5071, 0.4865, 0.4409),
            std=(0.2673, 0.2564, 0.2762),
            splits=("train", "test"),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            citation=_CIFAR_CITATION,
        ),
        files={
            "train": (_cifar_group(_CIFAR100_DIR, "train"),),
            "test": (_cifar_group(_CIFAR100_DIR, "test"),),
        },
        counts={"train": 50000, "test": 10000},
        downloads=(
            RemoteFile(
                "cifar-100-python.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
                extract=True,
            ),
        ),
        files_note=_CIFAR_NOTE,
        label_key="fine_labels",
        meta=_cifar_group(_CIFAR100_DIR, "meta"),
        meta_key="fine_label_names",
    ),
)

DATASETS.add(
    "svhn",
    SvhnDataset(
        name="svhn",
        info=DatasetInfo(
            name="svhn",
            num_classes=10,
            class_names=DIGIT_CLASSES,
            shape=(3, 32, 32),
            mean=(0.4377, 0.4438, 0.4728),
            std=(0.1980, 0.2010, 0.1970),
            splits=("train", "test"),
            homepage="http://ufldl.stanford.edu/housenumbers/",
            citation="Netzer, Wang, Coates, Bissacco, Wu and Ng. Reading Digits in Natural "
            "Images with Unsupervised Feature Learning. NIPS Workshop on Deep Learning and "
            "Unsupervised Feature Learning, 2011.",
        ),
        files={"train": (("train_32x32.mat",),), "test": (("test_32x32.mat",),)},
        counts={"train": 73257, "test": 26032},
        # The SVHN site publishes no sha256; these are the md5 sums that torchvision and
        # TensorFlow Datasets verify the official files against.
        downloads=(
            RemoteFile(
                "train_32x32.mat",
                "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                md5="e26dedcc434d2e4c54c9b2d4a06d8373",
            ),
            RemoteFile(
                "test_32x32.mat",
                "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                md5="eb5a983be6a315427106f1b164d9cef3",
            ),
        ),
    ),
)

DATASETS.add(
    "digits",
    DigitsDataset(
        name="digits",
        info=DatasetInfo(
            name="digits",
            num_classes=10,
            class_names=DIGIT_CLASSES,
            shape=(1, 8, 8),
            # Pixel statistics of the training split (digits_test_mask) in [0, 1] units,
            # computed from scikit-learn 1.9's load_digits(): mean 0.305136, std 0.376158.
            mean=(0.3051,),
            std=(0.3762,),
            splits=("train", "test"),
            homepage="https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
            citation="Alpaydin and Kaynak. Optical Recognition of Handwritten Digits. UCI "
            "Machine Learning Repository, 1998.",
        ),
        counts={"all": 1797},
    ),
)

# Any class-per-folder tree; its facts come from the folder (see imagefolder.py).
DATASETS.add("imagefolder", ImageFolderDataset(name="imagefolder", info=None))


def get_entry(name: str) -> DatasetEntry:
    """The registered entry for ``name`` (ConfigError with suggestions when unknown)."""
    return DATASETS.get(name)
