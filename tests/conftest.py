"""Helpers shared by several test files: running train.py and eval.py as a user does, the small datasets they
train on, and the loop references of the loss equations (sample by sample, in plain Python)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import synthetic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def datasets(tmp_path_factory):
    """A 4-class image set (Tiny-ImageNet layout) and a 4-class video set (UCF101 layout), small enough to train
    in seconds; the video classes include a motion-only pair (MoveLeft / MoveRight)."""
    root = tmp_path_factory.mktemp('data')
    synthetic.write_synthetic_tinyimagenet(root / 'shapes', seed=0, num_classes=4, train_per_class=32, val_per_class=8)
    synthetic.write_synthetic_ucf101(root / 'motions', seed=0, classes=('MoveLeft', 'MoveRight', 'BounceBall', 'BounceBox'),
                                groups=25, clips=1, seconds=1.6)
    return root


def write_config(path, root, out_dir, **overrides):
    settings = dict(
        out_dir=str(out_dir),
        datasets={'shapes': dict(format='tinyimagenet', root=str(root / 'shapes'), batch_size=16),
                  'motions': dict(format='ucf101', root=str(root / 'motions'), batch_size=8, num_frames=4,
                                  clip_seconds=1.5)},
        img_size=32, patch_size=8, dim=32, depth=2, num_heads=2, num_workers=0,
        max_iters=40, eval_interval=20, log_interval=5, warmup_iters=5, lr=2e-3, min_lr=2e-4, device='cpu')
    settings.update(overrides)
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in settings.items()))
    return path


def run(*args, env=None):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})
    assert proc.returncode == 0, f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def read_log(out_dir):
    return [json.loads(line) for line in (out_dir / 'log.jsonl').read_text().splitlines()]


# ----------------------------------------------------------------------------- loop references of the loss terms

def variance_loop(z, eps):
    """Eq. 2 in the VICReg form, dimension by dimension, sample by sample."""
    rows = z.tolist()
    B, D = len(rows), len(rows[0])
    total = 0.0
    for j in range(D):
        mean = sum(rows[b][j] for b in range(B)) / B
        var = sum((rows[b][j] - mean) ** 2 for b in range(B)) / (B - 1)
        total += max(0.0, 1.0 - math.sqrt(var + eps))
    return total / D


def covariance_loop(z):
    """Eq. 3: every covariance entry as its own sum over samples, then the off-diagonal squares."""
    rows = z.tolist()
    B, D = len(rows), len(rows[0])
    means = [sum(rows[b][j] for b in range(B)) / B for j in range(D)]
    total = 0.0
    for i in range(D):
        for j in range(D):
            if i != j:
                c = sum((rows[b][i] - means[i]) * (rows[b][j] - means[j]) for b in range(B)) / (B - 1)
                total += c * c
    return total / D


def ce_loop(logit_rows, targets, label_smoothing):
    """Cross-entropy of lists of logits, one sample at a time: (1 - e) * -log p_y + e * mean_c -log p_c."""
    total = 0.0
    for row, y in zip(logit_rows, targets):
        log_z = math.log(sum(math.exp(v) for v in row))
        nll = [log_z - v for v in row]
        total += (1 - label_smoothing) * nll[y] + label_smoothing * sum(nll) / len(row)
    return total / len(logit_rows)


def project_loop(weight, y):
    """W y for one sample, with weight as nested lists (C_k rows of C_i)."""
    return [sum(w_cj * y_j for w_cj, y_j in zip(w_c, y)) for w_c in weight]
