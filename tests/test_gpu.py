"""The GPU paths, for a machine that has one: `python -m pytest tests/test_gpu.py`. Every test here is skipped
without CUDA (as on the machines that build this project, where none of them has been run): training under bf16
and under fp16 with loss scaling, torch.compile, a torchrun job on nccl, and the parity with torchvision on the
GPU."""

import pytest
import torch
import torchvision

import config
from conftest import read_log, run, write_config
from pretrained import from_torchvision

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


def losses_fall(out):
    train = [e for e in read_log(out) if e['event'] == 'train']
    return sum(e['loss'] for e in train[-3:]) < sum(e['loss'] for e in train[:3])


@pytest.mark.parametrize('dtype, update', [('bfloat16', 'per_dataset'), ('float16', 'per_round')])
def test_training_under_autocast(datasets, tmp_path, dtype, update):
    out = tmp_path / 'run'
    run('train.py', str(write_config(tmp_path / 'cfg.py', datasets, out, device='cuda', dtype=dtype,
                                     update=update, grad_accum=2)))
    assert losses_fall(out)
    assert ('loss_scale' in read_log(out)[1]) == (dtype == 'float16')


def test_compiled_training(datasets, tmp_path):
    out = tmp_path / 'run'
    run('train.py', str(write_config(tmp_path / 'cfg.py', datasets, out, device='cuda', compile=True)))
    assert losses_fall(out)
    assert not any(k.startswith('_orig_mod') or '._orig_mod' in k
                   for k in torch.load(out / 'ckpt.pt', weights_only=False)['model'])


def test_torchrun_on_nccl(datasets, tmp_path):
    out = tmp_path / 'run'
    procs = min(2, torch.cuda.device_count())
    run('-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={procs}', 'train.py',
        str(write_config(tmp_path / 'cfg.py', datasets, out, device='cuda', max_iters=10, eval_interval=10)))
    final = [e for e in read_log(out) if e['event'] == 'eval'][-1]
    assert final['shapes/n'] == 4 * 8 and final['motions/n'] == 4 * 7  # every validation sample once


def test_vit_parity_on_the_gpu():
    """fp32 without TF32: the same logits as torchvision's ViT-B/16 on the same GPU."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(0)
        theirs = torchvision.models.vit_b_16().cuda().eval()
        ours = from_torchvision(theirs, 'imagenet').cuda().eval()
        x = torch.randn(2, 3, 224, 224, device='cuda')
        with torch.no_grad():
            assert (ours(x, 'imagenet') - theirs(x)).abs().max().item() <= 1e-4
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def test_cuda_is_what_auto_picks():
    assert config.resolve_device('auto') == 'cuda'
    with config.autocast_for('auto', 'cuda'):
        assert torch.nn.Linear(4, 4).cuda()(torch.randn(2, 4, device='cuda')).dtype == torch.bfloat16
