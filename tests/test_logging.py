"""Where train.py's numbers go besides log.jsonl: Weights & Biases (wandb_log=True, offline here) and TensorBoard
(tensorboard=True), both optional packages: asked for without the package, train.py stops at start-up with one
line saying what to pip install. Read back, each holds the scalars of log.jsonl at their iterations."""

import glob
import importlib.util
import json
import os
import struct
import subprocess
import sys

import pytest

from conftest import REPO, read_log, run, write_config


@pytest.mark.parametrize('setting, package', [('wandb_log', 'wandb'), ('tensorboard', 'tensorboard')])
def test_asking_for_a_missing_package_says_what_to_install(setting, package, tmp_path):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f'{package} is installed here')
    proc = subprocess.run([sys.executable, 'train.py', f'--{setting}=True', f'--out_dir={tmp_path / "run"}'],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f'{setting}=True needs what nanoCoTrain does not install: pip install {package}')
    assert not (tmp_path / 'run').exists()  # stopped before anything was written


def wandb_history(run_dir):
    """{step: {key: value}} of the history records of an offline W&B run's .wandb file: records in the LevelDB
    log format (32 KiB blocks, each record a 7-byte header: crc32, length, kind) after a 7-byte file header,
    each a wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2
    (path,) = glob.glob(os.path.join(run_dir, 'wandb', 'offline-run-*', 'run-*.wandb'))
    data, block = open(path, 'rb').read(), 32768
    history, pos, parts = {}, 7, b''
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack('<IHB', data[pos:pos + 7])
        parts += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last part of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b''
            if record.WhichOneof('record_type') == 'history':
                items = {item.key or '/'.join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item}
                history.setdefault(record.history.step.num, {}).update(items)
    return history


def test_wandb_and_tensorboard_receive_the_scalars_of_log_jsonl(datasets, tmp_path):
    pytest.importorskip('wandb')
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / 'run'
    cfg = write_config(tmp_path / 'cfg.py', datasets, out, max_iters=4, eval_interval=2, log_interval=2,
                       eval_max_batches=1, wandb_log=True, wandb_project='test', wandb_run_name='tiny',
                       tensorboard=True)
    run('train.py', str(cfg), env={'WANDB_MODE': 'offline', 'WANDB_SILENT': 'true'})
    events = read_log(out)
    train = [e for e in events if e['event'] == 'train']
    evals = [e for e in events if e['event'] == 'eval']

    board = EventAccumulator(str(out / 'tensorboard'))
    board.Reload()
    tags = board.Tags()['scalars']
    for tag, key, logged in [*((f'train/{k}', k, train) for k in ('loss', 'shapes/loss', 'motions/loss', 'lr',
                                                                  'samples_per_sec', 'data_sec_per_iter')),
                             ('eval/shapes/top1', 'shapes/top1', evals)]:
        scalars = board.Scalars(tag)
        assert [s.step for s in scalars] == [e['iter'] for e in logged]
        assert [s.value for s in scalars] == pytest.approx([e[key] for e in logged], rel=1e-6)  # float32 there
    assert not [t for t in tags if 'per_class' in t]  # numbers only: dicts stay in log.jsonl

    history = wandb_history(out)
    for e in train:
        assert history[e['iter']]['train/loss'] == pytest.approx(e['loss'], rel=1e-6)
        assert history[e['iter']]['train/samples_per_sec'] == pytest.approx(e['samples_per_sec'], rel=1e-6)
    for e in evals:
        assert history[e['iter']]['eval/motions/top1'] == pytest.approx(e['motions/top1'], rel=1e-6)
