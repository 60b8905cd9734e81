"""bench.py is a program that reports numbers, so these tests check that it runs and that what it reports is
measured right, never how fast anything is: the step-peak memory finds an allocation of known size, on the CPU in
a process started as bench.py starts it."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
linux = pytest.mark.skipif(not os.path.exists('/proc/self/clear_refs'), reason='CPU step peak needs Linux /proc')


@linux
@pytest.mark.parametrize('mib', [64])
def test_cpu_step_peak_finds_a_known_allocation(mib):
    """A step that holds mib MiB at its peak, beyond a resident 32 MiB that must not count, reads mib MiB."""
    script = (f'import torch\nfrom tools import bench\n'
              f'resident = torch.ones(8 * 2 ** 20)\n'
              f'def step():\n'
              f'    a = torch.ones({mib} * 2 ** 18)\n'  # mib MiB of float32
              f'    b = a + 1\n'                        # twice that at the peak, then a and b are freed
              f'    del a, b\n'
              f'print(bench.step_peak(step, on_gpu=False))\n')
    out = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536'))
    assert float(out.stdout) == pytest.approx(2 * mib, abs=2)


@pytest.mark.parametrize('args, first, second', [
    (['--dim=32', '--depth=2', '--num_heads=2', '--img_size=32', '--patch_size=8', '--grad_checkpoint'], 'ours',
     'torchvision'),
    pytest.param(['--objective', '--dim=32', '--depth=1', '--num_heads=2', '--img_size=32', '--patch_size=8'],
                 'multitrain', 'cross-entropy', marks=pytest.mark.slow),
])  # each run starts three processes (the run and one per contender's step peak), ~20 s on 2 cores; the MViT's
#     path differs from the ViT's only in the model built, and is left to `python -m tools.bench --backbone=mvit`
def test_bench_reports_time_flops_memory_and_the_ratio(args, first, second):
    out = subprocess.run([sys.executable, '-m', 'tools.bench', '--steps=1', '--batch=4', *args], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines()}
    names = (first, second, 'ours_grad_ckpt') if '--grad_checkpoint' in args else (first, second)
    for name in names:
        assert 'ms/step' in lines[name] and 'TFLOP/s' in lines[name]
        if os.path.exists('/proc/self/clear_refs'):
            peak = float(lines[name].split('step peak memory')[1].split()[0])
            assert peak >= 0  # small tensors come from the heap that is already resident: 0.0 MiB is right
    assert f'ratio {first} / {second}:' in out


def test_bench_decode_checks_and_reports_every_contender(tmp_path):
    """--decode on a small XviD AVI: every contender reads the frames of the others (the run asserts it), and
    the report has a wall-clock and a CPU line per clip, with torchcodec when installed. (Not a packed-B-frame
    file: torchcodec 0.17 reads most frames of one wrong, see tests/test_decode.py.)"""
    import numpy as np
    from tools import encode
    from tools import synthetic
    frames = synthetic.render_video('MoveLeft', np.random.default_rng(0), 64, 48, 90)
    encode.write_video(tmp_path / 'v.avi', frames, 30, 'mpeg4', audio=True, key_every=12)
    out = subprocess.run([sys.executable, '-m', 'tools.bench', '--decode', '--steps=1', f'--decode_video={tmp_path / "v.avi"}'],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = [line.split() for line in out.splitlines() if line.startswith('  ')]
    try:
        import torchcodec.decoders  # noqa: F401 (optional: needs FFmpeg's libraries)
        names = ['seek', 'torchcodec', 'start', 'whole']
    except (ImportError, OSError, RuntimeError):
        names = ['seek', 'start', 'whole']
    assert [line[0] for line in lines] == ['wall', 'cpu'] * 2  # two clip kinds
    assert all(line[1::4] == names for line in lines)


def test_bench_loader_reports_samples_per_second(tmp_path):
    """--loader on a small XviD AVI: a line of samples/s (wall clock and CPU) per clip kind for ours, and, with
    torchcodec installed, for the reference pipeline with the ratio (the run asserts the two samples equal)."""
    import numpy as np
    from tools import encode
    from tools import synthetic
    frames = synthetic.render_video('MoveLeft', np.random.default_rng(0), 64, 48, 90)
    encode.write_video(tmp_path / 'v.avi', frames, 30, 'mpeg4', key_every=12)
    out = subprocess.run([sys.executable, '-m', 'tools.bench', '--loader', '--steps=1', '--batch=2', '--img_size=32',
                          f'--loader_video={tmp_path / "v.avi"}'], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    lines = [line.split() for line in out.splitlines() if line.startswith('  ')]
    assert [line[0] for line in lines] == ['wall', 'cpu'] * 2  # two clip kinds
    try:
        import torchcodec.decoders  # noqa: F401 (optional: needs FFmpeg's libraries)
        assert all(line[1] == 'ours' and line[4] == 'torchcodec' and line[7] == 'ratio' for line in lines)
    except (ImportError, OSError, RuntimeError):
        assert all(line[1] == 'ours' and len(line) == 4 for line in lines)
        assert 'torchcodec is not installed' in out
