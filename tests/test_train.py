"""End to end: train.py and eval.py as a user runs them, on tiny synthetic datasets in the real layouts."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, read_log, run, write_config


@pytest.mark.slow
def test_training_learns_then_eval_reproduces_it(datasets, tmp_path):
    out = tmp_path / 'run'
    cfg = write_config(tmp_path / 'cfg.py', datasets, out)
    proc = run('train.py', str(cfg))
    assert 'shapes' in proc.stdout and 'top-1' in proc.stdout  # the final table

    events = read_log(out)
    train = [e for e in events if e['event'] == 'train']
    evals = {e['iter']: e for e in events if e['event'] == 'eval'}
    assert [e['iter'] for e in train] == list(range(5, 41, 5))
    for name in ('shapes', 'motions'):
        assert sum(e[f'{name}/loss'] for e in train[-3:]) < sum(e[f'{name}/loss'] for e in train[:3])
        assert evals[40][f'{name}/top1'] > evals[0][f'{name}/top1']
    assert evals[40]["shapes/top1"] > 40  # 4 classes: chance is 25%
    assert json.loads((out / 'config.json').read_text())['dim'] == 32

    # eval.py on the checkpoint, with the run's own config: the same numbers as training's final evaluation
    run('eval.py', f'--out_dir={out}')
    result = json.loads((out / 'eval.json').read_text())
    assert result['iter_num'] == 40
    for name in ('shapes', 'motions'):
        assert result['results'][name]['top1'] == pytest.approx(evals[40][f'{name}/top1'])
        assert result['results'][name]['n'] == evals[40][f'{name}/n']

    # multi-view testing runs and sees every sample once
    run('eval.py', f'--out_dir={out}', '--num_temporal_clips=2', '--num_spatial_crops=3')
    result = json.loads((out / 'eval_2x3.json').read_text())  # named after its views: eval.json stays
    assert result['views'] == {'shapes': '3', 'motions': '2x3'}
    assert result['results']['motions']['n'] == evals[40]['motions/n']


def test_resume_continues_from_the_checkpoint(datasets, tmp_path):
    out = tmp_path / 'run'
    cfg = write_config(tmp_path / 'cfg.py', datasets, out, max_iters=4, eval_interval=2, log_interval=1)
    run('train.py', str(cfg))
    proc = run('train.py', str(cfg), '--init_from=resume', '--max_iters=6')
    assert 'resumed from' in proc.stdout and 'iteration 4' in proc.stdout
    iters = [e['iter'] for e in read_log(out) if e['event'] == 'train']
    assert iters == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_torchrun_two_processes_gloo(datasets, tmp_path):
    out = tmp_path / 'run'
    cfg = write_config(tmp_path / 'cfg.py', datasets, out, max_iters=4, eval_interval=4, log_interval=2)
    run('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', 'train.py', str(cfg))
    events = read_log(out)
    assert [e['iter'] for e in events if e['event'] == 'train'] == [2, 4]  # rank 0 alone writes the log
    final = [e for e in events if e['event'] == 'eval'][-1]
    # each rank scored its own shard; the summed counts cover the whole validation split exactly once
    assert final['shapes/n'] == 4 * 8
    assert final['motions/n'] == 4 * 7  # split 1: groups 1-7 are the test set, 1 clip each
    assert (out / 'ckpt.pt').exists()


def test_config_errors_are_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, 'train.py', '--lrr=1'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown config key 'lrr'" in proc.stderr and 'lr' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_killed_run_resumes_bit_for_bit(datasets, tmp_path):
    """SIGKILL a run after its second checkpoint, resume it: the final weights and optimizer state equal those
    of the uninterrupted run exactly (CPU). Stochastic depth is on, so the RNG state must be restored too."""
    import signal
    import time

    import torch

    settings = dict(max_iters=24, eval_interval=4, log_interval=4, drop_path=0.2, num_workers=1)
    whole = tmp_path / 'whole'
    run('train.py', str(write_config(tmp_path / 'whole.py', datasets, whole, **settings)))

    killed = tmp_path / 'killed'
    cfg = write_config(tmp_path / 'killed.py', datasets, killed, **settings)
    proc = subprocess.Popen([sys.executable, 'train.py', str(cfg)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        ckpt = killed / 'ckpt.pt'
        if ckpt.exists() and torch.load(ckpt, weights_only=False)['iter_num'] >= 8:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = torch.load(killed / 'ckpt.pt', weights_only=False)['iter_num']
    assert 8 <= stopped_at < 24, f'the run was not stopped mid-way (checkpoint at {stopped_at})'

    run('train.py', str(cfg), '--init_from=resume')
    a = torch.load(whole / 'ckpt.pt', weights_only=False)
    b = torch.load(killed / 'ckpt.pt', weights_only=False)
    assert a['iter_num'] == b['iter_num'] == 24
    for key, value in a['model'].items():
        assert torch.equal(value, b['model'][key]), key
    for (i, sa), (j, sb) in zip(a['optimizer']['state'].items(), b['optimizer']['state'].items()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa), i
    assert a['results'] == b['results']


def whole_and_resumed(datasets, tmp_path, settings, at):
    """A whole run, and a run resumed from the whole run's keep_last checkpoint of iteration `at`: (that
    checkpoint, the final checkpoints of both, their out_dirs)."""
    import torch

    whole, resumed = tmp_path / 'whole', tmp_path / 'resumed'
    run('train.py', str(write_config(tmp_path / 'whole.py', datasets, whole, **settings)))
    resumed.mkdir()
    (resumed / 'ckpt.pt').write_bytes((whole / f'ckpt_{at:07d}.pt').read_bytes())
    run('train.py', str(write_config(tmp_path / 'resumed.py', datasets, resumed, **settings)), '--init_from=resume')
    load = lambda path: torch.load(path, weights_only=False)
    return load(whole / f'ckpt_{at:07d}.pt'), load(whole / 'ckpt.pt'), load(resumed / 'ckpt.pt'), whole, resumed


@pytest.mark.slow
def test_float16_run_resumes_exactly_with_its_loss_scale(datasets, tmp_path):
    """fp16 autocast with loss scaling, per-dataset updates, 2 micro-batches: a run resumed from its checkpoint of
    iteration 10 (a copy kept by keep_last) ends exactly where the whole run ends. The scale has already dropped
    by iteration 10 (a gradient overflowed), so a resume that forgot the scaler's state would differ."""
    import torch

    settings = dict(max_iters=20, eval_interval=10, log_interval=2, dtype='float16', update='per_dataset',
                    grad_accum=2, keep_last=2)
    at10, a, b, whole, resumed = whole_and_resumed(datasets, tmp_path, settings, 10)
    assert at10['iter_num'] == 10 and at10['scaler']['scale'] < 2.0 ** 16, at10['scaler']
    assert a['iter_num'] == b['iter_num'] == 20 and a['scaler'] == b['scaler']
    for key, value in a['model'].items():
        assert torch.equal(value, b['model'][key]), key
    scale = lambda out: [e['loss_scale'] for e in read_log(out) if e['event'] == 'train' and e['iter'] > 10]
    assert scale(whole) == scale(resumed)


@pytest.mark.slow
def test_sgd_with_a_step_schedule_resumes_exactly(datasets, tmp_path):
    """CoVeR's optimizer and schedule (optimizer='sgd' with momentum, lr_schedule='step'): a run resumed from its
    checkpoint of iteration 6 ends exactly where the whole run ends, momentum buffers included, and its learning
    rate follows the steps at the milestones (one before the resume point, one after) on both sides of it."""
    import torch

    settings = dict(max_iters=12, eval_interval=6, log_interval=1, keep_last=2, optimizer='sgd', momentum=0.9,
                    lr=0.05, lr_schedule='step', lr_milestones=[4, 9], lr_factor=0.1, warmup_iters=2,
                    sampling='proportional', update='per_round', loss_weights={'shapes': 0.5})
    at6, a, b, whole, resumed = whole_and_resumed(datasets, tmp_path, settings, 6)
    assert at6['iter_num'] == 6 and all('momentum_buffer' in s for s in at6['optimizer']['state'].values())
    assert a['iter_num'] == b['iter_num'] == 12
    for key, value in a['model'].items():
        assert torch.equal(value, b['model'][key]), key
    for (i, sa), (j, sb) in zip(a['optimizer']['state'].items(), b['optimizer']['state'].items()):
        assert torch.equal(sa['momentum_buffer'], sb['momentum_buffer']), i
    lrs = lambda out: {e['iter']: e['lr'] for e in read_log(out) if e['event'] == 'train'}
    # the lr used at iteration it is logged at it + 1: warm-up 0.05 * (it + 1) / 3, then 0.05, 0.005 from 4, 5e-4 from 9
    expected = [0.05 / 3, 0.05 * 2 / 3, 0.05, 0.05, 0.005, 0.005, 0.005, 0.005, 0.005, 5e-4, 5e-4, 5e-4]
    assert [lrs(whole)[it + 1] for it in range(12)] == pytest.approx(expected, rel=1e-12)
    assert [lrs(resumed)[it + 1] for it in range(6, 12)] == pytest.approx(expected[6:], rel=1e-12)
