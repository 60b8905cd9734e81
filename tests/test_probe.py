"""probe.py: the linear probe learns what is linearly learnable and nothing more; features are cached, reused, and
recomputed when the checkpoint or the dataset changes."""

import json

import pytest
import torch

import config
from tools import probe
from tools import synthetic
from model import build_model


def separable_problem(n, D=16, C=4, seed=0):
    """Features whose class is the argmax of a fixed linear map of them: a linear classifier can get every one."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, C, generator=g)
    x = 3 * torch.randn(n, D, generator=g) + 5  # an offset and a scale that standardisation must undo
    return x, (x @ w).argmax(1)


def test_probe_learns_a_linearly_separable_problem():
    x, y = separable_problem(600)
    r = probe.train_linear(x[:400], y[:400], x[400:], y[400:], 4, epochs=20, lr=0.1, batch_size=200)
    assert r['train_top1'] > 90 and r['top1'] > 85  # chance is 25%


def test_probe_cannot_learn_random_labels_on_val():
    """The val labels never reach the probe: with labels unrelated to the features, val top-1 stays near chance."""
    x, _ = separable_problem(600)
    y = torch.randint(0, 4, (600,), generator=torch.Generator().manual_seed(1))
    r = probe.train_linear(x[:400], y[:400], x[400:], y[400:], 4, epochs=20, lr=0.1, batch_size=200)
    assert r['top1'] < 40  # chance is 25%


def test_probe_does_not_depend_on_the_scale_of_the_features():
    """Features are standardised with the training statistics, train and val alike: scaling and shifting every
    feature dimension leaves the probe's accuracies as they were (up to rounding: one val sample at most)."""
    x, y = separable_problem(600)
    scale, offset = torch.linspace(0.01, 100, 16), torch.linspace(-1000, 1000, 16)
    plain = probe.train_linear(x[:400], y[:400], x[400:], y[400:], 4, epochs=5, lr=0.1, batch_size=200)
    scaled = x * scale + offset
    moved = probe.train_linear(scaled[:400], y[:400], scaled[400:], y[400:], 4, epochs=5, lr=0.1, batch_size=200)
    assert abs(plain['top1'] - moved['top1']) <= 100 / 200 + 1e-6
    assert abs(plain['train_top1'] - moved['train_top1']) <= 100 / 400 + 1e-6


def test_probe_is_deterministic_for_a_seed():
    x, y = separable_problem(300)
    runs = [probe.train_linear(x[:200], y[:200], x[200:], y[200:], 4, epochs=3, seed=0) for _ in range(2)]
    assert runs[0] == runs[1]


def test_backbone_fingerprint_ignores_the_heads_only():
    torch.manual_seed(0)
    state = {'blocks.0.w': torch.randn(3, 4), 'heads.a.weight': torch.randn(2, 4)}
    before = probe.backbone_fingerprint(state)
    assert probe.backbone_fingerprint({**state, 'heads.a.weight': torch.zeros(2, 4)}) == before
    changed = state['blocks.0.w'].clone()
    changed[1, 2] += 1e-6
    assert probe.backbone_fingerprint({**state, 'blocks.0.w': changed}) != before


@pytest.fixture
def run(tmp_path):
    """A tiny checkpoint trained on nothing, whose config names a tiny synthetic image dataset (3 classes)."""
    synthetic.write_synthetic_tinyimagenet(tmp_path / 'shapes', num_classes=3, train_per_class=8, val_per_class=4, size=16)
    out = tmp_path / 'run'
    out.mkdir()
    argv = [f'--out_dir={out}', '--num_workers=0', '--device=cpu', '--img_size=16', '--patch_size=8', '--dim=16',
            '--depth=1', '--num_heads=2', '--probe_epochs=5',
            f"--datasets={{'shapes': {{'format': 'tinyimagenet', 'root': '{tmp_path / 'shapes'}', 'batch_size': 5}}}}"]
    cfg = config.load(argv)
    torch.manual_seed(0)
    model = build_model(cfg, {'shapes': 3})
    save = lambda: torch.save(dict(model=model.state_dict(), config=config.to_dict(cfg), iter_num=1,
                                   classes={'shapes': ['a', 'b', 'c']}), out / 'ckpt.pt')
    save()
    return out, model, save


def test_features_are_cached_reused_and_invalidated(run, monkeypatch):
    out, model, save = run
    calls = []
    extract = probe.extract_features
    monkeypatch.setattr(probe, 'extract_features', lambda *a, **k: calls.append(a[1]) or extract(*a, **k))

    probe.main([f'--out_dir={out}'])
    assert [loader.dataset.train for loader in calls] == [False, False]  # train and val, both without augmentation
    assert [len(loader.dataset) for loader in calls] == [24, 12]
    first = json.loads((out / 'probe.json').read_text())['shapes']
    cached = torch.load(out / 'probe' / 'shapes-train.pt', weights_only=True)
    assert cached['features'].shape == (24, 16) and cached['labels'].tolist() == sorted(cached['labels'].tolist())

    probe.main([f'--out_dir={out}', '--num_workers=1'])          # a setting that changes no feature
    assert len(calls) == 2                                        # both splits came from the cache
    assert json.loads((out / 'probe.json').read_text())['shapes'] == first

    with torch.no_grad():
        model.blocks[0].mlp.fc2.bias += 0.1                       # another checkpoint of the same run
    save()
    probe.main([f'--out_dir={out}'])
    assert len(calls) == 4                                        # recomputed, both splits
    assert not torch.equal(torch.load(out / 'probe' / 'shapes-train.pt', weights_only=True)['features'],
                           cached['features'])

    probe.main([f'--out_dir={out}', '--mean=(0.5, 0.5, 0.5)'])    # the same weights fed other inputs
    assert len(calls) == 6


def test_probe_of_another_dataset_a_to_b(run, tmp_path):
    """A -> B: the target need not be one of the run's datasets; probe.json keeps one entry per target."""
    out, _, _ = run
    synthetic.write_synthetic_imagefolder(tmp_path / 'folders', num_classes=4, train_per_class=5, val_per_class=2, size=16)
    probe.main([f'--out_dir={out}'])
    probe.main([f'--out_dir={out}', f"--probe_datasets={{'folders': {{'format': 'imagefolder', "
                                    f"'root': '{tmp_path / 'folders'}'}}}}"])
    results = json.loads((out / 'probe.json').read_text())
    assert set(results) == {'shapes', 'folders'}
    assert results['folders']['classes'] == 4 and results['folders']['train_samples'] == 20
    assert results['folders']['trained_on'] == ['shapes'] and 0 <= results['folders']['top1'] <= 100
