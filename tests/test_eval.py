"""evaluate(): multi-view averaging of softmax scores, top-1/top-5 and per-class counts, against a plain loop;
evaluate_frame_orders() (temporal reliance): each frame order against known answers and against a plain loop."""

import json
import os
import subprocess
import sys
import types

import pytest
import torch
import torch.nn.functional as F

import config
import eval as eval_py
from tools import synthetic
from eval import FRAME_ORDERS, evaluate, evaluate_frame_orders, frame_orders
from model import VisionTransformer


class Lookup(torch.nn.Module):
    """A 'model' whose logits for a view are stored in the input itself: x[..., 0] holds the C logits."""

    def forward(self, x, dataset):
        assert dataset == 'toy'
        return x.flatten(1)[:, :7]  # (B*V, C)


def test_evaluate_matches_a_plain_loop():
    torch.manual_seed(0)
    C, V = 7, 3
    batches = [(torch.randn(B, V, 7, 2), torch.randint(0, C, (B,))) for B in (5, 4, 6)]  # last dim: padding
    dataset = types.SimpleNamespace(classes=[f'c{i}' for i in range(C)])
    result = evaluate(Lookup(), {'toy': Loader(batches, dataset)}, 'cpu')['toy']

    top1 = top5 = n = 0
    per_class = {c: [0, 0] for c in range(C)}
    for x, y in batches:
        for b in range(len(y)):
            scores = sum(torch.softmax(x[b, v].flatten()[:C], 0) for v in range(V)) / V
            ranked = sorted(range(C), key=lambda c: -scores[c].item())
            top1 += ranked[0] == y[b].item()
            top5 += y[b].item() in ranked[:5]
            n += 1
            per_class[y[b].item()][0] += 1
            per_class[y[b].item()][1] += ranked[0] == y[b].item()
    assert result['n'] == n == 15
    assert abs(result['top1'] - 100 * top1 / n) < 1e-9
    assert abs(result['top5'] - 100 * top5 / n) < 1e-9
    for c, (count, hits) in per_class.items():
        assert abs(result['per_class_top1'][f'c{c}'] - (100 * hits / count if count else 0.0)) < 1e-4


class Loader:
    """Just enough of a DataLoader: iterable over (x, y) batches, with .dataset.classes."""

    def __init__(self, batches, dataset):
        self.batches, self.dataset = batches, dataset

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


# -----------------------------------------------------------------------------
# temporal reliance: evaluate_frame_orders


def test_frame_orders_are_what_their_names_say():
    orders = frame_orders(8, seed=0)
    assert list(orders) == ['normal', 'reversed', 'shuffled', 'static']
    assert orders['normal'].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert orders['reversed'].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    assert orders['static'].tolist() == [4] * 8
    shuffled = orders['shuffled'].tolist()
    assert sorted(shuffled) == list(range(8))                                 # a permutation...
    assert shuffled not in (orders['normal'].tolist(), orders['reversed'].tolist())  # ...that is a real shuffle
    assert frame_orders(8, seed=0)['shuffled'].tolist() == shuffled           # fixed by the seed
    assert frame_orders(8, seed=1)['shuffled'].tolist() != shuffled


class OrderReader(torch.nn.Module):
    """A video 'model' that sees only the order of frames: each frame's pixels hold one number, and the model
    predicts class 0 if the numbers rise, 1 if they fall, 2 if they stay constant, 3 otherwise."""

    def forward(self, x, dataset):
        values = x[:, 0, :, 0, 0]                                          # (B*V, T): pixel (0, 0), red channel
        steps = values.diff(dim=1)                                         # (B*V, T-1)
        label = torch.full((len(x),), 3)
        label[(steps == 0).all(1)] = 2
        label[(steps < 0).all(1)] = 1
        label[(steps > 0).all(1)] = 0
        return 10.0 * F.one_hot(label, 4).float()                          # (B*V, 4)


def clips_of(sequences, V=1, H=2, W=3):
    """(B, V, 3, T, H, W) clips whose frame t is filled with sequences[b][t]."""
    values = torch.tensor(sequences, dtype=torch.float32)                  # (B, T)
    return values[:, None, None, :, None, None].expand(-1, V, 3, -1, H, W).clone()


def video_loader(batches, classes):
    return Loader(batches, types.SimpleNamespace(classes=classes, is_video=True))


def test_each_frame_order_has_its_known_effect():
    """Rising clips (class 0) become falling ones when reversed, lose their order when shuffled and all motion
    when static; constant clips (2) survive everything; zigzags with repeated values (3) can be reordered but never
    made monotonic, so only the static test, which makes them constant, breaks them."""
    rising, falling, flat, zigzag = [0, 1, 2, 3, 4, 5], [9, 7, 5, 4, 2, 1], [3] * 6, [1, 0, 1, 0, 1, 0]
    sequences = [rising, falling, flat, zigzag, rising, zigzag]
    labels = torch.tensor([0, 1, 2, 3, 0, 3])
    loader = video_loader([(clips_of(sequences[:4]), labels[:4]), (clips_of(sequences[4:]), labels[4:])],
                          ['rise', 'fall', 'flat', 'zigzag'])
    r = evaluate_frame_orders(OrderReader(), {'toy': loader}, 'cpu', seed=0)['toy']
    expected = {  # per class: rise, fall, flat, zigzag
        'normal': [100, 100, 100, 100],
        'reversed': [0, 0, 100, 100],   # rise <-> fall: both wrong
        'shuffled': [0, 0, 100, 100],   # no longer monotonic
        'static': [0, 0, 100, 0],       # every clip constant
    }
    for order, per_class in expected.items():
        assert list(r[order]['per_class_top1'].values()) == per_class, order
        assert r[order]['n'] == 6
    assert r['normal']['top1'] == 100 and r['reversed']['top1'] == pytest.approx(100 * 3 / 6)
    assert r['static']['top1'] == pytest.approx(100 / 6)
    assert r['static']['drop'] == pytest.approx(100 - 100 / 6) and r['normal']['drop'] == 0
    assert r['shuffled']['frames'] == frame_orders(6, 0)['shuffled'].tolist()


class TimeWeighted(torch.nn.Module):
    """Logits that weigh every frame differently, so that any reordering of the frames changes them."""

    def __init__(self, T, C):
        super().__init__()
        self.w = torch.randn(C, T)

    def forward(self, x, dataset):
        return x.mean((1, 3, 4)) @ self.w.T                                # (B*V, T) @ (T, C) -> (B*V, C)


def test_frame_orders_match_evaluate_on_reordered_copies():
    """Against a plain loop: each order's results equal evaluate() on copies of the clips whose frames were
    reordered one by one, with several views a sample; image datasets are skipped."""
    torch.manual_seed(0)
    B, V, T, C = 5, 2, 6, 4
    classes = [f'c{i}' for i in range(C)]
    batches = [(torch.randn(B, V, 3, T, 2, 2), torch.randint(0, C, (B,))) for _ in range(3)]
    images = Loader([(torch.randn(2, 1, 3, 2, 2), torch.tensor([0, 1]))],
                    types.SimpleNamespace(classes=classes, is_video=False))
    model = TimeWeighted(T, C)
    results = evaluate_frame_orders(model, {'toy': video_loader(batches, classes), 'pictures': images}, 'cpu', seed=3)
    assert list(results) == ['toy']
    frames = {'normal': list(range(T)), 'reversed': list(range(T))[::-1],
              'shuffled': torch.randperm(T, generator=torch.Generator().manual_seed(3)).tolist(),
              'static': [T // 2] * T}
    for order, indices in frames.items():
        reordered = [(torch.stack([x[:, :, :, t] for t in indices], dim=3), y) for x, y in batches]
        expected = evaluate(model, {'toy': video_loader(reordered, classes)}, 'cpu')['toy']
        got = results['toy'][order]
        assert got['frames'] == indices
        for key in ('top1', 'top5', 'n'):
            assert got[key] == pytest.approx(expected[key]), (order, key)
        assert got['per_class_top1'] == pytest.approx(expected['per_class_top1'])
    assert len({results['toy'][o]['top1'] for o in FRAME_ORDERS}) > 1  # the orders do differ for this model


def test_without_token_shift_order_does_not_matter_but_appearance_does():
    """A frame-wise ViT with shift_div=0 averages per-frame features, so reversed and shuffled clips score exactly
    like normal ones; a static clip is different input, and its scores change."""
    torch.manual_seed(0)
    model = VisionTransformer({'toy': 5}, img_size=16, patch_size=8, dim=16, depth=2, num_heads=2, shift_div=0)
    x = torch.randn(8, 1, 3, 4, 16, 16)
    y = model(x.flatten(0, 1), 'toy').argmax(1)  # labels the model gets right in the normal order
    r = evaluate_frame_orders(model, {'toy': video_loader([(x, y)], [f'c{i}' for i in range(5)])}, 'cpu')['toy']
    assert r['normal']['top1'] == 100
    for order in ('reversed', 'shuffled'):
        assert r[order]['top1'] == 100 and r[order]['per_class_top1'] == r['normal']['per_class_top1']
    assert r['static']['top1'] < 100


def test_eval_main_writes_frame_order_tables(tmp_path, capsys, monkeypatch):
    """eval.py --temporal_tests=True on a tiny checkpoint: the tables are printed and saved in eval.json, and the
    normal order reproduces the plain evaluation exactly."""
    out = tiny_checkpoint(tmp_path)
    eval_py.main([f'--out_dir={out}', '--temporal_tests=True'])
    printed = capsys.readouterr().out
    saved = json.loads((out / 'eval.json').read_text())
    assert saved['frame_orders']['motions']['normal']['top1'] == saved['results']['motions']['top1']
    assert set(saved['frame_orders']['motions']) == set(FRAME_ORDERS)
    assert saved['frame_orders']['motions']['normal']['n'] == 14  # split 1 tests on groups 1-7, 2 classes
    assert 'shuffled = frames' in printed and 'MoveRight' in printed.split('by frame order')[1]


def test_projection_pairs_name_classes_and_projected_scores_follow_eq4():
    import losses
    from eval import Projected, projection_pairs
    classes = {'a': ['left', 'right', 'up'], 'b': ['links', 'rechts']}
    projection = losses.Projection({k: len(v) for k, v in classes.items()})
    with torch.no_grad():
        projection.proj['a->b'].weight[1, 0] = 3.0   # a's 'left' is evidence for b's 'rechts'
        projection.proj['a->b'].weight[0, 2] = 2.0   # a's 'up' for b's 'links'
        projection.proj['b->a'].weight[0, 0] = 1.0
    pairs = projection_pairs(projection, classes, k=2)
    assert list(pairs) == ['a -> b', 'b -> a']
    assert pairs['a -> b'] == [['left', 'rechts', 3.0], ['up', 'links', 2.0]]
    assert pairs['b -> a'][0] == ['links', 'left', 1.0]

    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleDict({'a': torch.nn.Linear(4, 3), 'b': torch.nn.Linear(4, 2)})

        def features(self, x):
            return x

    model, x = Heads(), torch.randn(5, 4)
    want = model.heads['b'](x) + model.heads['a'](x) @ projection.proj['a->b'].weight.T  # eq. 4, written out
    assert torch.allclose(Projected(model, projection)(x, 'b'), want, atol=1e-6)


@pytest.mark.parametrize('dtype, device, expected', [
    ('auto', 'cpu', torch.float32), ('float32', 'cpu', torch.float32), ('bfloat16', 'cpu', torch.bfloat16),
    ('float16', 'cpu', torch.float16)])
def test_autocast_for_runs_the_matmuls_in_the_dtype_asked(dtype, device, expected):
    """'auto' is fp32 on a CPU (bf16 on a GPU); an explicit half dtype is honoured on the CPU too, so the mixed-
    precision paths of train.py, eval.py and probe.py are tested here."""
    with config.autocast_for(dtype, device):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == expected


def test_autocast_for_names_the_allowed_dtypes():
    with pytest.raises(config.ConfigError, match="float16, got 'fp16'"):  # checked in one place: config.check
        config.load(['--dtype=fp16'])


# ---- eval.py for real runs: any checkpoint, views in the file name, torchrun, per-class table and confusion


def tiny_checkpoint(tmp_path):
    """out_dir of a random tiny video model's ckpt.pt on 2 synthetic classes (14 validation clips), and its argv."""
    root = tmp_path / 'motions'
    synthetic.write_synthetic_ucf101(root, classes=('MoveLeft', 'MoveRight'), groups=8, clips=1, seconds=1.0)
    out = tmp_path / 'run'
    out.mkdir()
    argv = [f'--out_dir={out}', '--num_workers=0', '--device=cpu', '--img_size=16', '--patch_size=8', '--dim=16',
            '--depth=1', '--num_heads=2',
            f"--datasets={{'motions': {{'format': 'ucf101', 'root': '{root}', 'num_frames': 4, 'batch_size': 4}}}}"]
    cfg = config.load(argv)
    torch.manual_seed(0)
    model = eval_py.build_model(cfg, {'motions': 2})
    torch.save(dict(model=model.state_dict(), config=config.to_dict(cfg), iter_num=7,
                    classes={'motions': ['MoveLeft', 'MoveRight']}), out / 'ckpt.pt')
    return out


def test_results_are_named_after_the_checkpoint_and_the_views():
    video, image = (1, 1, True), (1, 1, False)
    assert eval_py.results_path('out/x/ckpt.pt', {'k': video, 'i': image}) == 'out/x/eval.json'
    assert eval_py.results_path('out/x/ckpt.pt', {'k': (10, 3, True), 'i': (1, 3, False)}) == 'out/x/eval_10x3.json'
    assert eval_py.results_path('out/x/ckpt_best.pt', {'k': video}) == 'out/x/eval_ckpt_best.json'
    assert eval_py.results_path('w/model.pt', {'k': (2, 1, True)}) == 'w/eval_model_2x1.json'
    # datasets with views of their own (MultiTrain: K400 5 clips x 1 crop, MiT 2 x 3): each named
    assert (eval_py.results_path('ckpt.pt', {'k400': (5, 1, True), 'mit': (2, 3, True), 'in': (1, 3, False)})
            == 'eval_k400-5x1_mit-2x3_in-3.json')


def test_views_of_a_dataset_fall_back_to_the_global_settings():
    cfg = types.SimpleNamespace(num_temporal_clips=10, num_spatial_crops=3)
    assert eval_py.views_of({}, cfg, True) == (10, 3) and eval_py.views_of({}, cfg, False) == (1, 3)
    own = {'num_temporal_clips': 5, 'num_spatial_crops': 1}
    assert eval_py.views_of(own, cfg, True) == (5, 1)


def test_eval_any_checkpoint_writes_next_to_it_without_overwriting(tmp_path, capsys):
    out = tiny_checkpoint(tmp_path)
    eval_py.main([f'--out_dir={out}'])
    default = json.loads((out / 'eval.json').read_text())
    elsewhere = tmp_path / 'shared'
    elsewhere.mkdir()
    (elsewhere / 'ckpt_best.pt').write_bytes((out / 'ckpt.pt').read_bytes())
    eval_py.main([f'--ckpt={elsewhere / "ckpt_best.pt"}', '--num_temporal_clips=2', '--num_spatial_crops=3'])
    other = json.loads((elsewhere / 'eval_ckpt_best_2x3.json').read_text())
    assert other['checkpoint'] == str(elsewhere / 'ckpt_best.pt') and other['views'] == {'motions': '2x3'}
    assert other['results']['motions']['n'] == default['results']['motions']['n'] == 14
    assert json.loads((out / 'eval.json').read_text()) == default  # untouched
    assert f'results: {elsewhere / "eval_ckpt_best_2x3.json"}' in capsys.readouterr().out


def test_confusion_matrix_counts_the_top1_predictions():
    torch.manual_seed(0)
    C, V = 7, 2
    batches = [(torch.randn(B, V, 7, 2), torch.randint(0, C, (B,))) for B in (5, 4, 6)]
    dataset = types.SimpleNamespace(classes=[f'c{i}' for i in range(C)])
    result = evaluate(Lookup(), {'toy': Loader(batches, dataset)}, 'cpu', confusion=('toy',))['toy']
    expected = [[0] * C for _ in range(C)]
    for x, y in batches:
        for b in range(len(y)):
            scores = sum(torch.softmax(x[b, v].flatten()[:C], 0) for v in range(V))
            expected[y[b].item()][scores.argmax().item()] += 1
    assert result['confusion'] == expected
    assert 'confusion' not in evaluate(Lookup(), {'toy': Loader(batches, dataset)}, 'cpu')['toy']


def test_per_class_table_puts_the_worst_class_first(capsys):
    eval_py.print_per_class('toy', [[3, 1, 0], [0, 2, 2], [0, 0, 5]], ['cat', 'dog', 'eel'])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2].split() == ['dog', '4', '50.0%', 'eel', '(2)']
    assert lines[3].split() == ['cat', '4', '75.0%', 'dog', '(1)']
    assert lines[4].split() == ['eel', '5', '100.0%', '-']


def test_confusion_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    out = tiny_checkpoint(tmp_path)
    monkeypatch.setattr(eval_py.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(SystemExit) as exit:
        eval_py.main([f'--out_dir={out}', '--confusion=motions'])
    assert str(exit.value.code).endswith('pip install matplotlib')
    with pytest.raises(SystemExit, match='not a dataset of this run'):
        eval_py.main([f'--out_dir={out}', '--confusion=k400'])


def test_confusion_image_is_drawn(tmp_path, capsys):
    pytest.importorskip('matplotlib')
    out = tiny_checkpoint(tmp_path)
    eval_py.main([f'--out_dir={out}', '--confusion=motions'])
    printed = capsys.readouterr().out
    assert 'motions: per-class top-1, worst first' in printed
    image = out / 'eval_confusion_motions.png'
    assert image.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    saved = json.loads((out / 'eval.json').read_text())['results']['motions']
    assert sum(map(sum, saved['confusion'])) == saved['n'] == 14


@pytest.mark.slow
def test_eval_under_torchrun_equals_one_process(tmp_path):
    """Two processes, each scoring its shard (7 of the 14 clips), give the counts of one process exactly."""
    from conftest import REPO
    out = tiny_checkpoint(tmp_path)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    subprocess.run([sys.executable, 'eval.py', f'--out_dir={out}', '--temporal_tests=True'], cwd=REPO, check=True,
                   env=env, capture_output=True)
    one = json.loads((out / 'eval.json').read_text())
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                           'eval.py', f'--out_dir={out}', '--temporal_tests=True'], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((out / 'eval.json').read_text())
    assert (one['processes'], two['processes']) == (1, 2)
    assert two['results'] == one['results'] and two['frame_orders'] == one['frame_orders']
    assert two['results']['motions']['n'] == 14
    assert proc.stdout.count('process(es)') == 1  # one report, from rank 0
