"""Runs that survive a requeue, a lost worker or a second node (issue 26): init_from='auto' resumes a relaunched
command; a torchrun job killed as a whole and launched again ends exactly where the uninterrupted job ends; two
launchers of one node each train the same model as one launcher of two processes; torchrun's own restarts
continue from the last checkpoint. And the checkpoint's and the device's mistakes end in one line naming the path
and the fix: resume without a checkpoint, a GPU that is not there, a full disk, a damaged ckpt.pt."""

import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

import pytest
import torch

from conftest import REPO, read_log, run, write_config
from test_ddp import assert_same_parameters, params


def fails(*args):
    """Run train.py expecting it to stop on a user's mistake: returns its stderr, which holds no traceback."""
    proc = subprocess.run([sys.executable, 'train.py', *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 1, f'{args}: exit status {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}'
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr


def the_line(stderr, *words):
    """The one line of stderr that holds every word (progress bars aside, the message is a single line)."""
    lines = [line for line in stderr.splitlines() if all(w in line for w in words)]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun(*args, nproc=2):
    """The arguments of `python` that run torchrun with nproc processes on this node."""
    return ['-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', *args]


def kill_job(pid):
    """SIGKILL a launcher and every process below it at once, as a scheduler ends a preempted job. torchrun starts
    each worker in a session of its own, so killing the launcher's process group alone would leave them running."""
    tree, todo = [], [pid]
    while todo:
        parent = todo.pop()
        tree.append(parent)
        todo += [int(p) for p in subprocess.run(['pgrep', '-P', str(parent)], capture_output=True,
                                                text=True).stdout.split()]
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# a finished 4-iteration run with checkpoints at 2 and 4, ckpt_0000004.pt (keep_last) and ckpt_best.pt
FINISHED = dict(max_iters=4, eval_interval=2, log_interval=1, keep_last=1, save_best=True)


@pytest.fixture(scope='module')
def finished(datasets, tmp_path_factory):
    """A run trained once for the tests below, which each take a copy: (its out_dir, what it printed)."""
    out = tmp_path_factory.mktemp('finished') / 'run'
    return out, run('train.py', str(write_config(out.parent / 'cfg.py', datasets, out, **FINISHED))).stdout


def copy_of(finished, datasets, tmp_path):
    """A copy of the finished run in tmp_path, and its config file (the same settings, the copy's out_dir)."""
    out = tmp_path / 'run'
    shutil.copytree(finished[0], out)
    return str(write_config(tmp_path / 'cfg.py', datasets, out, **FINISHED)), out


def test_init_from_auto_starts_resumes_and_finishes(finished, datasets, tmp_path):
    """The same command again and again: from scratch at first, then (finished) an evaluation only, then with a
    larger max_iters a continuation; a max_iters below the checkpoint's iteration is refused."""
    assert f"no checkpoint in {finished[0]}: starting from scratch" in finished[1]
    cfg, out = copy_of(finished, datasets, tmp_path)
    again = run('train.py', cfg).stdout
    assert f'resumed from {out / "ckpt.pt"} at iteration 4 = max_iters' in again and 'top-1' in again
    events = read_log(out)
    assert [e['iter'] for e in events if e['event'] == 'train'] == [1, 2, 3, 4]  # nothing trained twice
    assert [e['iter'] for e in events if e['event'] == 'eval'] == [0, 2, 4, 4]
    assert 'at iteration 4' in run('train.py', cfg, '--max_iters=6').stdout
    assert [e['iter'] for e in read_log(out) if e['event'] == 'train'] == [1, 2, 3, 4, 5, 6]
    line = the_line(fails(cfg, '--max_iters=5'), str(out / 'ckpt.pt'))
    assert 'at iteration 6, past max_iters=5' in line and '--max_iters=6' in line


def test_resume_without_a_checkpoint_is_one_line(datasets, tmp_path):
    out = tmp_path / 'empty'
    line = the_line(fails(str(write_config(tmp_path / 'cfg.py', datasets, out)), '--init_from=resume'),
                    str(out / 'ckpt.pt'))
    assert 'no checkpoint at' in line and '--init_from=scratch' in line and '--init_from=auto' in line


def test_a_model_of_other_settings_is_one_line(finished, datasets, tmp_path):
    """With init_from='auto' by default, a changed model in an old out_dir is the likely slip: say so, and keep
    the run's config.json."""
    cfg, out = copy_of(finished, datasets, tmp_path)
    line = the_line(fails(cfg, '--dim=48'), str(out / 'ckpt.pt'))
    assert 'trained with other settings' in line and 'size mismatch' in line and '--init_from=scratch' in line
    assert '"dim": 32' in (out / 'config.json').read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_cuda_without_a_gpu_is_one_line(datasets, tmp_path):
    line = the_line(fails(str(write_config(tmp_path / 'cfg.py', datasets, tmp_path / 'run')), '--device=cuda'),
                    "device='cuda'")
    assert 'no GPU' in line and '--device=cpu' in line


def test_a_damaged_checkpoint_names_the_earlier_ones(finished, datasets, tmp_path):
    """A ckpt.pt cut short (as a full disk or an unfinished copy leaves it): one line saying so, with the run's
    other checkpoints (keep_last, save_best), one of which then resumes."""
    cfg, out = copy_of(finished, datasets, tmp_path)
    whole = (out / 'ckpt.pt').read_bytes()
    (out / 'ckpt.pt').write_bytes(whole[:len(whole) // 2])
    line = the_line(fails(cfg), str(out / 'ckpt.pt'))
    assert 'is damaged' in line and str(out / 'ckpt_0000004.pt') in line and str(out / 'ckpt_best.pt') in line
    (out / 'ckpt.pt').write_bytes((out / 'ckpt_0000004.pt').read_bytes())
    assert 'at iteration 4' in run('train.py', cfg).stdout
    (out / 'ckpt.pt').write_bytes(whole[:100])
    for name in ('ckpt_0000004.pt', 'ckpt_best.pt'):
        (out / name).unlink()
    assert 'kept no earlier checkpoint' in the_line(fails(cfg), str(out / 'ckpt.pt'))


@pytest.mark.skipif(not os.path.exists('/dev/full'), reason='needs /dev/full, where every write fails with ENOSPC')
def test_a_full_disk_keeps_the_last_checkpoint_and_says_what_it_needs(finished, datasets, tmp_path):
    """The checkpoint's temporary file is made a link to /dev/full, so that writing it fails as on a full disk
    (the kernel's ENOSPC, through torch.save). The run stops with one line and removes the partial file, and the
    previous ckpt.pt is intact."""
    cfg, out = copy_of(finished, datasets, tmp_path)
    os.symlink('/dev/full', out / 'ckpt.pt.tmp')
    line = the_line(fails(cfg, '--max_iters=6'), f'cannot write {out / "ckpt.pt"}')
    assert f'the disk of {out} is full' in line and 'a checkpoint needs about 0.4 MB' in line
    assert not os.path.lexists(out / 'ckpt.pt.tmp')
    assert torch.load(out / 'ckpt.pt', weights_only=False)['iter_num'] == 4


# a 2-process job of 8 iterations with a checkpoint every 2 (and its keep_last copy), and its weights when nothing
# interrupts it
JOB = dict(max_iters=8, eval_interval=2, log_interval=2, num_workers=1, eval_max_batches=1, keep_last=1)


@pytest.fixture(scope='module')
def uninterrupted(datasets, tmp_path_factory):
    """The job run once: its out_dir."""
    out = tmp_path_factory.mktemp('uninterrupted') / 'run'
    run(*torchrun('--standalone', 'train.py', str(write_config(out.parent / 'cfg.py', datasets, out, **JOB))))
    return out


def start_job(command, out):
    """Start a torchrun job and return it once its first checkpoint is on disk."""
    job = subprocess.Popen([sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 300
    while time.time() < deadline and job.poll() is None and not (out / 'ckpt.pt').exists():
        time.sleep(0.02)
    return job


def bytes_waiting(pipe):
    """How many bytes the pipe holds that nobody has read."""
    return struct.unpack('i', fcntl.ioctl(pipe, termios.FIONREAD, b'\0' * 4))[0]


def start_job_stuck_at(command, out, iteration, checkpoint_bytes):
    """Start a torchrun job and return (the job, a pipe) once the job is stuck at `iteration`, with that
    iteration's ckpt.pt on disk. The temporary file of that iteration's keep_last copy (ckpt_<iteration>.pt.tmp,
    written after ckpt.pt) is a named pipe that the test holds open and never reads. Once the first bytes of the
    copy are in the pipe, rank 0 is writing a checkpoint larger than the pipe holds: its write blocks, and the job
    cannot go on, however fast or loaded the machine (a test that killed the job when ckpt.pt appeared sometimes
    found it finished: with both cores busy, the kill came late)."""
    out.mkdir(parents=True)
    os.mkfifo(out / f'ckpt_{iteration:07d}.pt.tmp')
    pipe = os.open(out / f'ckpt_{iteration:07d}.pt.tmp', os.O_RDONLY | os.O_NONBLOCK)
    assert checkpoint_bytes > fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ), 'the pipe would hold the whole checkpoint'
    job = subprocess.Popen([sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 300
    while time.time() < deadline and job.poll() is None and bytes_waiting(pipe) == 0:
        time.sleep(0.02)
    assert bytes_waiting(pipe) > 0, f'the job did not reach iteration {iteration} (exit status {job.poll()})'
    assert torch.load(out / 'ckpt.pt', weights_only=False)['iter_num'] == iteration
    return job, pipe


@pytest.mark.slow
def test_a_requeued_torchrun_job_ends_like_the_uninterrupted_one(datasets, tmp_path, uninterrupted):
    """A 2-worker job killed as a whole (launcher, workers and their loader processes) in the middle of writing a
    checkpoint, then launched again with the identical command, as a scheduler requeues it: it ends with exit
    status 0 and exactly the weights of the job that was never interrupted (CPU, float32)."""
    out = tmp_path / 'requeued'
    command = torchrun('--standalone', 'train.py', str(write_config(tmp_path / 'cfg.py', datasets, out, **JOB)))
    job, pipe = start_job_stuck_at(command, out, 4, (uninterrupted / 'ckpt.pt').stat().st_size)
    kill_job(job.pid)
    job.communicate()
    os.close(pipe)
    # what a kill leaves of a temporary file: its first bytes
    (out / 'ckpt_0000004.pt.tmp').unlink()
    (out / 'ckpt_0000004.pt.tmp').write_bytes(b'PK\x03\x04' + bytes(1000))

    again = run(*command)
    assert f'resumed from {out / "ckpt.pt"} at iteration 4' in again.stdout
    assert torch.load(out / 'ckpt.pt', weights_only=False)['iter_num'] == 8
    assert_same_parameters(params(uninterrupted), params(out), bound=0.0)


@pytest.mark.slow
def test_torchrun_restarts_a_lost_worker_and_ends_like_the_uninterrupted_job(datasets, tmp_path, uninterrupted):
    """One worker SIGKILLed after the first checkpoint; torchrun (--max-restarts=1) starts a new round of both
    workers, which continues from the checkpoint: exit status 0 and the uninterrupted job's weights. Before
    train.py put each round's keys under a prefix of their own, the new round met the old round's keys in the
    store that torchrun keeps across rounds, and failed or hung in about half the tries (pytorch issue 135712).
    --standalone is a c10d rendezvous on this machine: the store is the same as with --rdzv-backend=c10d."""
    out = tmp_path / 'restarted'
    cfg = str(write_config(tmp_path / 'cfg.py', datasets, out, **JOB))
    job = start_job(torchrun('--standalone', '--max-restarts=1', 'train.py', cfg), out)
    workers = subprocess.run(['pgrep', '-P', str(job.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2, workers
    os.kill(int(workers[-1]), signal.SIGKILL)
    output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output[-3000:]
    assert f'resumed from {out / "ckpt.pt"}' in output
    assert_same_parameters(params(uninterrupted), params(out), bound=0.0)


@pytest.mark.slow
def test_two_launchers_of_one_process_train_as_one_launcher_of_two(datasets, tmp_path, uninterrupted):
    """Multi-node on one machine: two torchrun launchers (--nnodes=2, one process each) meet at a c10d rendezvous
    and train the same model, exactly, as one launcher with two processes. They share out_dir, as the nodes of a
    cluster share a filesystem."""
    out = tmp_path / 'two'
    cfg = str(write_config(tmp_path / 'cfg.py', datasets, out, **JOB))
    command = [sys.executable, *torchrun(*two_nodes(), 'train.py', cfg, nproc=1)]
    outputs, codes = launch_nodes(command, command)
    assert codes == [0, 0], '\n'.join(o[-3000:] for o in outputs)
    assert sum('batches of 16 x 2 rank(s)' in o for o in outputs) == 1  # rank 0 prints: a world of 2
    assert_same_parameters(params(uninterrupted), params(out), bound=0.0)


def two_nodes():
    """torchrun's arguments for one of two nodes meeting at a c10d rendezvous on this machine."""
    return ['--nnodes=2', '--rdzv-backend=c10d', f'--rdzv-endpoint=127.0.0.1:{free_port()}', '--rdzv-id=nodes']


def launch_nodes(*commands):
    """Run the launchers together: (their outputs, their exit statuses)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    nodes = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env) for command in commands]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    return outputs, [node.returncode for node in nodes]


@pytest.mark.slow
def test_nodes_that_see_different_out_dirs_stop_with_one_line(datasets, tmp_path, uninterrupted):
    """Two nodes without a shared filesystem: one finds the finished checkpoint, the other an empty out_dir. Both
    stop before the first step, and rank 0 says why (torchrun then adds its own report of the failed workers)."""
    shutil.copytree(uninterrupted, tmp_path / 'seen')
    cfg = str(write_config(tmp_path / 'cfg.py', datasets, tmp_path / 'seen', **JOB))
    rendezvous = two_nodes()
    command = [sys.executable, *torchrun(*rendezvous, 'train.py', cfg, nproc=1)]
    outputs, codes = launch_nodes(command, [*command, f'--out_dir={tmp_path / "unseen"}'])
    assert 0 not in codes, '\n'.join(o[-3000:] for o in outputs)
    lines = [line for o in outputs for line in o.splitlines() if 'ranks start at different iterations (0 to 8)' in line]
    assert len(lines) == 1 and 'shared filesystem' in lines[0], '\n'.join(o[-3000:] for o in outputs)
