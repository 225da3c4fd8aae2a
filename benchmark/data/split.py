"""Seeded, class-balanced subsets and hold-out splits, and the matrix's splits loaded from its source."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from benchmark.data.dataset import DataSplits, ImageDataset, data_checksum
from benchmark.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from benchmark.config import Resolved


class SplitError(ValueError):
    """A split the data cannot give; ``key`` names the dataset key at fault (``subset``,
    ``test_subset``, ``holdout``), so the runner can point the user at it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def balanced_indices(y: torch.Tensor, n: int, seed: int, num_classes: int, names: tuple[str, ...] = ()) -> torch.Tensor:
    """``n`` indices with (as near as possible) ``n / num_classes`` per class, drawn with ``seed``
    (``names``: the class names, for errors).

    Returned sorted, so the order of the source is kept.
    """
    if n > len(y):
        raise ValueError(f"asked for {n} samples but the split has only {len(y)}")
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(y, minlength=num_classes)
    present = [c for c in range(num_classes) if counts[c] > 0]
    base, extra = divmod(n, len(present))
    chosen = []
    for i, c in enumerate(present):
        want = base + (1 if i < extra else 0)
        pool = torch.nonzero(y == c).flatten()
        if want > len(pool):
            named = f"class {names[c]!r} ({c})" if c < len(names) and names[c] != str(c) else f"class {c}"
            raise ValueError(f"{named} has {len(pool)} samples, fewer than the {want} asked for")
        chosen.append(pool[torch.randperm(len(pool), generator=g)[:want]])
    return torch.cat(chosen).sort().values


def stratified_fraction(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """``round(fraction * count)`` indices of every class (at least one), drawn with ``seed``, sorted."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(y).tolist():
        pool = torch.nonzero(y == c).flatten()
        want = max(1, round(fraction * len(pool)))
        chosen.append(pool[torch.randperm(len(pool), generator=g)[:want]])
    return torch.cat(chosen).sort().values


def carve_test(y: torch.Tensor, n: int, seed: int, names: tuple[str, ...] = ()) -> torch.Tensor:
    """Exactly ``n`` indices, drawn per class in proportion to its size (stratified, largest
    remainders: an imbalanced dataset keeps its proportions in both splits), each class giving at
    least one and keeping at least one; sorted. ``ValueError`` naming a class with a single image
    (it cannot be in both), or when ``n`` cannot hold one image of each class."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y).tolist()
    pools = [torch.nonzero(y == c).flatten() for c in classes]
    for c, pool in zip(classes, pools):
        if len(pool) < 2:
            named = f"class {names[c]!r} ({c})" if c < len(names) and names[c] != str(c) else f"class {c}"
            raise ValueError(f"{named} has {len(pool)} image: it cannot be in both the training and the test split")
    if not len(classes) <= n <= len(y) - len(classes):
        raise ValueError(f"a test split of {n} cannot take one image of each of the {len(classes)} classes and leave one of each")
    share = [n * len(pool) / len(y) for pool in pools]
    want = [min(len(pool) - 1, max(1, int(s))) for pool, s in zip(pools, share)]
    order = sorted(range(len(pools)), key=lambda i: (want[i] - share[i], i))  # furthest below its share first
    diff = n - sum(want)
    turn = order if diff > 0 else order[::-1]
    k = 0
    while diff:  # one image more (or less) per class in turn, within each class's bounds
        i, step = turn[k % len(turn)], 1 if diff > 0 else -1
        k += 1
        if 1 <= want[i] + step <= len(pools[i]) - 1:
            want[i] += step
            diff -= step
    return torch.cat([pool[torch.randperm(len(pool), generator=g)[:k]] for pool, k in zip(pools, want)]).sort().values


def holdout_size(holdout: int | str, n_train: int) -> int:
    """The hold-out size: an int as is, a percentage ``"5%"`` of ``n_train`` (rounded)."""
    if isinstance(holdout, str):
        return round(float(holdout.strip().rstrip("%")) / 100 * n_train)
    return int(holdout)


def carved_sizes(n_train: int, n_test: int, test_from_train: int | str = 0) -> tuple[int, int]:
    """``(n_train, n_test)`` once ``test_from_train`` images are carved from the training split, or
    :class:`SplitError` when the data has a test split already, or has none and none is carved."""
    if test_from_train and n_test:
        raise SplitError("test_from_train", f"the data has a test split ({n_test} images); test_from_train carves one from "
                         "data that has none: remove it (test_subset takes a smaller test split)")
    if not test_from_train and not n_test:
        raise SplitError("test_from_train", "the data has no test split: set dataset.test_from_train (a count, or a "
                         "percentage like '20%') to carve one from the training images, per class")
    if not test_from_train:
        return n_train, n_test
    carve = holdout_size(test_from_train, n_train)
    if not carve:
        raise SplitError("test_from_train", f"a test split of {test_from_train} of the {n_train} training images is 0 images")
    if carve >= n_train:
        raise SplitError("test_from_train", f"a test split of {carve} leaves nothing of the {n_train} training images")
    return n_train - carve, carve


def one_of_each(key: str, n: int | None, classes: int) -> None:
    """A ``subset`` or ``test_subset`` of ``n`` images must hold one of each of ``classes``: else a
    victim trains on, or is scored on, some classes only."""
    if n is not None and n < classes:
        raise SplitError(key, f"{n} images cannot hold one of each of the {classes} classes; give at least {classes}")


def check_sizes(n_train: int, n_test: int, *, subset: int | None = None, test_subset: int | None = None,
                holdout: int | str = 0, test_from_train: int | str = 0, classes: int = 0) -> None:
    """The count checks of :func:`make_splits` on sizes alone (a dry-run that does not load the
    data; ``classes``: how many it has, when known): raises :class:`SplitError` where
    ``make_splits`` would. Class balance is not checked."""
    one_of_each("subset", subset, classes)
    one_of_each("test_subset", test_subset, classes)
    n_train, n_test = carved_sizes(n_train, n_test, test_from_train)
    if subset is not None and subset > n_train:
        raise SplitError("subset", f"asked for {subset} samples but the split has only {n_train}")
    if test_subset is not None and test_subset > n_test:
        raise SplitError("test_subset", f"asked for {test_subset} samples but the split has only {n_test}")
    n = subset if subset is not None else n_train
    n_hold = holdout_size(holdout, n)
    if holdout and not n_hold:
        raise SplitError("holdout", f"a hold-out of {holdout} of the {n} training images is 0 images")
    if subset is not None and n_hold > n_train - subset:
        raise SplitError("holdout", f"a hold-out of {n_hold} does not fit in the {n_train - subset} training images outside the subset of {subset}")
    if subset is None and n_hold >= n_train:
        raise SplitError("holdout", f"a hold-out of {n_hold} leaves nothing of the {n_train} training images")


def make_splits(
    train: ImageDataset,
    test: ImageDataset,
    *,
    subset: int | None = None,
    test_subset: int | None = None,
    holdout: int | str = 0,
    test_from_train: int | str = 0,
    seed: int = 0,
) -> DataSplits:
    """Class-balanced ``subset`` of the training set, plus ``holdout`` clean samples for
    model-repair defenses (an int, or a percentage of the victim's training set such as ``"5%"``).

    The hold-out never appears in the victim's training set, so a repair defense's clean data is
    data the attacker did not see. With a ``subset`` it is drawn (class-balanced) from the training
    images *outside* the subset, so adding a hold-out leaves the victim's training set unchanged;
    without one it is carved out of the training set. The training set is then shuffled once with
    ``seed`` and its ``index`` re-based to 0..N-1, the order sample-wise perturbations are stored in.

    Data without a test split (its ``test`` has no images) needs ``test_from_train``: a count or a
    percentage of the training images carved off first as the test split, per class in proportion
    (:func:`carve_test`, drawn with ``seed``); subset and hold-out are then drawn from the rest.
    """
    check_sizes(len(train), len(test), subset=subset, test_subset=test_subset, holdout=holdout, test_from_train=test_from_train)
    if test_from_train:
        try:
            carved = carve_test(train.y, holdout_size(test_from_train, len(train)), seed + 2, train.classes)
        except ValueError as e:
            raise SplitError("test_from_train", f"a test split of {test_from_train}: {e}") from None
        rest = torch.ones(len(train), dtype=torch.bool)
        rest[carved] = False
        train, test = train.select(torch.nonzero(rest).flatten()), train.select(carved)
    full = train
    for key, n, split in (("subset", subset, train), ("test_subset", test_subset, test)):
        if n is not None:
            one_of_each(key, n, int((torch.bincount(split.y, minlength=split.num_classes) > 0).sum()))
    if subset is not None:
        try:
            chosen = balanced_indices(train.y, subset, seed, train.num_classes, train.classes)
        except ValueError as e:
            raise SplitError("subset", str(e)) from None
        train = train.select(chosen)
    if test_subset is not None:
        try:
            test = test.select(balanced_indices(test.y, test_subset, seed, test.num_classes, test.classes))
        except ValueError as e:
            raise SplitError("test_subset", str(e)) from None
    hold = None
    n_hold = holdout_size(holdout, len(train))
    if n_hold:
        if subset is not None:
            rest = torch.ones(len(full), dtype=torch.bool)
            rest[chosen] = False
            outside = torch.nonzero(rest).flatten()
            try:
                h = outside[balanced_indices(full.y[outside], n_hold, seed + 1, full.num_classes, full.classes)]
            except ValueError as e:
                raise SplitError("holdout", f"a hold-out of {n_hold} outside the subset: {e}") from None
            hold = full.select(h)
        else:
            try:
                h = balanced_indices(train.y, n_hold, seed + 1, train.num_classes, train.classes)
            except ValueError as e:
                raise SplitError("holdout", f"a hold-out of {n_hold}: {e}") from None
            keep = torch.ones(len(train), dtype=torch.bool)
            keep[h] = False
            hold = train.select(h)
            train = train.select(torch.nonzero(keep).flatten())
    # One fixed, seeded shuffle: some sources are sorted by class, and generators that walk the
    # data in order (EM's model phase) must not see one class at a time.
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    train = ImageDataset(train.x[perm], train.y[perm], train.classes)
    test = ImageDataset(test.x, test.y, test.classes)
    if hold is not None:
        hold = ImageDataset(hold.x, hold.y, hold.classes)
    return DataSplits(train=train, test=test, holdout=hold)


def load_splits(r: Resolved) -> tuple[DataSplits, str]:
    """The matrix's splits, and the sha256 of the source's content (images and labels of both
    splits, before any subset): what every record says it was computed on."""
    d = r.matrix.dataset
    train, test = r.dataset.load()
    digest = data_checksum(train, test)
    try:
        splits = make_splits(train, test, subset=d.subset, test_subset=d.test_subset, holdout=d.holdout,
                             test_from_train=d.test_from_train, seed=d.split_seed)
    except SplitError as e:
        raise ConfigError(f"dataset {d.display!r}: {e}", file=r.file, path=f"dataset.{e.key}") from None
    except ValueError as e:
        raise DatasetError(f"dataset {d.display!r}: {e}") from None
    return splits, digest
