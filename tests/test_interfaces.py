from __future__ import annotations

import torch

from benchmark.interfaces import Budget, release


def test_release_rounds_signed_delta_and_clamps():
    clean = torch.tensor([0, 10, 100, 250, 255], dtype=torch.uint8).view(1, 1, 1, 5)
    delta = torch.tensor([-3 / 255, -2.6 / 255, 2.4 / 255, 8 / 255, 1 / 255]).view(1, 1, 1, 5)
    # 0-3 -> clamp 0; 10-2.6=7.4 -> 7; 102.4 -> 102; 258 -> 255; 256 -> 255
    assert release(clean, delta).flatten().tolist() == [0, 7, 102, 255, 255]


def test_linf_budget():
    clean = torch.full((3, 3, 4, 4), 100, dtype=torch.uint8)
    ok = clean.clone()
    ok[1, 0, 0, 0] = 108
    assert Budget("linf", 8 / 255).violation(clean, ok) is None
    bad = ok.clone()
    bad[2, 1, 1, 1] = 91
    msg = Budget("linf", 8 / 255).violation(clean, bad)
    assert msg is not None and "image 2" in msg and "9" in msg


def test_a_half_level_budget_allows_what_the_release_rounds_to():
    """eps = (k + 1/2)/255: a delta at the budget's edge releases as k + 1 levels (round half up
    or, in float32, just above the half), which is within the budget; k + 2 is not."""
    for k in (0, 2, 8):
        eps = (k + 0.5) / 255
        clean = torch.full((1, 3, 4, 4), 100, dtype=torch.uint8)
        delta = torch.full((1, 3, 4, 4), eps)
        poisoned = release(clean, delta)
        assert int(poisoned.max()) - 100 in (k, k + 1)
        assert Budget("linf", eps).violation(clean, poisoned) is None
        assert Budget("linf", eps).violation(clean, clean + k + 1) is None
        assert Budget("linf", eps).violation(clean, clean + k + 2) is not None
    assert Budget("linf", 8.4 / 255).violation(clean, clean + 9) is not None  # 8.4 rounds to 8 at most


def test_l2_budget_allows_rounding_only():
    clean = torch.full((2, 1, 2, 2), 100, dtype=torch.uint8)
    p = clean.clone()
    p[0, 0, 0, 0] = 100 + 51  # 51/255 = 0.2 in L2
    assert Budget("l2", 0.2).violation(clean, p) is None
    p[0, 0, 0, 1] = 100 + 51  # now sqrt(2)*0.2 = 0.283 > 0.2 + 0.5/255*2
    assert Budget("l2", 0.2).violation(clean, p) is not None


def test_l0_budget_counts_positions_not_channels():
    clean = torch.zeros((2, 3, 4, 4), dtype=torch.uint8)
    p = clean.clone()
    p[0, :, 1, 1] = 255  # one pixel, all channels
    assert Budget("l0", 1).violation(clean, p) is None
    p[1, 0, 0, 0] = 1
    p[1, 0, 3, 3] = 1
    assert "image 1" in Budget("l0", 1).violation(clean, p)


def test_budget_rejects_wrong_dtype():
    clean = torch.zeros((1, 1, 2, 2), dtype=torch.uint8)
    assert "uint8" in Budget().violation(clean, clean.float())
