from __future__ import annotations

import torch

from benchmark.augment import (
    color_jitter,
    contrastive_view,
    hsv_hue_shift,
    random_crop,
    random_flip,
    random_grayscale,
    random_resized_crop,
    random_translate,
    resized_crop,
    resized_crop_boxes,
    torchvision_resized_crop,
)


def test_random_crop_matches_per_sample_reference():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    oy = torch.randint(0, 5, (2,), generator=g)
    ox = torch.randint(0, 5, (2,), generator=g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, oy[i] : oy[i] + 4, ox[i] : ox[i] + 4])


def test_random_crop_is_differentiable():
    x = torch.rand(3, 3, 8, 8, requires_grad=True)
    random_crop(x, 4, torch.Generator().manual_seed(1)).sum().backward()
    assert x.grad is not None and (x.grad >= 0).all()


def test_flip_probability_and_exactness():
    x = torch.rand(1000, 1, 2, 3)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(3)).flatten(1).all(1) & ~(out == x).flatten(1).all(1)
    assert 400 < int(flipped.sum()) < 600
    assert torch.equal(out[~flipped], x[~flipped])


def test_random_resized_crop_full_scale_is_identity():
    x = torch.rand(4, 3, 8, 8)
    out = random_resized_crop(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(out, x, atol=1e-5)


def test_color_jitter_zero_is_identity_and_grayscale_is_gray():
    x = torch.rand(5, 3, 4, 4)
    assert torch.allclose(color_jitter(x, torch.Generator(), 0, 0, 0, 0, p=1.0), x)
    g = random_grayscale(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert torch.allclose(g[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])


def test_contrastive_view_shapes_range_grad_and_randomness():
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    a = contrastive_view(x, torch.Generator().manual_seed(0))
    b = contrastive_view(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert not torch.allclose(a, b)
    a.sum().backward()
    assert x.grad.abs().sum() > 0


def _official_random_transform(x: torch.Tensor, r: torch.Tensor, shift: int = 8) -> torch.Tensor:
    """Witches' Brew / TAP ``RandomTransform`` (source = target = W, ``fliplr``, bilinear,
    ``align_corners=True``), rewritten from village/materials/diff_data_augmentation.py."""
    b, _, _, w = x.shape
    direct = torch.linspace(-1, 1, w).unsqueeze(0).repeat(w, 1).unsqueeze(-1)
    grid = torch.cat([direct, direct.transpose(1, 0)], dim=2).unsqueeze(0).repeat(b, 1, 1, 1)
    delta = torch.linspace(0, 1, w)[shift]
    grid[..., 0] += ((r[:, 0] - 0.5) * 2 * delta).view(-1, 1, 1)
    grid[..., 1] += ((r[:, 1] - 0.5) * 2 * delta).view(-1, 1, 1)
    grid[r[:, 2] > 0.5, :, :, 0] *= -1
    return torch.nn.functional.grid_sample(x, grid, align_corners=True, mode="bilinear")


def test_random_translate_matches_official_random_transform():
    x = torch.rand(16, 3, 32, 32)
    out = random_translate(x, torch.Generator().manual_seed(0), max_shift=4.0)
    r = torch.rand(16, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, _official_random_transform(x, r), atol=1e-5)


def test_random_translate_moves_a_point_by_up_to_max_shift_subpixel():
    x = torch.zeros(200, 1, 32, 32)
    x[:, :, 16, 16] = 1.0
    out = random_translate(x, torch.Generator().manual_seed(1), max_shift=4.0, flip=False)
    r = torch.rand(200, 3, generator=torch.Generator().manual_seed(1))
    cols = torch.arange(32, dtype=torch.float32)
    cx = (out[:, 0].sum(1) * cols).sum(1) / out[:, 0].sum((1, 2))  # mass centroid column
    expected = 16 - (r[:, 0] * 2 - 1) * 4  # output(p) = input(p + s): the point moves by -s
    assert torch.allclose(cx, expected, atol=1e-3)
    assert (expected - expected.round()).abs().max() > 0.1  # sub-pixel shifts
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(200), atol=1e-4)  # no mass lost inside the frame


def test_random_translate_fill_and_gradient():
    x = torch.full((64, 3, 8, 8), 0.5, requires_grad=True)
    fill = torch.tensor([0.5, 0.5, 0.5])
    out = random_translate(x, torch.Generator().manual_seed(2), max_shift=4.0, fill=fill)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-5)  # padded with the fill value
    zero = random_translate(x, torch.Generator().manual_seed(2), max_shift=4.0)
    assert float(zero.min()) < 0.01  # default: zero padding
    zero.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ------------------------------------------------- torchvision's crop sampling and HSV hue (#19)


def test_resized_crop_equals_torchvision_resized_crop_per_box():
    import torchvision.transforms.functional as TF

    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 3, 32, 32, generator=g)
    boxes = resized_crop_boxes(48, 32, 32, g, scale=(0.08, 1.0))
    boxes[0] = torch.tensor([0, 0, 32, 32])  # the whole image: the identity
    boxes[1] = torch.tensor([31, 0, 1, 32])  # one row: repeated down the image
    got = resized_crop(x, boxes)
    ref = torch.stack([TF.resized_crop(x[i], *boxes[i].tolist(), [32, 32], antialias=True) for i in range(48)])
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.equal(got[0], x[0])
    assert torch.allclose(got[1], x[1, :, 31:32, :].expand(3, 32, 32), atol=1e-6)
    wide = torch.rand(8, 3, 24, 40, generator=g)  # not square: rows and columns scale apart
    boxes = resized_crop_boxes(8, 24, 40, g, scale=(0.08, 1.0))
    ref = torch.stack([TF.resized_crop(wide[i], *boxes[i].tolist(), [24, 40], antialias=True) for i in range(8)])
    assert torch.allclose(resized_crop(wide, boxes), ref, atol=1e-5)
    assert torch.allclose(resized_crop(wide.bfloat16(), boxes).float(), ref, atol=0.01)  # positions stay float32


def test_resized_crop_boxes_follow_torchvision_get_params():
    from scipy import stats
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    n = 4000
    ours = resized_crop_boxes(n, 32, 32, torch.Generator().manual_seed(1), scale=(0.2, 1.0)).numpy()
    img = torch.zeros(3, 32, 32)
    tv = torch.tensor([RandomResizedCrop.get_params(img, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(n)]).numpy()
    assert ((ours[:, 0] + ours[:, 2]) <= 32).all() and ((ours[:, 1] + ours[:, 3]) <= 32).all() and (ours >= 0).all()
    for j in range(4):  # top, left, h, w: the same distributions (two-sample KS at 0.1%)
        assert stats.ks_2samp(ours[:, j], tv[:, j]).pvalue > 1e-3, j
    # the shrinking sampler (random_resized_crop) piles crops at the full width; redrawing does not
    assert abs((ours[:, 3] == 32).mean() - (tv[:, 3] == 32).mean()) < 0.03


def test_resized_crop_boxes_fall_back_to_the_centre_crop_when_nothing_fits():
    boxes = resized_crop_boxes(5, 32, 32, torch.Generator().manual_seed(0), scale=(1.5, 2.0))
    assert (boxes == torch.tensor([0, 0, 32, 32])).all()
    wide = resized_crop_boxes(3, 10, 40, torch.Generator().manual_seed(0), scale=(5.0, 6.0))
    assert (wide == torch.tensor([0, 13, 10, 13])).all()  # ratio capped at 4/3: round(10 * 4/3) = 13, centred


def test_hsv_hue_shift_equals_torchvision_adjust_hue_per_sample():
    import torchvision.transforms.functional as TF

    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=g)
    x[0] = 0.5  # grey: no hue to move
    x[1, :, 0, 0] = torch.tensor([1.0, 1.0, 0.0])  # ties between the max channels
    turns = torch.rand(16, generator=g) - 0.5
    got = hsv_hue_shift(x, turns)
    ref = torch.stack([TF.adjust_hue(x[i], float(turns[i])) for i in range(16)])
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.equal(got[0], x[0])
    assert torch.allclose(hsv_hue_shift(x, torch.zeros(16)), x, atol=1e-6)
    assert torch.allclose(hsv_hue_shift(x.bfloat16(), turns).float(), ref, atol=0.02)  # computed in float32
    assert torch.equal(hsv_hue_shift(x[:, :1], turns), x[:, :1])  # one channel: no hue (torchvision's rule)


def test_torchvision_views_are_differentiable():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 32, 32, generator=g).requires_grad_()
    y = hsv_hue_shift(torchvision_resized_crop(x, g), torch.full((8,), 0.1))
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
