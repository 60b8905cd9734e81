"""
Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) for batches that mix datasets: the official MultiTrain
recipe (mixup alpha 0.8, CutMix alpha 1.0, one of the two per batch with probability 0.5, label smoothing 0.1,
soft-target cross-entropy). Off by default (config: mixup_alpha, cutmix_alpha).

In a batch that mixes datasets (sampling='mixed' or 'proportional'), a sample is only ever mixed with a sample of
THE SAME dataset: the datasets' labels live in different label spaces (class 3 of Kinetics is not class 3 of
Moments in Time, and a head has no output for the other's classes), so a blend of two datasets' samples has no
target. Each sample's partner is drawn among the samples of its own dataset in the batch (itself only when it is
its dataset's only sample, which leaves it unmixed).

Rather than soft-target tensors (one per label space), each sample keeps (y, y2, lam): its label, its partner's,
and its own weight. losses.Objective scores it lam * CE(logits, y) + (1 - lam) * CE(logits, y2), which equals the
cross-entropy against the two-hot target lam * onehot(y) + (1 - lam) * onehot(y2), label smoothing applied to both.

All draws come from a numpy generator seeded by train.py with (seed, iteration, slot, micro-batch, rank), so a
resumed run mixes exactly as the uninterrupted one did.
"""

import numpy as np
import torch


def partners(ds, rng):
    """For ds (B,) dataset ids, a partner index (B,) for every sample, of the same dataset and, when the dataset has
    two or more samples in the batch, another sample: the samples of each dataset in a random order, each paired
    with the next one, the last with the first (a random cycle within each dataset)."""
    B = len(ds)
    keys = ds.cpu().double() + torch.from_numpy(rng.random(B))    # (B,): dataset id + a random fraction
    order = keys.argsort()                                         # (B,): grouped by dataset, shuffled within
    grouped = ds.cpu()[order]                                      # (B,) sorted dataset ids
    start = torch.searchsorted(grouped, grouped)                   # (B,): where each one's dataset starts
    following = torch.arange(1, B + 1)                             # (B,): the next position
    last = (following == B) | (grouped[following.clamp(max=B - 1)] != grouped)
    following = torch.where(last, start, following)                # the last of a dataset cycles to its first
    out = torch.empty_like(order)
    out[order] = order[following]                                  # sample order[i] pairs with order[following[i]]
    return out.to(ds.device)


def cutmix_box(height, width, lam, rng):
    """(top, bottom, left, right) of a box of area about (1 - lam) * height * width, centred uniformly at random and
    clipped to the frame (as timm does)."""
    ratio = np.sqrt(1.0 - lam)
    h, w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return max(cy - h // 2, 0), min(cy + h // 2, height), max(cx - w // 2, 0), min(cx + w // 2, width)


def mix(x, y, ds, mixup_alpha, cutmix_alpha, rng):
    """
    Mix a training batch x (B, 3, H, W) or (B, 3, T, H, W) within each dataset of ds (B,). Returns (x mixed,
    (y2, lam)) with y2 (B,) the partners' labels and lam (B,) each sample's share of its own label. One lam is drawn
    per batch, lam ~ Beta(alpha, alpha); with both methods on, one of them is picked per batch with probability 0.5.
    CutMix pastes the same box in every frame of a clip, and its lam is the area actually kept after clipping.
    A sample that is its dataset's only one in the batch is its own partner: it stays unchanged (y2 = y).
    """
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    lam = float(rng.beta(cutmix_alpha, cutmix_alpha) if use_cutmix else rng.beta(mixup_alpha, mixup_alpha))
    other = partners(ds, rng)                                      # (B,)
    if use_cutmix:
        H, W = x.shape[-2:]
        top, bottom, left, right = cutmix_box(H, W, lam, rng)
        x = x.clone()
        x[..., top:bottom, left:right] = x[other][..., top:bottom, left:right]  # the same box in every frame
        lam = 1.0 - (bottom - top) * (right - left) / (H * W)
    else:
        x = lam * x + (1.0 - lam) * x[other]
    return x, (y[other], torch.full(y.shape, lam, device=y.device))
