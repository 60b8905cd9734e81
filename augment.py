"""
Training augmentations: what training does to a sample (RandAugment, random resized crops, random erasing,
repeated augmentation; data.py applies them to each image or clip it loads) and to a batch (mixup and CutMix;
train.py applies them to each micro-batch). All are off by default; the MultiTrain set-ups switch on the official
recipe (MultiTrain, Liang et al., arXiv:2209.12362; the release's AUG, DATA and MIXUP settings).

Sample-level: a clip (T, 3, H, W) goes through the transform as ONE tensor, so that every random choice (the ops
and magnitudes of RandAugment, the crop, the flip, the colours, the erased box) is drawn once and applied to all
its frames. All draws come from torch's global RNG, which data.py seeds with the sample's own seed (from (seed,
epoch, index), sampling.py): a sample is the same whichever worker or rank makes it, and a resumed run makes it
again exactly.

Batch-level: mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) for batches that mix datasets: the official
MultiTrain recipe is mixup alpha 0.8, CutMix alpha 1.0, one of the two per batch with probability 0.5, label
smoothing 0.1, soft-target cross-entropy (config: mixup_alpha, cutmix_alpha).

In a batch that mixes datasets (sampling='mixed' or 'proportional'), a sample is only ever mixed with a sample of
THE SAME dataset: the datasets' labels live in different label spaces (class 3 of Kinetics is not class 3 of
Moments in Time, and a head has no output for the other's classes), so a blend of two datasets' samples has no
target. Each sample's partner is drawn among the samples of its own dataset in the batch (itself only when it is
its dataset's only sample, which leaves it unmixed). (The release mixes every sample with the reversed batch,
whatever its dataset, giving the partner's label zero weight in the other head.)

Rather than soft-target tensors (one per label space), each sample keeps (y, y2, lam): its label, its partner's,
and its own weight. losses.Objective scores it lam * CE(logits, y) + (1 - lam) * CE(logits, y2), which equals the
cross-entropy against the two-hot target lam * onehot(y) + (1 - lam) * onehot(y2), label smoothing applied to both.
All batch-level draws come from a numpy generator seeded by train.py with (seed, iteration, slot, micro-batch,
rank), so a resumed run mixes exactly as the uninterrupted one did.
"""

import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF


# -----------------------------------------------------------------------------
# sample level: RandAugment as timm writes it ('rand-m7-n4-mstd0.5-inc1'), on whole clips

LEVEL_MAX = 10  # timm's magnitudes run from 0 to 10


def _signed(value):
    """value or -value, each with probability 1/2 (timm draws a direction for every signed op)."""
    return -value if torch.rand(()) < 0.5 else value


def _affine(frames, matrix, interpolation, fill=128):
    """frames (..., 3, H, W) uint8 warped by matrix ((a, b, c), (d, e, f)), PIL's convention: output pixel (x, y)
    takes the input's value at (a x + b y + c, d x + e y + f), in pixels; outside the input, fill (timm's grey).
    torchvision resamples tensors bilinearly at most, so this samples with grid_sample, which also does bicubic."""
    *lead, C, H, W = frames.shape
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing='ij')  # (H, W) pixel centres
    (a, b, c), (d, e, f) = matrix
    u, v = a * xs + b * ys + c, d * xs + e * ys + f                  # (H, W): where each output pixel reads
    grid = torch.stack([u / W * 2 - 1, v / H * 2 - 1], dim=-1)       # (H, W, 2) in grid_sample's [-1, 1]
    x = frames.reshape(-1, C, H, W).float()                          # (N, C, H, W), N = all leading dims
    out = F.grid_sample(x, grid.expand(x.shape[0], H, W, 2), mode=interpolation, padding_mode='border',
                        align_corners=False)                         # (N, C, H, W)
    outside = (u < 0) | (u >= W) | (v < 0) | (v >= H)                # (H, W)
    out = out.masked_fill(outside, fill).round().clamp(0, 255).to(torch.uint8)
    return out.reshape(*lead, C, H, W)


def _centred(frames, matrix):
    """matrix (2 x 2, output -> input) about the frame's centre, as a ((a, b, c), (d, e, f)) affine map."""
    H, W = frames.shape[-2:]
    (a, b), (d, e) = matrix
    cx, cy = W / 2, H / 2
    return (a, b, cx - a * cx - b * cy), (d, e, cy - d * cx - e * cy)


def _solarize_add(frames, add, threshold=128):
    """Pixels below threshold brightened by add (timm's SolarizeAdd)."""
    return torch.where(frames < threshold, (frames.int() + add).clamp(max=255).to(frames.dtype), frames)


# timm's "increasing" op set (inc1): every op grows stronger with the magnitude m in [0, 10]. Each entry maps
# (frames, m, interpolation) to the augmented frames, with timm's ranges: rotations up to 30 degrees, shears up to
# 0.3, translations up to 45% of the side, colour/contrast/brightness/sharpness factors 1 +- 0.9 m / 10, posterize
# to 4 - int(0.4 m) bits, solarize above 256 - int(25.6 m), solarize-add of int(11 m).
INCREASING_OPS = {
    'AutoContrast': lambda x, m, i: TF.autocontrast(x),
    'Equalize': lambda x, m, i: TF.equalize(x),
    'Invert': lambda x, m, i: TF.invert(x),
    'Rotate': lambda x, m, i: _affine(x, _centred(x, _rotation(_signed(m / LEVEL_MAX * 30.0))), i),
    'PosterizeIncreasing': lambda x, m, i: TF.posterize(x, 4 - int(m / LEVEL_MAX * 4)),
    'SolarizeIncreasing': lambda x, m, i: _solarize(x, 256 - int(m / LEVEL_MAX * 256)),
    'SolarizeAdd': lambda x, m, i: _solarize_add(x, int(m / LEVEL_MAX * 110)),
    'ColorIncreasing': lambda x, m, i: TF.adjust_saturation(x, 1.0 + _signed(m / LEVEL_MAX * 0.9)),
    'ContrastIncreasing': lambda x, m, i: TF.adjust_contrast(x, 1.0 + _signed(m / LEVEL_MAX * 0.9)),
    'BrightnessIncreasing': lambda x, m, i: TF.adjust_brightness(x, 1.0 + _signed(m / LEVEL_MAX * 0.9)),
    'SharpnessIncreasing': lambda x, m, i: TF.adjust_sharpness(x, 1.0 + _signed(m / LEVEL_MAX * 0.9)),
    'ShearX': lambda x, m, i: _affine(x, ((1.0, _signed(m / LEVEL_MAX * 0.3), 0.0), (0.0, 1.0, 0.0)), i),
    'ShearY': lambda x, m, i: _affine(x, ((1.0, 0.0, 0.0), (_signed(m / LEVEL_MAX * 0.3), 1.0, 0.0)), i),
    'TranslateXRel': lambda x, m, i: _affine(x, ((1.0, 0.0, _signed(m / LEVEL_MAX * 0.45) * x.shape[-1]),
                                                 (0.0, 1.0, 0.0)), i),
    'TranslateYRel': lambda x, m, i: _affine(x, ((1.0, 0.0, 0.0),
                                                 (0.0, 1.0, _signed(m / LEVEL_MAX * 0.45) * x.shape[-2])), i),
}


def _rotation(degrees):
    """The 2 x 2 output -> input map of a rotation by degrees (counter-clockwise on screen, as PIL's rotate)."""
    r = math.radians(degrees)
    return (math.cos(r), math.sin(r)), (-math.sin(r), math.cos(r))


def _solarize(frames, threshold):
    """Pixels >= threshold inverted; a threshold of 256 (magnitude 0) inverts none."""
    return frames if threshold > 255 else TF.solarize(frames, threshold)


def parse_rand_augment(text):
    """timm's RandAugment notation, e.g. 'rand-m7-n4-mstd0.5-inc1', as dict(magnitude, num_ops, magnitude_std).
    Raises ValueError on anything else; only the increasing op set (inc1) is implemented."""
    parts = text.split('-')
    options = dict(m=None, n='2', mstd='0', inc='0')
    for part in parts[1:]:
        match = re.fullmatch(r'(mstd|inc|m|n)([0-9.]+)', part)
        if not match:
            raise ValueError(f"rand_augment {text!r}: cannot read {part!r} (expected e.g. 'rand-m7-n4-mstd0.5-inc1')")
        options[match[1]] = match[2]
    if parts[0] != 'rand' or options['m'] is None:
        raise ValueError(f"rand_augment {text!r}: expected timm's notation 'rand-m<magnitude>-n<ops>[-mstd<std>]"
                         f"-inc1', e.g. 'rand-m7-n4-mstd0.5-inc1'")
    if options['inc'] != '1':
        raise ValueError(f"rand_augment {text!r}: only the increasing op set is implemented; add '-inc1'")
    return dict(magnitude=float(options['m']), num_ops=int(options['n']), magnitude_std=float(options['mstd']))


class RandAugment:
    """RandAugment (Cubuk et al., 2020) as timm draws it for 'rand-m<M>-n<N>-mstd<S>-inc1': N ops drawn uniformly
    with replacement from INCREASING_OPS, each applied with probability 1/2 at a magnitude drawn from N(M, S^2)
    and clipped to [0, 10], signed ops in a random direction. Input and output: uint8 (..., 3, H, W), one draw for
    all leading dimensions (all frames of a clip). torchvision's v2.RandAugment differs: every drawn op applies, at
    one fixed magnitude (no noise), from a set with Identity and without Invert and SolarizeAdd, posterizing to 4-8
    bits where timm's increasing set keeps 0-4, and its tensor warps are at most bilinear; hence this class.
    Geometric ops resample with `interpolation` ('bicubic' in the MultiTrain release)."""

    def __init__(self, text, interpolation='bilinear'):
        self.text, self.interpolation = text, interpolation
        self.__dict__.update(parse_rand_augment(text))
        self.ops = list(INCREASING_OPS)

    def __call__(self, frames):
        for k in torch.randint(len(self.ops), (self.num_ops,)).tolist():
            if torch.rand(()) >= 0.5:  # each op is applied with probability 1/2
                continue
            m = self.magnitude + self.magnitude_std * float(torch.randn(())) if self.magnitude_std else self.magnitude
            frames = INCREASING_OPS[self.ops[k]](frames, min(max(m, 0.0), LEVEL_MAX), self.interpolation)
        return frames

    def __repr__(self):
        return f'RandAugment({self.text!r}, interpolation={self.interpolation!r})'


def color_jitter(spec):
    """SimCLR's colour distortion at strength s = spec['color_jitter'] (0: none): brightness, contrast and
    saturation factors drawn from [1 - 0.8 s, 1 + 0.8 s], the hue turned by up to 0.2 s of a circle, in a random
    order; a clip gets one draw for all its frames."""
    s = spec['color_jitter']
    return [v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)] if s else []


def train_transform(spec, img_size, normalise, video):
    """The training transform of one dataset (spec: its settings, config.DATASET_DEFAULTS): an image (3, H, W) or
    a clip (T, 3, H, W) of uint8 in, a normalised (.., 3, S, S) float out, in the release's order:
      RandAugment on the decoded frames (rand_augment, aug_interpolation);
      the crop: a random resized crop of crop_scale of the area at an aspect in crop_aspect (images; videos with
        resized_crop, the release's relative jitter), or a random short side in short_side x img_size, then a
        random img_size crop (videos, IV-ViT's jitter);
      a horizontal flip (flip), colour jitter (color_jitter), normalisation;
      random erasing (random_erasing: with that probability one box of 2-33% of the area, aspect 0.3-3.3,
        filled with normal noise, the same box in every frame; timm's 'pixel' mode).
    The crops resample bilinearly, as PySlowFast's do."""
    steps = [RandAugment(spec['rand_augment'], spec['aug_interpolation'])] if spec['rand_augment'] else []
    if video and not spec['resized_crop']:
        low, high = spec['short_side']
        steps += [v2.RandomResize(round(low * img_size), round(high * img_size) + 1, antialias=True),
                  v2.RandomCrop(img_size)]
    else:
        steps.append(v2.RandomResizedCrop(img_size, scale=spec['crop_scale'], ratio=spec['crop_aspect'],
                                          antialias=True))
    steps += [v2.RandomHorizontalFlip(p=0.5 if spec['flip'] else 0.0), *color_jitter(spec), normalise]
    if spec['random_erasing']:
        steps.append(v2.RandomErasing(p=spec['random_erasing'], value='random'))
    return v2.Compose(steps)


# -----------------------------------------------------------------------------
# batch level: mixup and CutMix within each dataset of a batch


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
