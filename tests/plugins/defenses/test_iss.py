from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from benchmark.interfaces import RunContext
from plugins.defenses.iss import ISSBdr, ISSGray, ISSJpeg, bdr_u8, grayscale_u8, jpeg_u8
from tests.conftest import tiny_dataset


def pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray(x.permute(1, 2, 0).numpy())


def test_grayscale_matches_pillow_exactly():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = grayscale_u8(x)
    for i in range(6):
        ref = np.asarray(pil(x[i]).convert("L").convert("RGB"))
        assert np.array_equal(ours[i].permute(1, 2, 0).numpy(), ref)


def test_jpeg_matches_pillow_quality_10():
    assert jpeg_u8(tiny_dataset(n=2, channels=1, size=16).x, 10).shape == (2, 1, 16, 16)
    x = tiny_dataset(n=4, size=32).x
    ours = jpeg_u8(x, 10)
    for i in range(4):
        buf = io.BytesIO()
        pil(x[i]).save(buf, format="JPEG", quality=10)
        ref = torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1)
        assert torch.equal(ours[i], ref)  # the ISS reference: Pillow, quality 10
    assert (ours.int() - x.int()).abs().float().mean() > 1  # it does change the images


def test_bdr_hand_values():
    x = torch.tensor([0, 63, 64, 127, 128, 200, 255], dtype=torch.uint8).view(1, 1, 1, 7)
    assert bdr_u8(x, 2).flatten().tolist() == [0, 0, 64, 64, 128, 192, 192]
    assert bdr_u8(x, 8).flatten().tolist() == x.flatten().tolist()


def test_defenses_transform_train_only_and_keep_labels():
    data = tiny_dataset(n=8, size=16)
    for cls in (ISSGray, ISSJpeg, ISSBdr):
        d = cls()
        assert d.stage == "data"
        out = d.transform(data, RunContext())
        assert out.x.shape == data.x.shape and torch.equal(out.y, data.y)
