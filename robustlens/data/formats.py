"""Readers for the on-disk formats of the standard image data sets.

Every reader is pure: it takes a path, returns numpy arrays, and raises :class:`DataError`
naming the file on anything corrupt, truncated or of the wrong layout. Nothing here searches,
downloads or knows which data set a file belongs to.

Images come back as ``uint8`` arrays in NCHW order (N, channels, height, width) and labels as
``int64`` arrays of shape (N,).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import pickle
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from robustlens.errors import DataError
from robustlens.runtime import check_memory

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

CORRUPT_FIX = (
    "The file is corrupt, truncated or not the file it should be: delete it and fetch the data "
    "set again (robustlens.data.fetch_dataset), or reinstall the package that installed it"
)

GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes (http://yann.lecun.com/exdb/mnist/): data are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def corrupt(path: Path | str, what: str) -> DataError:
    """The error for a data file that cannot be what it claims to be."""
    return DataError(f"data file {path} is unusable: {what}", fix=CORRUPT_FIX)


# --------------------------------------------------------------------------------------- bytes


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Turn a missing or unreadable data file into one :class:`DataError` naming it."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(
            f"data file {path} does not exist",
            fix="Fetch the data set again (robustlens.data.fetch_dataset)",
        ) from None
    except OSError as err:
        raise DataError(f"cannot read data file {path}: {err}", fix=CORRUPT_FIX) from err


def read_bytes(path: Path | str) -> bytes:
    """The contents of ``path``, decompressed when it is gzip data (by content, not by name).

    A gzip file that is truncated, fails its CRC check or is not gzip data past its header is
    a :class:`DataError` naming the file.
    """
    path = Path(path)
    with _read_errors(path):
        raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as err:
        raise corrupt(path, "the gzip stream is truncated (it ends before its end marker)") from err
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise corrupt(path, f"bad gzip data ({err})") from err


# ----------------------------------------------------------------------------------------- IDX


def parse_idx(data: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """Decode one IDX array (the MNIST file format) from uncompressed bytes.

    The header is two zero bytes, a type code, the number of dimensions and then one big-endian
    uint32 per dimension; the payload must have exactly the length the header announces.
    """
    if len(data) < 4:
        raise corrupt(path, f"only {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise corrupt(path, f"bad IDX magic number 0x{data[:4].hex()}")
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    if ndim < 1:
        raise corrupt(path, "IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise corrupt(path, f"IDX header truncated ({len(data)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise corrupt(
            path,
            f"IDX payload {kind}: header says shape {dims} ({expected} bytes in all), "
            f"file has {len(data)} bytes",
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array if dtype.byteorder in "=|" else array.astype(dtype.newbyteorder("="))


GZIP_MAX_RATIO = 1100
"""Deflate cannot compress better than about 1032:1, so a gzip file of ``n`` bytes never
decompresses to more than ``GZIP_MAX_RATIO * n`` bytes."""


class _Gunzip:
    """A gzip file's decompressed bytes, read by :meth:`read` with a bound on each call.

    One ``zlib`` call per read (as fast as ``gzip.decompress``), never more output than asked
    for; the trailer's CRC and length are checked when the end of a member is reached.
    """

    def __init__(self, raw: bytes) -> None:
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._tail = raw

    def read(self, n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left > 0:
            if self._zlib.eof:
                rest = self._zlib.unused_data
                if rest.startswith(GZIP_MAGIC):  # another member follows
                    self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    self._tail = rest
                elif rest.strip(b"\0"):
                    raise zlib.error("data after the end of the gzip stream is not gzip data")
                else:
                    break
            before = len(self._tail)
            chunk = self._zlib.decompress(self._tail, left)
            self._tail = self._zlib.unconsumed_tail
            if chunk:
                parts.append(chunk)
                left -= len(chunk)
            elif not self._zlib.eof and len(self._tail) == before:
                raise EOFError("the gzip stream ends before its end marker")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self._tail = b""

    def __enter__(self) -> _Gunzip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_data(path: Path) -> tuple[BinaryIO | _Gunzip, bool, int]:
    """``path`` opened for reading (decompressing gzip data), whether it is gzip, and its size."""
    with _read_errors(path):
        size = path.stat().st_size
        handle = path.open("rb")
    compressed = handle.read(2) == GZIP_MAGIC
    handle.seek(0)
    if compressed:
        with handle:
            return _Gunzip(handle.read()), True, size
    return handle, False, size


def _read_exactly(stream: BinaryIO | _Gunzip, n: int, path: Path) -> bytes:
    """At most ``n`` bytes from ``stream`` (fewer only at its end); gzip errors name ``path``."""
    try:
        return stream.read(n)
    except EOFError as err:
        raise corrupt(path, "the gzip stream is truncated (it ends before its end marker)") from err
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise corrupt(path, f"bad gzip data ({err})") from err


def _idx_header(stream: BinaryIO | _Gunzip, path: Path) -> tuple[bytes, np.dtype, tuple[int, ...]]:
    """Read and check an IDX header: its bytes, the element dtype and the dimensions."""
    head = _read_exactly(stream, 4, path)
    if len(head) < 4:
        raise corrupt(path, f"only {len(head)} bytes, too short for an IDX header")
    if head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise corrupt(path, f"bad IDX magic number 0x{head.hex()}")
    ndim = head[3]
    if ndim < 1:
        raise corrupt(path, "IDX header declares 0 dimensions")
    rest = _read_exactly(stream, 4 * ndim, path)
    if len(rest) < 4 * ndim:
        raise corrupt(path, f"IDX header truncated ({4 + len(rest)} of {4 + 4 * ndim} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(rest, dtype=">u4"))
    return head + rest, _IDX_DTYPES[head[2]], dims


def _check_dims(
    dims: tuple[int, ...], shape: Sequence[int | None] | None, path: Path, what: str
) -> None:
    if shape is None:
        return
    same_rest = len(dims) == len(shape) and all(
        s is None or d == s for d, s in zip(dims[1:], shape[1:], strict=True)
    )
    if same_rest and shape[0] is not None and dims[0] != shape[0]:
        raise corrupt(path, f"expected {shape[0]} {what}, found {dims[0]} (IDX header)")
    if len(dims) != len(shape) or any(
        s is not None and d != s for d, s in zip(dims, shape, strict=False)
    ):
        wanted = "(" + ", ".join("N" if s is None else str(s) for s in shape)
        wanted += ",)" if len(shape) == 1 else ")"
        raise corrupt(path, f"IDX header says shape {dims}, expected {wanted}")


def read_idx(
    path: Path | str,
    *,
    shape: Sequence[int | None] | None = None,
    allow_large: bool = False,
    what: str = "items",
) -> np.ndarray:
    """Read one IDX file, gzip-compressed (detected by content) or raw (read-only array).

    The header is checked before any payload is read: against ``shape`` when given (``None``
    for a free dimension), against the file's size (raw files) or the most a gzip file of that
    size can hold, and against the memory available (:func:`robustlens.runtime.check_memory`;
    ``allow_large`` skips that). The payload is then read with a bound, so a file whose header
    promises more, or less, than its bytes is a :class:`DataError` before memory is spent.
    ``what`` names the items along the first dimension in messages (e.g. ``"images"``).
    """
    path = Path(path)
    stream, compressed, size = _open_data(path)
    with stream:
        header, dtype, dims = _idx_header(stream, path)
        _check_dims(dims, shape, path, what)
        payload = int(np.prod(dims, dtype=object)) * dtype.itemsize
        expected = len(header) + payload
        if not compressed and size != expected:
            kind = "truncated" if size < expected else "has trailing bytes"
            raise corrupt(
                path,
                f"IDX payload {kind}: header says shape {dims} ({expected} bytes in all), "
                f"file has {size} bytes",
            )
        if compressed and expected > GZIP_MAX_RATIO * size:
            raise corrupt(
                path,
                f"IDX payload truncated: header says shape {dims} ({expected} bytes in all), "
                f"more than a {size}-byte gzip file can hold",
            )
        check_memory(
            payload,
            f"IDX file {path} (shape {dims})",
            fix="check that it is the right file",
            error=DataError,
            allow=allow_large,
        )
        data = _read_exactly(stream, payload, path)
        if len(data) < payload:
            raise corrupt(
                path,
                f"IDX payload truncated: header says shape {dims} ({expected} bytes in all), "
                f"file has {len(header) + len(data)} bytes",
            )
        if compressed:
            extra = _read_exactly(stream, 1, path)
            if extra:
                raise corrupt(
                    path,
                    f"IDX payload has trailing bytes: header says shape {dims} "
                    f"({expected} bytes in all), the file holds more",
                )
            _read_exactly(stream, 1, path)  # reach the end marker: checks the CRC and length
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array if dtype.byteorder in "=|" else array.astype(dtype.newbyteorder("="))


def read_idx_pair(
    images_path: Path | str,
    labels_path: Path | str,
    *,
    image_shape: tuple[int, int] = (28, 28),
    count: int | None = None,
    num_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST-style pair of IDX files: images (N, 1, H, W) uint8 and labels (N,) int64.

    Checks the image dtype and size, that both files hold the same number of items (and
    ``count`` when given), and that every label is in ``0..num_classes-1``.
    """
    images = read_idx(images_path, shape=(count, *image_shape), what="images")
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != tuple(image_shape):
        raise corrupt(
            images_path,
            f"expected uint8 images of shape (N, {image_shape[0]}, {image_shape[1]}), "
            f"found {images.dtype} of shape {images.shape}",
        )
    labels = read_idx(labels_path, shape=(images.shape[0],), what="labels")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise corrupt(
            labels_path, f"expected a 1-D uint8 label array, found {labels.dtype} {labels.shape}"
        )
    if count is not None and images.shape[0] != count:
        raise corrupt(images_path, f"expected {count} images, found {images.shape[0]}")
    if labels.shape[0] != images.shape[0]:
        raise corrupt(
            labels_path,
            f"{labels.shape[0]} labels for the {images.shape[0]} images in {images_path}",
        )
    check_labels(labels, num_classes, labels_path)
    return images[:, None, :, :], labels.astype(np.int64)


def check_labels(labels: np.ndarray, num_classes: int, path: Path | str) -> None:
    """Raise a DataError naming ``path`` when a label is outside ``0..num_classes-1``."""
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise corrupt(
            path,
            f"labels range over {int(labels.min())}..{int(labels.max())}, "
            f"expected 0..{num_classes - 1}",
        )


# ---------------------------------------------------------------------------- CIFAR (pickles)


def _codecs_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` limited to what pickle protocol 2 uses to store ``bytes``."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in {
        "latin1",
        "latin-1",
        "iso-8859-1",
    }:
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin1 text")
    return text.encode("latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    # Pickles name numpy.core (numpy 1.x) or numpy._core (numpy 2); both map to the same
    # functions. _frombuffer is what protocol 5 uses for arrays.
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers and numpy arrays.

    ``find_class`` allows the handful of numpy globals an array needs and refuses every
    other global, so a pickle that would run code (``os.system``, ``eval``, ...) fails to
    load instead.
    """

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"data file {self._path} is unsafe: its pickle refers to {module}.{name}, "
                "which a data batch never needs; it was not loaded",
                fix="Delete the file and fetch the data set again from its official source",
            ) from None


def load_pickle_safely(path: Path | str) -> Any:
    """Load a pickle of plain Python containers and numpy arrays, refusing any other global.

    Loaded with ``encoding="bytes"``: Python 2 strings (the CIFAR keys) come back as bytes.
    """
    path = Path(path)
    data = read_bytes(path)
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except DataError:
        raise
    except RecursionError as err:
        raise corrupt(path, "pickle nested too deeply") from err
    except Exception as err:  # a hostile or broken pickle can raise nearly anything
        raise corrupt(path, f"not a readable pickle ({type(err).__name__}: {err})") from err


def _get(record: Any, key: str, path: Path) -> Any:
    if not isinstance(record, dict):
        raise corrupt(path, f"expected a pickled dict, found {type(record).__name__}")
    for k in (key.encode(), key):
        if k in record:
            return record[k]
    keys = ", ".join(sorted(k.decode() if isinstance(k, bytes) else str(k) for k in record))
    raise corrupt(path, f"no {key!r} entry (entries: {keys})")


def read_cifar_batch(
    path: Path | str, *, label_key: str = "labels", num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch: images (N, 3, 32, 32) uint8 and labels (N,) int64.

    ``label_key`` is ``"labels"`` for CIFAR-10 and ``"fine_labels"`` for CIFAR-100. The rows of
    ``data`` are 3072 bytes: the red, then green, then blue 32×32 planes.
    """
    path = Path(path)
    record = load_pickle_safely(path)
    data = _get(record, "data", path)
    labels = _get(record, label_key, path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise corrupt(path, "'data' is not a 2-D uint8 array")
    if data.shape[1] != 3 * 32 * 32:
        raise corrupt(path, f"'data' rows have {data.shape[1]} values, expected 3072")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise corrupt(path, f"labels are not integers ({err})") from err
    if labels.shape != (data.shape[0],):
        raise corrupt(path, f"{labels.size} labels for {data.shape[0]} images")
    check_labels(labels, num_classes, path)
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar_names(path: Path | str, key: str) -> list[str]:
    """The class names stored under ``key`` in a CIFAR meta file (``batches.meta``, ``meta``)."""
    path = Path(path)
    names = _get(load_pickle_safely(path), key, path)
    if not isinstance(names, list | tuple) or not all(isinstance(n, bytes | str) for n in names):
        raise corrupt(path, f"{key!r} is not a list of names")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


# --------------------------------------------------------------------------------- SVHN (.mat)


def read_svhn_mat(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``*_32x32.mat``: images (N, 3, 32, 32) uint8, labels (N,) int64 in 0..9.

    The file stores ``X`` as H×W×C×N and ``y`` in 1..10, where 10 stands for the digit 0.
    """
    # heavy: scipy.io loads only to read SVHN's .mat files
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path), variable_names=("X", "y"))
    except FileNotFoundError:
        raise DataError(
            f"data file {path} does not exist",
            fix="Fetch the data set again (robustlens.data.fetch_dataset)",
        ) from None
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5) files
        raise corrupt(path, f"unsupported MATLAB file version ({err})") from err
    except Exception as err:  # scipy raises many types for damaged files
        raise corrupt(path, f"not a readable MATLAB file ({type(err).__name__}: {err})") from err
    if "X" not in mat or "y" not in mat:
        raise corrupt(path, "the MATLAB file has no 'X' and 'y' variables")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise corrupt(path, f"'X' should be uint8 32×32×3×N, found {x.dtype} {x.shape}")
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != x.shape[3]:
        raise corrupt(path, f"{y.shape[0]} labels for {x.shape[3]} images")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise corrupt(path, f"labels range over {y.min()}..{y.max()}, expected 1..10")
    labels = y.astype(np.int64) % 10
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    return images, labels


# ------------------------------------------------------------------------------ image files

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


def is_image_file(path: Path) -> bool:
    """True for a non-hidden file whose extension is a known image extension."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def read_image(path: Path | str, size: tuple[int, int], *, grayscale: bool = False) -> np.ndarray:
    """Read one image as uint8 CHW, converted to RGB (or L) and resized to ``size`` = (h, w).

    Resizing uses PIL's bilinear filter, which is antialiased when shrinking (its support
    grows with the scale factor); the aspect ratio is not kept and nothing is cropped.
    """
    path = Path(path)
    h, w = size
    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert("L" if grayscale else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist", fix="Check the folder") from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... on bad files
        raise DataError(
            f"image file {path} cannot be read ({type(err).__name__}: {err})",
            fix="Delete or replace the file; it is corrupt or not an image",
        ) from err
    return array[None, :, :] if grayscale else array.transpose(2, 0, 1)


def stack_images(arrays: Sequence[np.ndarray], shape: tuple[int, int, int]) -> np.ndarray:
    """Stack CHW uint8 arrays into one NCHW array (an empty (0, C, H, W) array for none)."""
    if not arrays:
        return np.zeros((0, *shape), dtype=np.uint8)
    return np.stack(arrays)
