"""gaussian-blur: a data-stage blur that actually blurs (spec §1.4)."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from benchmark.interfaces import RunContext
from benchmark.registry import get_registry
from plugins.defenses.blur import GaussianBlur, gaussian_blur_u8, gaussian_kernel1d
from tests.conftest import tiny_dataset


def test_kernel_weights_by_hand():
    e = math.exp(-0.5)  # sigma 1: weights e^-x^2/2 at x = -1, 0, 1
    assert gaussian_kernel1d(3, 1.0).tolist() == pytest.approx([e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)], abs=1e-7)
    assert gaussian_kernel1d(3, 1.0).tolist() == pytest.approx([0.274069, 0.451863, 0.274069], abs=1e-6)
    # APBench's sigma 0.1: the off-centre weight is e^-50 / (1 + 2 e^-50) ~ 2e-22
    assert gaussian_kernel1d(3, 0.1)[0].item() == pytest.approx(math.exp(-50), rel=1e-3)


def test_one_bright_pixel_spreads_as_the_outer_product():
    x = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    x[0, 0, 2, 2] = 200
    out = gaussian_blur_u8(x, 3, 1.0)[0, 0]
    w = [0.274069, 0.451863, 0.274069]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            assert out[2 + dy, 2 + dx].item() == round(200 * w[dy + 1] * w[dx + 1])  # 15 / 25 / 41 at the centre
    assert out[0, 0].item() == 0


def test_matches_torchvision_gaussian_blur_on_pil_images_exactly():
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for sigma in (0.5, 1.0, 1.5):
        ours = gaussian_blur_u8(x, 3, sigma)
        for i in range(4):
            pil = Image.fromarray(x[i].permute(1, 2, 0).numpy())
            ref = TF.pil_to_tensor(TF.gaussian_blur(pil, [3, 3], [sigma, sigma]))  # what APBench's transform does
            assert torch.equal(ours[i], ref), sigma


def test_apbench_sigma_is_the_identity_and_ours_is_not():
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(gaussian_blur_u8(x, 3, 0.1), x)  # the pitfall: APBench's "gaussian" does nothing
    changed = (gaussian_blur_u8(x, 3, 1.0) != x).float().mean()
    assert changed > 0.9
    const = torch.full((1, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(gaussian_blur_u8(const, 3, 1.0), const)


def test_defense_data_stage_keeps_labels_and_applies_to_every_victim():
    assert get_registry().get("defense", "gaussian-blur") is GaussianBlur
    d = GaussianBlur()
    assert d.stage == "data" and d.params.sigma == 1.0 and d.params.kernel_size == 3
    data = tiny_dataset(n=8, size=16)
    out = d.transform(data, RunContext())
    assert out.x.dtype == torch.uint8 and torch.equal(out.y, data.y) and torch.equal(out.x, gaussian_blur_u8(data.x))
    simclr = get_registry().get("victim", "simclr")()
    assert d.applies_to(simclr)
    with pytest.raises(Exception, match="odd"):
        GaussianBlur.Params(kernel_size=4)
