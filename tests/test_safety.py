"""Loading a checkpoint never runs code (eval.safe_load, weights_only=True): a crafted ckpt.pt whose unpickling
would call os.system is refused with one line by every entry point that loads one (train.py resuming and
fine-tuning, eval.py, predict.py, tools/probe.py), and its command never runs. What train.py saves loads safely."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import config
from conftest import REPO, write_config


class Payload:
    """Unpickling this calls os.system(command): what a malicious checkpoint can do under full unpickling."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture
def crafted(tmp_path):
    """(a folder whose ckpt.pt carries the payload, the marker file the payload would create)."""
    marker = tmp_path / 'payload_ran'
    folder = tmp_path / 'shared_run'
    folder.mkdir()
    cfg = config.load([f'--out_dir={folder}', '--device=cpu'])
    torch.save(dict(model={'x': torch.zeros(1)}, config=config.to_dict(cfg), iter_num=1, classes={'shapes': ['a']},
                    surprise=Payload(f'touch {marker}')), folder / 'ckpt.pt')
    return folder, marker


def refused(args, path, marker):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode != 0, proc.stdout
    assert not marker.exists(), f'{args}: the payload ran'
    assert f'{path}: refused' in proc.stderr and 'posix.system' in proc.stderr, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    return proc


def test_eval_predict_and_probe_refuse_a_code_running_checkpoint(crafted, tmp_path):
    folder, marker = crafted
    ckpt = folder / 'ckpt.pt'
    refused(['eval.py', f'--out_dir={folder}'], ckpt, marker)
    refused(['eval.py', f'--ckpt={ckpt}'], ckpt, marker)
    refused(['predict.py', str(tmp_path / 'any.jpg'), f'--ckpt={ckpt}'], ckpt, marker)
    refused(['tools/probe.py', f'--out_dir={folder}'], ckpt, marker)


def test_train_refuses_it_to_resume_or_fine_tune(crafted, datasets, tmp_path):
    folder, marker = crafted
    cfg = write_config(tmp_path / 'cfg.py', datasets, folder, max_iters=2)
    refused(['train.py', str(cfg), '--init_from=resume'], folder / 'ckpt.pt', marker)
    other = write_config(tmp_path / 'other.py', datasets, tmp_path / 'new', max_iters=2)
    refused(['train.py', str(other), f'--init_from={folder / "ckpt.pt"}'], folder / 'ckpt.pt', marker)


def test_a_checkpoint_holding_numpy_objects_gets_one_line(tmp_path):
    """An older checkpoint that pickled numpy arrays (e.g. an RNG state) is refused, saying what it holds."""
    import eval as eval_py
    path = tmp_path / 'old.pt'
    torch.save(dict(rng=np.random.get_state()), path)
    with pytest.raises(eval_py.CheckpointError) as refused:
        eval_py.safe_load(str(path))
    message = str(refused.value)
    assert message.startswith(f'{path}: refused') and 'numpy' in message and '\n' not in message
    assert not refused.value.damaged
    with pytest.raises(eval_py.CheckpointError, match='no checkpoint at'):
        eval_py.safe_load(str(tmp_path / 'missing.pt'))
    (tmp_path / 'cut.pt').write_bytes(path.read_bytes()[:100])
    with pytest.raises(eval_py.CheckpointError, match='is damaged and cannot be read as a checkpoint') as damaged:
        eval_py.safe_load(str(tmp_path / 'cut.pt'))
    assert damaged.value.damaged
