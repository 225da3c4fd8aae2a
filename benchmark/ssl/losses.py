"""Self-supervised and contrastive losses on embedding batches ``[B, D]``.

NT-Xent (SimCLR, Chen et al. 2020), SupCon (Khosla et al. 2020), the MoCo InfoNCE against a queue
(He et al. 2020), negative cosine (BYOL, Grill et al. 2020; SimSiam, Chen & He 2021) and the
alignment / uniformity losses of Wang & Isola (2020). No ``T / 0.07`` rescaling (the CP/TP code
multiplies the loss by it; it only rescales the gradient, i.e. the effective learning rate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pairwise_logits(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine similarities ``[2B, 2B]`` of the stacked views over ``temperature``, self-pairs at -inf."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    return logits.masked_fill(eye, float("-inf"))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalized-temperature cross entropy. ``z1``, ``z2``: ``[B, D]`` projections of two
    views of the same ``B`` images. Each of the ``2B`` views is an anchor whose positive is its other
    view and whose negatives are the other ``2B - 2`` views; mean over anchors."""
    b = len(z1)
    logits = _pairwise_logits(z1, z2, temperature)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(logits.device)
    return F.cross_entropy(logits, target)


def supcon(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, the ``L_out`` form). ``z1``, ``z2``: ``[B, D]``,
    ``labels``: ``[B]``. For each of the ``2B`` anchors, the mean over its positives (every other
    view with the same label) of ``-log softmax`` over all other views; mean over anchors.
    With distinct labels it equals :func:`nt_xent`."""
    logits = _pairwise_logits(z1, z2, temperature)
    y = torch.cat([labels, labels]).to(logits.device)
    eye = torch.eye(len(y), dtype=torch.bool, device=logits.device)
    pos = (y[:, None] == y[None, :]) & ~eye
    log_prob = logits.log_softmax(dim=1).masked_fill(eye, 0.0)
    return (-(log_prob * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()


def info_nce_queue(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2, *, key_grad: bool = False
) -> torch.Tensor:
    """MoCo's InfoNCE: query ``q`` ``[B, D]``, its positive key ``k`` ``[B, D]``, negatives ``queue``
    ``[K, D]``. All are L2-normalized here; the positive is class 0 of a ``1 + K``-way cross
    entropy. No gradient flows into ``k`` unless ``key_grad`` (the "dual-branch" gradient that
    the CP and TUE attacks send to their input through the key encoder)."""
    q = F.normalize(q.float(), dim=1)
    k = F.normalize((k if key_grad else k.detach()).float(), dim=1)
    neg = F.normalize(queue.detach().float(), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ neg.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def negative_cosine(p: torch.Tensor, z: torch.Tensor, *, stop_grad: bool = True) -> torch.Tensor:
    """``-cos(p, stopgrad(z))`` averaged over the batch (BYOL's ``2 - 2 cos`` up to an affine map;
    SimSiam's ``D``). ``p``: predictions ``[B, D]``; ``z``: targets ``[B, D]`` (detached here unless
    ``stop_grad`` is False: TUE's ``k_grad`` noise steps on SimSiam)."""
    return -F.cosine_similarity(p.float(), (z.detach() if stop_grad else z).float(), dim=1).mean()


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Wang & Isola's alignment ``E ||f(x) - f(y)||^alpha`` over positive pairs ``x[i], y[i]``
    (rows L2-normalized here)."""
    x, y = F.normalize(x.float(), dim=1), F.normalize(y.float(), dim=1)
    return (x - y).norm(dim=1).pow(alpha).mean()


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola's uniformity ``log E exp(-t ||f(x) - f(y)||^2)`` over distinct pairs of rows of
    ``x`` ``[B, D]`` (rows L2-normalized here). Lower is more uniform."""
    x = F.normalize(x.float(), dim=1)
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()
