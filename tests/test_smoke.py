"""Every set-up in config/ runs end to end: `python -m tools.smoke <config>` trains it shrunk on synthetic copies of
its datasets, written in their own layouts to a temporary folder, checkpoints, resumes from the checkpoint, and
evaluates it with eval.py. Objective-only files run after the MultiTrain demo's data set-up. A
set-up whose roots are missing stops at once with one message that says what to do."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import config
from conftest import REPO, run

CONFIGS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / 'config').glob('*.py'))


def command(path):
    """The arguments that run config file `path`: a file without datasets of its own (an objective file) goes after
    the demo set-up config/multitrain_demo.py."""
    has_data = config.load([str(REPO / path)]).datasets != config.load([]).datasets
    return [path] if has_data else ['config/multitrain_demo.py', path]


def smoke(args):
    """python -m tools.smoke args, one thread, as a user runs it."""
    return subprocess.run([sys.executable, '-m', 'tools.smoke', *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900, env={**os.environ, 'OMP_NUM_THREADS': '1'})


def real_roots(args):
    """The dataset roots that args name, absolute."""
    return [Path(REPO, spec['root']) for spec in config.load([str(REPO / a) for a in args]).datasets.values()]


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS)
def test_every_setup_runs_end_to_end_in_smoke_mode(path):
    args = command(path)
    existed = {root: root.exists() for root in real_roots(args)}
    proc = smoke(args)
    assert proc.returncode == 0, f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    out = proc.stdout
    assert 'smoke run in ' in out and 'max_iters: ' in out            # what it shrank, one line per setting
    assert 'resumed from ' in out and 'at iteration 1' in out         # the resume code path, mid-run
    assert '(iteration 2)' in out                                     # eval.py on the final checkpoint
    assert out.rstrip().splitlines()[-1].startswith('smoke OK')
    assert {root: root.exists() for root in existed} == existed       # the real roots were never written
    folder = out.split('smoke run in ', 1)[1].split(';', 1)[0]
    assert not os.path.exists(folder)                                 # the temporary folder is removed


@pytest.mark.slow
def test_flagship_smoke_under_torchrun_two_processes():
    proc = run('-m', 'tools.smoke', 'config/k400_mit.py', '--nproc=2')
    assert 'batches of 4 x 2 rank(s)' in proc.stdout                  # one mixed batch of 2 + 2 clips per rank
    assert proc.stdout.count('smoke OK') == 1 and 'resumed from ' in proc.stdout


def test_missing_roots_stop_with_one_message(tmp_path):
    """A set-up whose roots are missing says so once, names every missing root with where to get
    its dataset and the smoke command, and exits with status 1 before loading anything, without a traceback."""
    proc = subprocess.run([sys.executable, str(REPO / 'train.py'), str(REPO / 'config/multitrain_k400_mit_ssv2_actnet.py')],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # no data/ in tmp_path
    assert proc.returncode == 1 and proc.stdout == ''
    err = proc.stderr
    assert 'Traceback' not in err and err.count('dataset roots are missing') == 1
    for name, root, where in (('k400', 'data/kinetics400', 'Kinetics'), ('mit', 'data/Moments_in_Time_Raw', 'Moments'),
                              ('ssv2', 'data/something-something-v2', 'Something-Something'),
                              ('actnet', 'data/activitynet', 'ActivityNet')):
        line = next(l for l in err.splitlines() if l.strip().startswith(f'{name}:'))
        assert root in line and where in line and 'README.md' in line and '#real-data' in line
    assert f"python -m tools.smoke {REPO / 'config/multitrain_k400_mit_ssv2_actnet.py'}" in err


@pytest.mark.slow
def test_missing_roots_message_comes_once_under_torchrun(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                           str(REPO / 'train.py'), str(REPO / 'config/k400_mit.py')],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.count('dataset roots are missing') == 1  # rank 0's message, once
    assert 'train.py", line' not in proc.stderr                # no traceback from any rank (torchrun has its own)
