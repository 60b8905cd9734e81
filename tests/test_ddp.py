"""Distributed training you can trust (issue 6): the same parameters from 1 or 2 processes and with gradient
accumulation, a clean stop on SIGTERM, a stop on a non-finite loss that keeps the good checkpoint, checkpoint
copies, and a torchrun job that exits when one of its processes dies."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tools import synthetic
from conftest import REPO, read_log, run, write_config

CLASSES = ('MoveLeft', 'MoveRight', 'BounceBall', 'BounceBox')


@pytest.fixture(scope='module')
def three(tmp_path_factory):
    """Images (Tiny-ImageNet layout) and two video datasets of the same classes in other layouts and names
    (UCF101 AVI, Kinetics MP4 with audio): enough for round-robin, proportional and mixed batches."""
    root = tmp_path_factory.mktemp('data')
    synthetic.write_synthetic_tinyimagenet(root / 'shapes', seed=0, num_classes=4, train_per_class=16, val_per_class=4)
    synthetic.write_synthetic_ucf101(root / 'motions', seed=0, classes=CLASSES, groups=12, clips=1, seconds=1.6)
    synthetic.write_synthetic_kinetics(root / 'moves', seed=1, classes=CLASSES, train_per_class=6, val_per_class=1,
                                  seconds=1.6)
    return root


def settings(root, per_rank=1, **overrides):
    """A tiny run; batch sizes are per rank, so per_rank=2 with one process matches per_rank=1 with two."""
    video = dict(num_frames=4, clip_seconds=1.5)
    sets = {'shapes': dict(format='tinyimagenet', root=str(root / 'shapes'), batch_size=4 * per_rank),
                'motions': dict(format='ucf101', root=str(root / 'motions'), batch_size=2 * per_rank, **video),
                'moves': dict(format='kinetics', root=str(root / 'moves'), batch_size=2 * per_rank, **video)}
    return {**dict(datasets=sets, max_iters=5, eval_interval=5, eval_max_batches=1, log_interval=1,
                   warmup_iters=0, lr=3e-3, min_lr=3e-3), **overrides}


MULTITRAIN = dict(sampling='mixed', update='per_round', projection='add', projection_init='normal',
                  var_weight=1.0, cov_weight=1.0, uncertainty=True, expander_hidden=16, expander_out=8)


def params(out):
    ckpt = torch.load(out / 'ckpt.pt', weights_only=False)
    return {**{f'model.{k}': v for k, v in ckpt['model'].items()},
            **{f'objective.{k}': v for k, v in ckpt['objective'].items()}}


# The equivalence tests step with plain SGD: a parameter then moves by lr times its gradient, so the difference
# between two runs is linear in the difference of their gradients, which is float32 rounding of sums taken in
# another order (~1e-7 of a gradient). With Adam it is not: its first step is lr * g / (|g| + eps), and for an
# element whose true gradient is of the order of eps = 1e-8 (measured: 6.6e-9 on one weight, which the two runs
# summed to 6.66e-9 and 6.55e-9) the rounding of g moves the step by up to lr * |dg| / eps, 1e-5 after one
# step, which made the 1e-5 bound below fail on 3 of 10 seeds. With SGD (lr 0.1, momentum 0.9, 5 steps) a
# parameter moves by at most lr * 12.3 times its largest gradient difference (sum over steps of momentum's
# geometric weights), so the bound 1e-5 allows gradient differences of ~8e-6 (measured differences of
# parameters: <= 5.4e-8 on seeds 3, 7, 8), while a real error (the informative gradient not scaled by the
# number of ranks) moves parameters by 2.7e-2.
EXACT = dict(optimizer='sgd', lr=0.1, min_lr=0.1, momentum=0.9)


def assert_same_parameters(a, b, bound=1e-5):
    """Every parameter of two runs within bound; the message names the worst one and both its values."""
    assert a.keys() == b.keys()
    worst, i, name = max((*(a[k].float() - b[k].float()).abs().flatten().max(0), k) for k in a)
    worst, i = worst.item(), i.item()
    assert worst <= bound, (f'{name}[{i}]: {a[name].flatten()[i].item():.9g} vs {b[name].flatten()[i].item():.9g} '
                            f'(difference {worst:.3g} > {bound:g})')


def without_shift_biases(name, value):
    """For the Adam runs below: two biases have no gradient in exact arithmetic (the key bias: a softmax over keys
    ignores a shift shared by all keys; the expander's output bias: variance and covariance see centred values
    only), and Adam turns their float noise into steps of order lr. Neither changes any output or loss."""
    if name.endswith('attn.qkv.bias'):
        q, k, v = value.chunk(3)
        return torch.cat([q, v])
    if name == 'objective.expander.fc2.bias':
        return value.new_zeros(1)
    return value


def relative_distance(a, b):
    """||a - b|| / ||a|| over all parameters, the shift-invariant biases left out."""
    a, b = ([without_shift_biases(k, p[k]).float().flatten() for k in sorted(a)] for p in (a, b))
    return (torch.cat(a) - torch.cat(b)).norm().item() / torch.cat(a).norm().item()


def torchrun(*args):
    return run('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *args)


@pytest.mark.slow
@pytest.mark.parametrize('objective', [dict(), dict(sampling='proportional', update='per_round'), MULTITRAIN],
                         ids=['round_robin_ce', 'proportional_cover', 'mixed_multitrain'])
def test_two_processes_equal_one_with_the_global_batch(three, tmp_path, objective):
    one, two = tmp_path / 'one', tmp_path / 'two'
    big, small = settings(three, 2, **EXACT, **objective), settings(three, 1, **EXACT, **objective)
    if objective.get('sampling') == 'proportional':
        # CoVeR's counts are apportioned per rank and micro-batch (sampling.ProportionalBatchSampler): 2 ranks take
        # the samples of 1 rank with 2 micro-batches of the same size, not those of 1 rank with twice the batch
        big = settings(three, 1, grad_accum=2, **EXACT, **objective)
    run('train.py', str(write_config(tmp_path / 'one.py', three, one, **big)))
    torchrun('train.py', str(write_config(tmp_path / 'two.py', three, two, **small)))
    a, b = params(one), params(two)
    assert_same_parameters(a, b)
    log_vars = [v for k, v in a.items() if 'log_var' in k]
    assert len(log_vars) == (3 if objective.get('uncertainty') else 0) and all(v.item() != 0 for v in log_vars)
    if objective.get('projection'):  # eval.py reads the projections back: the top pairs of every ordered pair
        run('eval.py', f'--out_dir={one}', '--eval_projected=True')
        result = json.loads((one / 'eval.json').read_text())
        assert len(result['projection_pairs']) == 6 and set(result['projected_results']) == set(result['results'])
        assert all(len(top) == 5 for top in result['projection_pairs'].values())


@pytest.mark.slow
@pytest.mark.parametrize('objective', [dict(update='per_dataset', projection='separate', uncertainty=True),
                                       dict(update='per_round', projection='separate', uncertainty=True),
                                       MULTITRAIN], ids=['per_dataset', 'per_round', 'mixed_multitrain'])
def test_gradient_accumulation_equals_the_larger_batch(three, tmp_path, objective):
    """With the informative loss (MultiTrain), whose variance and covariance are of the whole accumulated batch,
    this holds through train.py's gradient caching."""
    big, small = tmp_path / 'big', tmp_path / 'small'
    run('train.py', str(write_config(tmp_path / 'big.py', three, big, **settings(three, 2, **EXACT, **objective))))
    run('train.py', str(write_config(tmp_path / 'small.py', three, small,
                                     **settings(three, 1, grad_accum=2, **EXACT, **objective))))
    assert_same_parameters(params(big), params(small))
    if objective.get('var_weight'):  # the logged informative terms are those of the whole batch too
        a, b = ([e['variance'] for e in read_log(out) if e['event'] == 'train'] for out in (big, small))
        assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.slow
def test_two_processes_with_accumulation_equal_one_with_the_global_batch_multitrain(three, tmp_path):
    """The full MultiTrain objective on 2 processes x 2 micro-batches: the informative loss is computed on the
    batch gathered from every micro-batch of every rank."""
    one, two = tmp_path / 'one', tmp_path / 'two'
    run('train.py', str(write_config(tmp_path / 'one.py', three, one, **settings(three, 4, **EXACT, **MULTITRAIN))))
    torchrun('train.py', str(write_config(tmp_path / 'two.py', three, two,
                                          **settings(three, 1, grad_accum=2, **EXACT, **MULTITRAIN))))
    assert_same_parameters(params(one), params(two))


RELEASE_AUGMENTATION = dict(rand_augment='rand-m7-n4-mstd0.5-inc1', aug_interpolation='bicubic', resized_crop=True,
                            crop_aspect=(0.75, 1.3333), random_erasing=0.25, repeated_aug=2)


@pytest.mark.slow
def test_two_processes_equal_one_with_the_release_augmentations_and_micro_batch_statistics(three, tmp_path):
    """MultiTrain's release recipe: RandAugment, resized crops, erasing and repeated augmentation on every dataset
    (each loaded sample gives 2 rows, kept on the rank that loaded it), 2 micro-batches a step with the informative
    loss of each micro-batch gathered over the ranks (informative_batch='micro'): 2 processes equal 1 process with
    the global micro-batch, whose informative loss sees the same rows."""
    one, two = tmp_path / 'one', tmp_path / 'two'
    recipe = dict(**EXACT, **MULTITRAIN, grad_accum=2, informative_batch='micro', max_iters=3, eval_interval=3)
    big, small = settings(three, 2, **recipe), settings(three, 1, **recipe)
    for spec in (*big['datasets'].values(), *small['datasets'].values()):
        spec.update(RELEASE_AUGMENTATION)
    run('train.py', str(write_config(tmp_path / 'one.py', three, one, **big)))
    torchrun('train.py', str(write_config(tmp_path / 'two.py', three, two, **small)))
    assert_same_parameters(params(one), params(two))
    a, b = ([e['variance'] for e in read_log(out) if e['event'] == 'train'] for out in (one, two))
    assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_finishes_like_the_whole_run(three, tmp_path):
    common = settings(three, 1, sampling='proportional', max_iters=30, eval_interval=30, num_workers=1)
    whole = tmp_path / 'whole'
    run('train.py', str(write_config(tmp_path / 'whole.py', three, whole, **common)))

    out = tmp_path / 'stopped'
    cfg = write_config(tmp_path / 'stopped.py', three, out, **common)
    proc = subprocess.Popen([sys.executable, 'train.py', str(cfg)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 300
    while time.time() < deadline and not ((out / 'log.jsonl').exists() and
                                          sum(1 for _ in open(out / 'log.jsonl')) >= 6):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    stopped = [e for e in read_log(out) if e['event'] == 'stopped']
    assert len(stopped) == 1 and 5 <= stopped[0]['iter'] < 30, output
    assert torch.load(out / 'ckpt.pt', weights_only=False)['iter_num'] == stopped[0]['iter']
    assert 'SIGTERM' in output and 'the same command continues from it' in output

    run('train.py', str(cfg), '--init_from=resume')
    assert_same_parameters(params(whole), params(out), bound=0.0)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_good_checkpoint(three, tmp_path):
    out = tmp_path / 'run'
    cfg = write_config(tmp_path / 'cfg.py', three, out, **settings(three, 1, max_iters=4, eval_interval=2,
                                                                   keep_last=1, save_best=True))
    run('train.py', str(cfg))
    good = params(out)
    assert sorted(f.name for f in out.glob('ckpt*.pt')) == ['ckpt.pt', 'ckpt_0000004.pt', 'ckpt_best.pt']
    proc = subprocess.run([sys.executable, 'train.py', str(cfg), '--init_from=resume', '--max_iters=40',
                           '--eval_interval=2', '--lr=1e12', '--min_lr=1e12', '--grad_clip=0'],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'non-finite at iteration' in proc.stderr and 'was not overwritten' in proc.stderr, proc.stderr[-2000:]
    ckpt = torch.load(out / 'ckpt.pt', weights_only=False)
    assert all(v.isfinite().all() for v in ckpt['model'].values() if v.is_floating_point())
    bad_at = int(proc.stderr.split('non-finite at iteration ')[1].split(':')[0])
    assert ckpt['iter_num'] <= bad_at  # never a checkpoint taken after the loss went bad
    if ckpt['iter_num'] == 4:
        assert_same_parameters(good, params(out), bound=0.0)


@pytest.mark.slow
def test_torchrun_exits_with_an_error_when_a_process_dies(three, tmp_path):
    out = tmp_path / 'run'
    cfg = write_config(tmp_path / 'cfg.py', three, out, **settings(three, 1, max_iters=100000, eval_interval=100000))
    proc = subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                             'train.py', str(cfg)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    deadline = time.time() + 300
    while time.time() < deadline and not ((out / 'log.jsonl').exists() and
                                          sum(1 for _ in open(out / 'log.jsonl')) >= 4):
        time.sleep(0.1)
    workers = subprocess.run(['pgrep', '-P', str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2, workers
    os.kill(int(workers[-1]), signal.SIGKILL)
    t0 = time.time()
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert time.time() - t0 < 120, 'the job took too long to notice'


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='finds threads by name in /proc/self/task')
def test_no_gloo_thread_outlives_train_py(three, tmp_path):
    """A run could succeed and its process still abort at exit (SIGABRT, "terminate called without an active
    exception"; 2 of 25 smokes under load): a gloo worker, still letting go of the last collective's tensors,
    asked for the GIL while Python shut down. The groups lived on because train.py held references to them (the
    DDP wrapper, the control group). Now train.py drops those and destroys the groups, which joins the threads.
    Deterministic: each rank runs train.py in-process and lists gloo's threads afterwards."""
    cfg = write_config(tmp_path / 'cfg.py', three, tmp_path / 'run', **settings(three, 1, max_iters=2, eval_interval=2))
    run('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', 'tests/gloo_threads_after_train.py',
        str(cfg), env={'GLOO_THREADS_DIR': str(tmp_path)})
    found = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert [rank['after_train'] for rank in found] == [[], []], found
    if not any(rank['after_init'] for rank in found):
        pytest.skip(f'torch {torch.__version__} does not name gloo\'s threads: nothing was checked')


@pytest.mark.slow
def test_mixed_precision_with_both_update_schemes_ddp_and_accumulation(three, tmp_path):
    """Autocast on the CPU stands in for the GPU's: bf16 with per-round updates and fp16 (loss scaling) with
    per-dataset updates, each on 2 processes with 2 micro-batches. A bf16 run on 2 processes ends closer to the
    1-process bf16 run than bf16 itself is to fp32 (relative L2 distance of all parameters; measured 0.0013 against
    0.0071): the process count moves the result less than the dtype does.
    fp16 runs scale the loss (loss_scale in the log) and finish with finite weights; their process count is not
    compared, because each rank's own gradient is world times the averaged one and overflows (skipping a step) at
    a scale where one process would not (the README says so)."""
    runs = {}
    for name, per_rank, world, overrides in [('fp32', 4, 1, dict(dtype='float32', update='per_round')),
                                             ('bf16', 4, 1, dict(dtype='bfloat16', update='per_round')),
                                             ('bf16_ddp', 1, 2, dict(dtype='bfloat16', update='per_round')),
                                             ('fp16_ddp', 1, 2, dict(dtype='float16', update='per_dataset'))]:
        out = tmp_path / name
        accum = dict(grad_accum=2) if world == 2 else {}  # global batch 4 x per_rank either way
        cfg = write_config(tmp_path / f'{name}.py', three, out, **settings(three, per_rank, **accum, **overrides))
        (torchrun if world == 2 else run)('train.py', str(cfg))
        runs[name] = params(out)
    across_processes = relative_distance(runs['bf16'], runs['bf16_ddp'])
    across_dtypes = relative_distance(runs['bf16'], runs['fp32'])
    assert across_dtypes > 1e-4  # autocast ran
    assert across_processes < across_dtypes / 3, (across_processes, across_dtypes)

    scales = [e['loss_scale'] for e in read_log(tmp_path / 'fp16_ddp') if e['event'] == 'train']
    assert len(scales) == 5 and all(s > 0 for s in scales)
    assert all(v.isfinite().all() for v in runs['fp16_ddp'].values() if v.is_floating_point())
    assert 'loss_scale' not in read_log(tmp_path / 'bf16')[1]  # bf16 needs no loss scaling
