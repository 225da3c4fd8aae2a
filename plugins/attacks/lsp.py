"""LSP: linear-separable synthetic patches (Yu, Zhang, Chen, Yin & Liu, "Availability Attacks
Create Shortcuts", KDD 2022; code dayu11/Availability-Attacks-Create-Shortcuts, also in
lafeat/apbench ``attack/lsp_poisons.py``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from benchmark.data.dataset import ImageDataset
from benchmark.interfaces import Attack, Budget, Poison, RunContext, release
from benchmark.params import Params


def synthetic_clusters(
    counts: list[int], dim: int, class_sep: float, generator: torch.Generator
) -> torch.Tensor:
    """Linearly separable Gaussian clusters, one per class (the setting of scikit-learn's
    ``make_classification(n_informative=dim, n_redundant=0, n_clusters_per_class=1, flip_y=0)``):
    class centroids on distinct vertices of the hypercube ``{-class_sep, +class_sep}^dim``, each
    class's points ``centroid + z @ A_k`` with ``z ~ N(0, I)`` and a random ``A_k`` with entries
    ``U(-1, 1)``. Returns ``[sum(counts), dim]`` with the classes' points in order."""
    k = len(counts)
    if k > 2**dim:
        raise ValueError(f"{k} classes need more than {dim} synthetic dimensions")
    vertices: list[int] = []
    while len(vertices) < k:  # distinct random vertices
        v = int(torch.randint(0, 2 ** min(dim, 62), (1,), generator=generator))
        if v not in vertices:
            vertices.append(v)
    out = []
    for cls, count in enumerate(counts):
        bits = torch.tensor([(vertices[cls] >> j) & 1 for j in range(dim)], dtype=torch.float32)
        centroid = (bits * 2 - 1) * class_sep
        a = torch.rand(dim, dim, generator=generator) * 2 - 1
        z = torch.randn(count, dim, generator=generator)
        out.append(centroid + z @ a)
    return torch.cat(out)


class LSP(Attack):
    """Sample-wise synthetic noise that is linearly separable by class: a shortcut by construction,
    crafted without any model (Yu et al., KDD 2022; dayu11/Availability-Attacks-Create-Shortcuts).

    Threat model: **L2**, ``eps`` = 6/255 * sqrt(3 * 32 * 32) = 1.304 per image in [0, 1] units
    (the official code's L-inf-equivalent radius at 32x32x3; the ISS table labels it "l2 1.0"),
    sample-wise ``delta`` ``[N, C, H, W]``.

    Construction: for each class a Gaussian cluster in ``C * (H/patch)^2`` dimensions (48 on
    CIFAR: a 4x4 grid of 8x8 patches times 3 channels), well separated (``class_sep`` 10); each
    image gets its own point of its class's cluster, upsampled to ``H x W`` by repeating each value
    over a ``patch x patch`` patch (nearest neighbour), then scaled to L2 norm ``eps``; the stored
    ``delta`` is what remains after clamping ``x + delta`` to [0, 1] (L2 norm at most ``eps``).

    Deviations from the official code: our own sampler replaces scikit-learn's
    ``make_classification`` (same distribution family and, measured, the same within-class spread
    and centroid distances; no dependency); exactly as many points as each class has images
    (``make_classification`` gives equal class sizes, so on balanced CIFAR-10 the two agree); the
    release rounds to nearest (official: floor).
    """

    name = "lsp"

    class Params(Params):
        # L2 norm of each image's noise on [0, 1] pixels; 6/255 x sqrt(3x32x32) = 1.30
        eps: float = Field(6 / 255 * math.sqrt(3 * 32 * 32), gt=0)
        patch_size: int = Field(8, ge=1)  # side in pixels of the square patch one noise value fills
        class_sep: float = Field(10.0, gt=0)  # class centroids at +-class_sep per dimension (cluster separation)

    profiles = {"quick": {}, "smoke": {"patch_size": 4}}

    def budget(self) -> Budget:
        return Budget("l2", float(self.params.eps))

    def generate(self, train: ImageDataset, ctx: RunContext) -> Poison:
        p = self.params
        c, h, w = train.shape
        gh, gw = math.ceil(h / p.patch_size), math.ceil(w / p.patch_size)
        y = train.y
        counts = torch.bincount(y, minlength=train.num_classes).tolist()
        points = synthetic_clusters(counts, c * gh * gw, p.class_sep, ctx.generator("lsp.clusters"))
        # points are grouped by class: give the images of class k the points of class k in order
        order = torch.argsort(y, stable=True)
        per_image = torch.empty_like(points)
        per_image[order] = points
        grid = per_image.view(-1, gh, gw, c).permute(0, 3, 1, 2)
        patches = F.interpolate(grid, scale_factor=p.patch_size, mode="nearest")[:, :, :h, :w]
        flat = patches.flatten(1)
        raw = (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12) * p.eps).view(-1, c, h, w)
        x = train.x.float().div(255)
        delta = (x + raw).clamp_(0, 1) - x  # the part that survives the release's box clamp
        return Poison(x=release(train.x, delta), delta=delta, kind="samplewise", meta={"l2": p.eps, "patch_size": p.patch_size})


PLUGINS = [LSP]
