from __future__ import annotations

import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data.dataset import ImageDataset
from benchmark.data.digits import Digits
from benchmark.data.fashion_mnist import FashionMNIST
from benchmark.data.imagefolder import ImageFolder
from benchmark.data.npz import Npz
from benchmark.data.split import SplitError, balanced_indices, make_splits, stratified_fraction
from benchmark.data.torchvision_sets import SVHN, Cifar10
from benchmark.errors import DatasetError
from tests.conftest import tiny_dataset


def test_digits_embedded():
    train, test = Digits(Digits.Params()).load()
    assert train.x.dtype == torch.uint8 and train.x.shape[1:] == (1, 8, 8)
    assert len(train) + len(test) == 1797 and train.num_classes == 10
    assert train.x.max() == 255  # 0..16 scaled to 0..255


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 6)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{'.gz' if gz else ''}", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{'.gz' if gz else ''}", np.arange(n) % 10, gz)
    train, test = FashionMNIST(FashionMNIST.Params(root=str(tmp_path))).load()
    assert train.x.shape == (12, 1, 28, 28) and test.x.shape == (6, 1, 28, 28)
    assert train.classes[0] == "t-shirt" and train.y.tolist()[:3] == [0, 1, 2]


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST(FashionMNIST.Params(root=str(tmp_path / "nope"))).load()
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", np.zeros((5, 28, 28)), False)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(5), False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 5, 28, 28) + b"\x00" * 10)
    with pytest.raises(DatasetError, match="truncated"):
        FashionMNIST(FashionMNIST.Params(root=str(tmp_path))).load()


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_package():
    train, test = FashionMNIST(FashionMNIST.Params()).load()
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.y).tolist() == [6000] * 10


def test_npz_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, x_train=rng.integers(0, 256, (10, 4, 4, 3), dtype=np.uint8), y_train=np.arange(10) % 2,
             x_test=rng.integers(0, 256, (4, 4, 4, 3), dtype=np.uint8), y_test=np.arange(4) % 2, classes=np.array(["a", "b"]))
    train, _test = Npz(Npz.Params(path=str(p))).load()
    assert train.x.shape == (10, 3, 4, 4) and train.classes == ("a", "b")
    np.testing.assert_array_equal(train.x[3].permute(1, 2, 0).numpy(), np.load(p)["x_train"][3])
    with pytest.raises(DatasetError, match="does not exist"):
        Npz(Npz.Params(path=str(tmp_path / "missing.npz"))).load()
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"lacks arrays y_train \(it has x_train\); expected"):
        Npz(Npz.Params(path=str(tmp_path / "bad.npz"))).load()
    np.savez(tmp_path / "half.npz", x_train=np.zeros((2, 2, 2), np.uint8), y_train=np.arange(2), x_test=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(DatasetError, match="lacks arrays y_test"):
        Npz(Npz.Params(path=str(tmp_path / "half.npz"))).load()
    (tmp_path / "corrupt.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetError, match=r"is not an .npz file \(not a zip archive\)") as e:
        Npz(Npz.Params(path=str(tmp_path / "corrupt.npz"))).load()
    assert "pickle" not in str(e.value)  # numpy's advice to load pickles for any non-npz file is not passed on


def test_imagefolder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    train, test = ImageFolder(ImageFolder.Params(root=str(tmp_path), size=16)).load()
    assert train.x.shape == (6, 3, 16, 16) and test.x.shape == (4, 3, 16, 16)
    assert train.classes == ("cat", "dog") and train.y.tolist() == [0, 0, 0, 1, 1, 1]
    (tmp_path / "train" / "dog" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="cannot decode"):
        ImageFolder(ImageFolder.Params(root=str(tmp_path), size=16)).load()
    with pytest.raises(DatasetError, match="does not exist"):
        ImageFolder(ImageFolder.Params(root=str(tmp_path / "none"))).load()


def test_cifar10_reads_real_batch_files(tmp_path, monkeypatch):
    """torchvision's CIFAR-10 loader on files in the official python-pickle layout."""
    import torchvision.datasets as tvd

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        with open(base / name, "wb") as f:
            pickle.dump({"data": data, "labels": [1, 7]}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}, f)
    import torchvision.datasets.cifar as tvc

    # torchvision checks the md5s of the official archive's files; ours hold other pixels
    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvc, "check_integrity", lambda *a, **k: True)
    src = Cifar10(Cifar10.Params(root=str(tmp_path)))
    assert src.find() == ("torchvision", tmp_path) and src.identity() == {"name": "cifar10", "version": src.version, "params": {}}
    train, test = src.load()
    assert train.x.shape == (10, 3, 32, 32) and test.x.shape == (2, 3, 32, 32)
    assert train.classes[7] == "horse" and train.y.tolist()[:2] == [1, 7]
    with open(base / "data_batch_1", "rb") as f:
        first = pickle.load(f)["data"][0].reshape(3, 32, 32)
    assert torch.equal(train.x[0], torch.from_numpy(first))


def test_torchvision_missing_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="download: true"):
        Cifar10(Cifar10.Params(root=str(tmp_path), download=False)).load()
    with pytest.raises(DatasetError, match="download: true"):  # at plan time too (cache keys, --dry-run), not after work
        Cifar10(Cifar10.Params(root=str(tmp_path), download=False)).identity()
    assert "content" not in Cifar10(Cifar10.Params(root=str(tmp_path))).identity()  # to be downloaded: named, not refused
    with pytest.raises(DatasetError, match="download: true"):
        SVHN(SVHN.Params(root=str(tmp_path))).load()


def test_balanced_indices():
    y = torch.tensor([0] * 10 + [1] * 10 + [2] * 10)
    idx = balanced_indices(y, 9, seed=0, num_classes=3)
    assert torch.bincount(y[idx]).tolist() == [3, 3, 3]
    assert torch.equal(idx, balanced_indices(y, 9, seed=0, num_classes=3))
    assert not torch.equal(idx, balanced_indices(y, 9, seed=1, num_classes=3))
    with pytest.raises(ValueError):
        balanced_indices(y, 31, 0, 3)
    with pytest.raises(ValueError, match=r"class 'bird' \(2\) has 10 samples, fewer than the 11 asked for"):
        balanced_indices(torch.tensor([0] * 12 + [1] * 12 + [2] * 10), 33, 0, 3, ("cat", "dog", "bird"))


def test_stratified_fraction_handles_imbalance():
    y = torch.tensor([0] * 124 + [1] * 130)
    idx = stratified_fraction(y, 0.2, 0)
    assert torch.bincount(y[idx]).tolist() == [25, 26]


def test_make_splits_subset_holdout_disjoint():
    train = tiny_dataset(n=80, classes=4)
    test = tiny_dataset(n=20, classes=4, seed=1)
    s = make_splits(train, test, subset=40, holdout=8, seed=0)
    # with a subset, the hold-out comes from outside it: the victim's training set is unchanged
    assert len(s.train) == 40 and len(s.holdout) == 8 and len(s.test) == 20
    plain = make_splits(train, test, subset=40, seed=0)
    assert torch.equal(plain.train.x, s.train.x) and torch.equal(plain.train.y, s.train.y)
    assert torch.equal(s.train.index, torch.arange(40))
    assert torch.bincount(s.holdout.y).tolist() == [2, 2, 2, 2]
    # no hold-out image appears in the training set
    tr = {bytes(t.numpy().tobytes()) for t in s.train.x}
    assert not any(bytes(h.numpy().tobytes()) in tr for h in s.holdout.x)
    assert s.train.y.tolist() != sorted(s.train.y.tolist())


def test_make_splits_holdout_carved_without_subset_and_as_percentage():
    train = tiny_dataset(n=80, classes=4)
    test = tiny_dataset(n=20, classes=4, seed=1)
    s = make_splits(train, test, holdout="10%", seed=0)
    assert len(s.holdout) == 8 and len(s.train) == 72
    tr = {bytes(t.numpy().tobytes()) for t in s.train.x}
    assert not any(bytes(h.numpy().tobytes()) in tr for h in s.holdout.x)
    with pytest.raises(ValueError, match="leaves nothing"):
        make_splits(train, test, holdout=80)
    with pytest.raises(ValueError, match="outside the subset"):
        make_splits(train, test, subset=76, holdout=8)


def test_test_from_train_carves_a_test_split_per_class_from_training_only_data():
    """Data without a test split: ``test_from_train`` carves one off first, in each class's
    proportion (an imbalanced dataset keeps its proportions), then subset and hold-out come from
    the rest; seeded, disjoint. Data with a test split refuses it; data without one needs it."""
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train = ImageDataset(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 1, 2, 2).clone(), y, ("a", "b", "c"))
    none = train.select(torch.arange(0))
    s = make_splits(train, none, test_from_train="20%", subset=30, holdout=6, seed=0)
    assert torch.bincount(s.test.y).tolist() == [10, 6, 4]  # 20% of each class, hand-counted
    assert len(s.train) == 30 and len(s.holdout) == 6
    seen = [set(part.x[:, 0, 0, 0].tolist()) for part in (s.train, s.test, s.holdout)]
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])
    again = make_splits(train, none, test_from_train=20, subset=30, holdout=6, seed=0)
    assert torch.equal(again.test.x, s.test.x) and torch.equal(again.train.x, s.train.x)  # 20 images = 20%: the same draw
    assert not torch.equal(make_splits(train, none, test_from_train=20, seed=1).test.x, s.test.x)
    assert len(make_splits(train, none, test_from_train=20).train) == 80
    with pytest.raises(SplitError, match="the data has no test split: set dataset.test_from_train") as e:
        make_splits(train, none)
    assert e.value.key == "test_from_train"
    with pytest.raises(SplitError, match=r"the data has a test split \(5 images\); test_from_train carves one"):
        make_splits(train, train.select(torch.arange(5)), test_from_train="10%")
    with pytest.raises(SplitError, match="leaves nothing"):
        make_splits(train, none, test_from_train=100)
    # exactly the count asked for (as the dry-run prices it), by largest remainders: 10% of 3/3/94 is 1/1/8
    skew = ImageDataset(train.x, torch.tensor([0] * 3 + [1] * 3 + [2] * 94), ("a", "b", "c"))
    assert torch.bincount(make_splits(skew, none, test_from_train="10%").test.y).tolist() == [1, 1, 8]
    with pytest.raises(SplitError, match="a test split of 2 cannot take one image of each of the 3 classes"):
        make_splits(skew, none, test_from_train=2)
    from benchmark.data.describe import describe_data

    assert describe_data({"name": "npz", "test_from_train": "20%", "subset": 30}).endswith(
        "30 subset, test split of 20% carved from the training images")
    lone = ImageDataset(train.x[:11], torch.tensor([0] * 10 + [1]), ("a", "b"))
    with pytest.raises(SplitError, match=r"class 'b' \(1\) has 1 image: it cannot be in both"):
        make_splits(lone, none, test_from_train="50%")


def test_training_only_npz_and_image_folders_load_with_an_empty_test_split(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "t.npz", x_train=rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8), y_train=np.arange(6) % 2)
    train, test = Npz(Npz.Params(path=str(tmp_path / "t.npz"))).load()
    assert len(train) == 6 and test.x.shape == (0, 3, 4, 4)
    _folder(tmp_path / "flat", splits=("",))  # root/<class>/<image>
    _folder(tmp_path / "trainonly", splits=("train",))  # root/train/<class>/<image>
    for root in ("flat", "trainonly"):
        source = ImageFolder(ImageFolder.Params(root=str(tmp_path / root), size=8))
        train, test = source.load()
        assert train.classes == ("cat", "dog") and train.y.tolist() == [0, 0, 1, 1] and test.x.shape == (0, 3, 8, 8)
    # the flat folder's keys name its files from root, wherever it lies
    shutil.copytree(tmp_path / "flat", tmp_path / "moved", copy_function=shutil.copy2)
    def content(root):
        return ImageFolder(ImageFolder.Params(root=str(tmp_path / root), size=8)).content_id()
    assert content("flat") == content("moved") != content("trainonly")
    with pytest.raises(DatasetError, match=r"test_split.*does not exist|tset' does not exist"):
        ImageFolder(ImageFolder.Params(root=str(tmp_path / "trainonly"), test_split="tset")).load()


def test_npz_keys_name_the_content_not_the_path(tmp_path):
    """The same file under two paths gives the same cache keys (committed results are found from
    any checkout); different content gives different keys."""
    from benchmark.config import parse_matrix, resolve
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry

    def npz(path, shift=0):
        rng = np.random.default_rng(0)
        np.savez(path, x_train=rng.integers(0, 255, (8, 4, 4, 3), dtype=np.uint8) + shift, y_train=np.arange(8) % 2,
                 x_test=rng.integers(0, 255, (4, 4, 4, 3), dtype=np.uint8), y_test=np.arange(4) % 2)
        return str(path)

    def keys(path):
        m = parse_matrix({"dataset": {"name": "npz", "path": path}, "attacks": ["clean"], "victims": ["sl"]})
        plan = make_plan(resolve(m, get_registry()))
        return plan.jobs[0].key, [c.key for c in plan.cells], plan.dataset_spec

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ka, kb = keys(npz(tmp_path / "a" / "d.npz")), keys(npz(tmp_path / "b" / "d.npz"))
    assert ka[:2] == kb[:2] and "path" not in ka[2]["params"] and ka[2]["content"].startswith("sha256:")
    assert keys(npz(tmp_path / "c.npz", shift=1))[0] != ka[0]


def write_cifar_npz(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_train=np.arange(20) % 10,
             x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), y_test=np.arange(10) % 10)


def test_cifar10_finds_an_npz_copy_in_the_data_root_and_keys_it_by_content(tmp_path, monkeypatch):
    """``cifar10`` looks in ``root`` (else $UEBENCH_DATA), then in the cache; an npz copy there (the
    JPEG-75 copy of shared/data) is keyed by its sha256, the canonical files by the name alone."""
    from benchmark.data.source import file_sha256

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    write_cifar_npz(data / "cifar10-jpeg.npz")
    monkeypatch.setenv("UEBENCH_DATA", str(data))
    src = Cifar10(Cifar10.Params())
    assert src.find() == ("npz", data / "cifar10-jpeg.npz")
    ident = src.identity()
    assert ident["content"] == "sha256:" + file_sha256(data / "cifar10-jpeg.npz") and ident["params"] == {}
    train, test = src.load()
    assert train.x.shape == (20, 3, 32, 32) and len(test) == 10
    # an explicit root wins over the environment; the canonical layout wins over an npz in one root
    other = tmp_path / "other"
    (other / "cifar-10-batches-py").mkdir(parents=True)
    write_cifar_npz(other / "cifar10-jpeg.npz", seed=1)
    src2 = Cifar10(Cifar10.Params(root=str(other)))
    assert src2.find() == ("torchvision", other) and "content" not in src2.identity()
    assert src2.identity() != ident  # the JPEG copy and the real CIFAR-10 never share a key
    # nothing in the data root: the cache is next, then a download into it
    monkeypatch.delenv("UEBENCH_DATA")
    cache = tmp_path / "cache" / "uebench"
    assert Cifar10(Cifar10.Params()).roots() == [cache]
    import torchvision.datasets as tvd

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    with pytest.raises(DatasetError, match=r"downloading into .*cache/uebench' failed \(OSError: no network\).*UEBENCH_DATA"):
        Cifar10(Cifar10.Params()).load()
    with pytest.raises(DatasetError, match=r"not found in '.*typo' \(does not exist\), .*; downloading into"):
        Cifar10(Cifar10.Params(root=str(tmp_path / "typo"))).load()  # a mistyped root is named as such
    (cache).mkdir(parents=True, exist_ok=True)
    write_cifar_npz(cache / "cifar10.npz", seed=2)
    assert Cifar10(Cifar10.Params()).find() == ("npz", cache / "cifar10.npz")


def test_data_descriptions_name_the_content_and_the_part_used():
    from benchmark.data.describe import describe_data

    jpeg = "sha256:6fbe29a0662f13fe6ef4524a17b67b03745b74e2097af723af52f162714b08eb"
    spec = {"name": "npz", "version": "1", "params": {}, "content": jpeg, "subset": 5000, "test_subset": None, "holdout": "5%"}
    assert describe_data(spec) == "CIFAR-10 (JPEG-75 copy), 5k subset, full test set"
    assert describe_data({**spec, "name": "cifar10", "subset": 2000, "test_subset": 2000}) == "CIFAR-10 (JPEG-75 copy), 2k subset, 2k test images"
    assert describe_data({"name": "cifar10", "params": {}, "subset": None}) == "CIFAR-10, full training set, full test set"
    assert describe_data({"name": "npz", "params": {}, "content": "sha256:abcdef0123456789ff", "subset": 1500}).startswith("npz data (sha256:abcdef0123")
    assert describe_data({"name": "digits", "params": {}, "subset": 200}) == "scikit-learn digits (8x8 grayscale), 200 subset, full test set"
    assert describe_data({"name": "not-installed", "subset": None}).startswith("not-installed, ")
    assert describe_data(None) == "unknown data"


def test_cifar10_cache_keys_follow_the_content_wherever_it_lies(tmp_path, monkeypatch):
    """The same npz copy under two data roots gives the same cell keys; another file, other keys."""
    import shutil

    from benchmark.config import parse_matrix, resolve
    from benchmark.plan import make_plan
    from benchmark.registry import get_registry

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        (tmp_path / name).mkdir()
        write_cifar_npz(tmp_path / name / "cifar10-jpeg.npz", seed=seed)
    shutil.copy(tmp_path / "a" / "cifar10-jpeg.npz", tmp_path / "b" / "cifar10-jpeg.npz")

    def keys(root: str) -> list[str]:
        monkeypatch.setenv("UEBENCH_DATA", str(tmp_path / root))
        m = parse_matrix({"dataset": {"name": "cifar10", "subset": 10}, "profile": "smoke", "attacks": ["clean"], "victims": ["sl"]})
        return [c.key for c in make_plan(resolve(m, get_registry())).cells]

    assert keys("a") == keys("b") != keys("c")


def _npz(path: Path, **arrays: np.ndarray) -> str:
    rng = np.random.default_rng(0)
    base = {"x_train": rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8), "y_train": np.arange(6) % 3,
            "x_test": rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8), "y_test": np.arange(3) % 3}
    np.savez(path, **{**base, **arrays})
    return str(path)


@pytest.mark.parametrize(
    ("arrays", "error"),
    [
        ({"x_train": np.zeros((6, 3, 5, 5), np.uint8)}, r"x_train has shape \(6, 3, 5, 5\), which looks channels-first"),
        ({"x_test": np.zeros((3, 4, 4, 3), np.uint8)}, r"the test images are \[3, 4, 4\] \[C,H,W\] but the training images \[3, 5, 5\]"),
        ({"x_test": np.zeros((3, 5, 5), np.uint8)}, r"the test images are \[1, 5, 5\]"),
        ({"y_train": np.arange(6) % 3 + 1, "y_test": np.arange(3) % 3 + 1}, r"class '0' has no training images"),
        ({"y_train": (np.arange(6) % 3) * 2}, r"classes '1', '3' have no training images"),
        ({"y_test": np.array([0, 1, 3])}, r"labels of .* x_test range over 0..3, outside 0..2"),
        ({"y_train": np.array([0, 1, 2, 0, 1, 3]), "classes": np.array(["a", "b", "c"])}, r"x_train range over 0..3, outside 0..2 \(3 classes\)"),
        ({"y_train": np.array([0, 1, 2, 0, 1, -1])}, r"range over -1..2"),
        ({"y_train": (np.arange(6) % 3) + 0.9}, r"y_train must be a 1-D array of integer class indices, got float64"),
        ({"y_train": (np.arange(6) % 3)[:, None]}, r"y_train must be a 1-D array of integer class indices, got int64 \(6, 1\)"),
        ({"x_train": np.zeros((6, 5, 5, 3))}, r"x_train must be uint8, got float64 \(from floats in \[0, 1\]: \(x \* 255\)"),
        ({"classes": np.array(["a", "b", None], dtype=object)}, r"its `classes` array is an object array \(pickled\)"),
    ],
    ids=["channels-first", "test-size", "test-gray", "labels-from-1", "labels-gaps", "test-label", "classes-short",
         "negative", "float-labels", "column-labels", "float-images", "object-classes"],
)
def test_npz_refuses_malformed_arrays_naming_file_and_array(tmp_path, arrays, error):
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=error) as e:
        Npz(Npz.Params(path=path)).load()
    assert "d.npz" in str(e.value)


def _folder(root: Path, classes=("cat", "dog"), n=2, splits=("train", "test")) -> None:
    rng = np.random.default_rng(0)
    for split in splits:
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.png")


def test_imagefolder_reads_as_torchvision_does_and_skips_hidden_files(tmp_path):
    _folder(tmp_path)
    for split in ("train", "test"):
        (tmp_path / split / ".ipynb_checkpoints").mkdir()
        (tmp_path / split / "dog" / "more").mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / split / "dog" / "more" / "nested.png")
        (tmp_path / split / "cat" / "._0.png").write_bytes(b"AppleDouble")
        (tmp_path / split / "cat" / ".DS_Store").write_bytes(b"x")
    train, test = ImageFolder(ImageFolder.Params(root=str(tmp_path), size=8)).load()
    assert train.classes == ("cat", "dog") and train.y.tolist() == [0, 0, 1, 1, 1] and len(test) == 5
    assert int(train.x[4].sum()) == 0  # dog/more/nested.png, sorted after dog/1.png


@pytest.mark.parametrize(
    ("change", "params", "error"),
    [
        (lambda r: (r / "train" / "bird").mkdir(), {}, r"class folder '.*train/bird' has no images"),
        (lambda r: _folder(r, ("zebra",), splits=("test",)), {}, r"test' has class folders that .*train' lacks: 'zebra'"),
        (lambda r: shutil.rmtree(r / "test" / "dog"), {}, r"class folder '.*test/dog' is missing \(the folder has 'cat'\)"),
        (lambda r: Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(r / "train" / "cat" / "wide.png"), {},
         r"wide.png' has 'I;16' pixels \(16-bit or float\)"),
        (lambda r: None, {"test_split": "train"}, r"the test split '.*train' is the training split"),
        (lambda r: (r / "val").mkdir(), {"test_split": "tset"}, r"tset' does not exist"),
    ],
    ids=["empty-class", "test-only-class", "missing-test-class", "16-bit", "test-is-train", "typo-not-val"],
)
def test_imagefolder_refuses_layouts_that_would_train_or_score_wrongly(tmp_path, change, params, error):
    _folder(tmp_path)
    change(tmp_path)
    with pytest.raises(DatasetError, match=error):
        ImageFolder(ImageFolder.Params(root=str(tmp_path), size=8, **params)).load()


def test_imagefolder_keys_name_the_files_not_the_folder(tmp_path):
    _folder(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # copy2: modification times kept
    ident = ImageFolder(ImageFolder.Params(root=str(tmp_path / "a"))).identity()
    assert ident == ImageFolder(ImageFolder.Params(root=str(tmp_path / "b"))).identity()
    assert "root" not in ident["params"] and ident["content"].startswith("files:")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "b" / "test" / "dog" / "0.png")  # a test image edited
    assert ImageFolder(ImageFolder.Params(root=str(tmp_path / "b"))).identity() != ident
    (tmp_path / "a" / "train" / "cat" / "1.png").rename(tmp_path / "a" / "train" / "dog" / "9.png")  # an image moved to another class
    assert ImageFolder(ImageFolder.Params(root=str(tmp_path / "a"))).identity() != ident
    named = ImageFolder(ImageFolder.Params(root=str(tmp_path / "b"), test_split="test")).identity()
    assert named == ImageFolder(ImageFolder.Params(root=str(tmp_path / "b"))).identity()  # the default, named: the same data
    (tmp_path / "b" / "test").rename(tmp_path / "b" / "val")
    assert ImageFolder(ImageFolder.Params(root=str(tmp_path / "b"))).identity() != named  # the same files as another split


def test_imagefolder_follows_linked_subfolders_as_torchvision_does(tmp_path):
    _folder(tmp_path)
    (tmp_path / "extra").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "extra" / "b.png")
    (tmp_path / "train" / "cat" / "linked").symlink_to(tmp_path / "extra", target_is_directory=True)
    train, _ = ImageFolder(ImageFolder.Params(root=str(tmp_path), size=8)).load()
    assert train.y.tolist() == [0, 0, 0, 1, 1]


def test_fashion_mnist_other_files_get_their_own_keys(tmp_path):
    keys = []
    for name, shift in (("x", 0), ("y", 1)):
        (tmp_path / name).mkdir()
        for split in ("train", "t10k"):
            write_idx(tmp_path / name / f"{split}-images-idx3-ubyte", np.full((10, 28, 28), shift), False)
            write_idx(tmp_path / name / f"{split}-labels-idx1-ubyte", (np.arange(10) + shift) % 10, False)
        keys.append(FashionMNIST(FashionMNIST.Params(root=str(tmp_path / name))).identity())
    assert keys[0] != keys[1] and all(k["content"].startswith("sha256:") and "root" not in k["params"] for k in keys)
    if Path("/usr/share/datasets/fashion-mnist").is_dir():  # Debian's files: named by the name alone, as before
        assert "content" not in FashionMNIST(FashionMNIST.Params()).identity()


def test_cifar10_refuses_an_npz_that_is_not_cifar10(tmp_path):
    _npz(tmp_path / "cifar10.npz")
    with pytest.raises(DatasetError, match=r"holds 3 classes of \[3, 5, 5\] \[C,H,W\] images, not CIFAR-10's"):
        Cifar10(Cifar10.Params(root=str(tmp_path), download=False)).load()


def test_cifar100_and_svhn_missing_files_are_found_missing_when_the_matrix_is_planned(tmp_path):
    """`--dry-run` prices them from costs.yaml without loading: their absence was found only by the run."""
    from benchmark.data.torchvision_sets import Cifar100

    for cls, missing in ((Cifar100, "cifar-100-python"), (SVHN, "train_32x32.mat, test_32x32.mat")):
        with pytest.raises(DatasetError, match=f"{cls.name}: {missing} not found under"):
            cls(cls.Params(root=str(tmp_path))).identity()
        assert "content" not in cls(cls.Params(root=str(tmp_path), download=True)).identity()  # to be fetched
    (tmp_path / "cifar-100-python").mkdir()
    assert Cifar100(Cifar100.Params(root=str(tmp_path))).identity()["name"] == "cifar100"
