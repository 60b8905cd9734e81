"""What a user does with a trained run: classify files with predict.py, and fine-tune a new run from its
checkpoint (--init_from=PATH). One tiny co-trained run serves both: two image classes told apart by colour
(red square, blue square) and two video classes by colour and shape (BounceBall: a red circle, BounceBox: a blue
square), so that a few dozen iterations learn them for sure."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, read_log, run, write_config
from tools import encode, synthetic


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(data root, the run's out_dir) of a co-trained run on 2 image + 2 video classes."""
    root = tmp_path_factory.mktemp('data')
    synthetic.write_synthetic_tinyimagenet(root / 'shapes', seed=0, num_classes=2, train_per_class=24,
                                           val_per_class=6, size=32)
    synthetic.write_synthetic_ucf101(root / 'motions', seed=0, classes=('BounceBall', 'BounceBox'), groups=12,
                                     clips=1, seconds=1.2)
    out = root / 'run'
    cfg = write_config(root / 'cfg.py', root, out, max_iters=30, eval_interval=30, log_interval=10)
    run('train.py', str(cfg))
    final = [e for e in read_log(out) if e['event'] == 'eval'][-1]
    assert final['shapes/top1'] == 100 and final['motions/top1'] == 100  # the easy classes are learnt
    return root, out


def predict(*args):
    return subprocess.run([sys.executable, 'predict.py', *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'})


def top1(stdout, path, head):
    """The first class name predict.py prints for head under the file's line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(str(path)))
    line = next(line for line in lines[start + 1:] if line.strip().startswith(f'{head} ('))
    return line.split(': ', 1)[1].split(',')[0].rsplit(' ', 1)


@pytest.mark.slow  # with the module's training run (~25 s of one core)
def test_predict_names_the_classes_of_a_new_image_and_video_and_skips_a_bad_file(trained, tmp_path):
    root, out = trained
    image = tmp_path / 'blue_square.png'
    Image.fromarray(synthetic.render_image('blue', 'square', np.random.default_rng(123), 40)[0]).save(image)
    video = tmp_path / 'red_ball.avi'
    frames = synthetic.render_video('BounceBall', np.random.default_rng(321), 64, 48, 30)
    encode.write_video(video, frames, 25, 'mpeg4')
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video at all' * 100)

    proc = predict(image, broken, video, f'--out_dir={out}', '--num_temporal_clips=2', '--num_spatial_crops=3')
    assert proc.returncode == 1, proc.stderr  # one file could not be read
    named = [line for line in proc.stderr.splitlines() if str(broken) in line]
    assert len(named) == 1 and 'skipped' in named[0] and 'Traceback' not in proc.stderr
    name, p = top1(proc.stdout, image, 'shapes')
    assert name == 'blue square' and float(p) > 0.5
    name, p = top1(proc.stdout, video, 'motions')
    assert name == 'BounceBall' and float(p) > 0.5
    assert 'motions (2x3 views)' in proc.stdout and 'shapes (3 views)' in proc.stdout
    # every head ranks every file: the image on the video head too, the top 2 of its 2 classes
    assert top1(proc.stdout, image, 'motions')[0] in ('BounceBall', 'BounceBox')

    one = predict(video, f'--ckpt={out / "ckpt.pt"}', '--dataset=motions')
    assert one.returncode == 0, one.stderr
    assert 'motions (1x1 view): BounceBall' in one.stdout and 'shapes (' not in one.stdout
    wrong = predict(video, f'--out_dir={out}', '--dataset=k400')
    assert wrong.returncode == 1 and 'no head' in wrong.stderr and 'shapes, motions' in wrong.stderr


def test_fine_tune_keeps_the_backbone_and_matching_heads_and_starts_new_ones(trained, tmp_path):
    """Co-train, then fine-tune on one dataset with another class count (and keep one that matches): the
    backbone and the matching head start from the checkpoint, the other head fresh; the optimizer, schedule and
    iteration count start over, and the config is the new run's."""
    root, out = trained
    synthetic.write_synthetic_ucf101(tmp_path / 'three', seed=1, classes=('BounceBall', 'BounceBox', 'MoveLeft'),
                                     groups=10, clips=1, seconds=1.2)
    new = tmp_path / 'fine'
    cfg = write_config(tmp_path / 'fine.py', root, new, max_iters=1, eval_interval=1, log_interval=1, lr=0.0,
                       min_lr=0.0, warmup_iters=0, weight_decay=0.0, init_from=str(out / 'ckpt.pt'),
                       datasets={'shapes': dict(format='tinyimagenet', root=str(root / 'shapes'), batch_size=16),
                                 'motions': dict(format='ucf101', root=str(tmp_path / 'three'), batch_size=8,
                                                 num_frames=4, clip_seconds=1.0)})
    proc = run('train.py', str(cfg))
    assert f'fine-tuning from {out / "ckpt.pt"} (iteration 30)' in proc.stdout
    assert 'heads of shapes;' in proc.stdout
    assert "motions (3 classes; the checkpoint's has 2)" in proc.stdout

    old = torch.load(out / 'ckpt.pt', weights_only=True)
    fine = torch.load(new / 'ckpt.pt', weights_only=True)
    assert fine['iter_num'] == 1 and fine['config']['max_iters'] == 1  # its own count and config
    assert [e['iter'] for e in read_log(new) if e['event'] == 'train'] == [1]
    assert fine['optimizer']['state'][0]['step'] == 2  # a fresh AdamW: one step per dataset, not the old 60 more
    # lr = 0 and no weight decay: the step changes nothing, so the weights are what was loaded
    for key, value in fine['model'].items():
        if key.startswith('heads.motions'):
            assert value.shape != old['model'][key].shape or not torch.equal(value, old['model'][key])
        else:
            assert torch.equal(value, old['model'][key]), key
    assert fine['model']['heads.motions.weight'].shape == (3, 32)


def test_fine_tune_from_another_backbone_says_what_does_not_fit(trained, tmp_path):
    root, out = trained
    cfg = write_config(tmp_path / 'wide.py', root, tmp_path / 'wide', dim=48, init_from=str(out / 'ckpt.pt'))
    proc = subprocess.run([sys.executable, 'train.py', str(cfg)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'its backbone does not fit this config' in proc.stderr and 'dim' in proc.stderr
    missing = subprocess.run([sys.executable, 'train.py', str(cfg), f'--init_from={tmp_path / "nothing.pt"}'],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and 'nothing.pt: no such checkpoint' in missing.stderr
