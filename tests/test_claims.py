"""tools/claims.py and tools/stats.py: the tests' arithmetic against known values and brute force, the verdicts,
the rows on made-up runs, the arms' configs against the real config loader and writers, the run-reuse key, the
budgets of paired arms, and the committed summary against its docs table. No experiment is run here."""
import collections
import inspect
import itertools
import json
import math

import numpy as np
import pytest

from tools import claims
from tools import stats
import config
import readers
from tools import synthetic


# ----------------------------------------------------------------------------- the t distribution


@pytest.mark.parametrize('q, df, table', [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 4, 2.776), (0.975, 9, 2.262),
    (0.975, 30, 2.042), (0.95, 2, 2.920), (0.995, 10, 3.169), (0.975, 1000, 1.962),
])
def test_t_quantile_matches_the_printed_tables(q, df, table):
    assert stats.t_quantile(q, df) == pytest.approx(table, abs=6e-4)


def test_t_pvalue_and_betainc_against_closed_forms():
    # df 1 is the Cauchy distribution: P(|T| >= t) = 1 - 2 atan(t) / pi
    for t in (0.3, 1.0, 4.0, 50.0):
        assert stats.t_pvalue(t, 1) == pytest.approx(1 - 2 * math.atan(t) / math.pi, rel=1e-10)
    # df 2: P(|T| >= t) = 1 - t / sqrt(2 + t^2)
    for t in (0.1, 2.0, 9.0):
        assert stats.t_pvalue(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-10)
    # integer a, b: I_x(a, b) is a binomial tail, sum_{j=a}^{a+b-1} C(a+b-1, j) x^j (1-x)^(a+b-1-j)
    for a, b, x in ((2, 3, 0.4), (5, 2, 0.9), (1, 7, 0.05), (6, 6, 0.5)):
        n = a + b - 1
        tail = sum(math.comb(n, j) * x ** j * (1 - x) ** (n - j) for j in range(a, n + 1))
        assert stats.betainc(a, b, x) == pytest.approx(tail, rel=1e-10)
    assert stats.t_pvalue(0.0, 4) == pytest.approx(1.0)
    assert stats.t_pvalue(math.inf, 4) == 0.0


def test_paired_t_by_hand():
    r = stats.paired_t([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])  # differences 1, 2, 3
    assert r['mean'] == pytest.approx(2.0) and r['df'] == 2
    assert r['t'] == pytest.approx(2.0 / (1.0 / math.sqrt(3)))
    assert r['p'] == pytest.approx(1 - r['t'] / math.sqrt(2 + r['t'] ** 2))  # the df-2 closed form
    assert r['ci95'][0] == pytest.approx(2.0 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert stats.paired_t([5.0, 5.0], [3.0, 3.0])['p'] == 0.0  # identical non-zero differences
    assert stats.paired_t([5.0, 5.0], [5.0, 5.0])['p'] == 1.0
    with pytest.raises(ValueError):
        stats.paired_t([1.0], [2.0])


def test_welch_degrees_of_freedom_by_hand():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 9.0]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    r = stats.welch_t(a, b)
    assert r['t'] == pytest.approx((np.mean(a) - np.mean(b)) / math.sqrt(va + vb))
    assert r['df'] == pytest.approx((va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2))
    assert r['p'] == pytest.approx(stats.t_pvalue(r['t'], r['df']))


# ----------------------------------------------------------------------------- the exact rank test


def test_wins_null_counts_every_subset():
    for k, n in ((1, 4), (2, 5), (3, 7), (4, 9)):
        brute = collections.Counter(sum(r - 1 - i for i, r in enumerate(sorted(c)))  # ranks below, minus own
                                    for c in itertools.combinations(range(1, n + 1), k))
        assert stats.wins_null(k, n) == [brute[u] for u in range(k * (n - k) + 1)]
    assert sum(stats.wins_null(4, 64)) == math.comb(64, 4)


def test_rank_test_against_brute_force():
    groups = [([0.9, 0.2], [0.1, 0.5, 0.3]), ([0.4], [0.6, 0.2, 0.0, 0.1])]
    r = stats.rank_test(groups)
    assert (r['wins'], r['pairs']) == (4 + 3, 6 + 4)
    # every way to mark 2 of the first group's 5 values and 1 of the second's 5: how often 7 or more wins
    first, second = sorted(groups[0][0] + groups[0][1]), sorted(groups[1][0] + groups[1][1])
    count = total = 0
    for m1 in itertools.combinations(range(5), 2):
        for m2 in itertools.combinations(range(5), 1):
            w = stats.wins([first[i] for i in m1], [first[i] for i in range(5) if i not in m1])
            w += stats.wins([second[i] for i in m2], [second[i] for i in range(5) if i not in m2])
            count += w >= 7
            total += 1
    assert r['p'] == pytest.approx(count / total)
    assert stats.wins([1.0], [1.0, 0.0]) == 1  # a tie counts as a loss


def test_pair_groups_marks_the_same_object():
    W = {'a -> b': dict(source=['x', 'y', 'p'], target=['X', 'Q', 'Y'],
                        weight=[[0.9, 0.0, 0.1], [0.2, 0.3, 0.4], [0.0, 0.8, 0.5]])}  # rows: target classes
    (marked, others), = claims.pair_groups(W, {'a': ['x', 'y'], 'b': ['X', 'Y']})
    assert sorted(marked) == [0.8, 0.9] and len(others) == 7


# ----------------------------------------------------------------------------- verdicts and rows


@pytest.mark.parametrize('diffs, sign, expected', [
    ([10.0, 12.0, 11.0], 1, 'holds'),                       # t = 19: p = 0.003 at df 2
    ([-10.0, -12.0, -11.0], 1, 'opposite'),
    ([10.0, -12.0, 11.0], 1, 'not seen'),
    ([1.0, 30.0, 0.5], 1, 'not seen'),                      # all positive, p = 0.37
    ([3.0, 4.0, 3.5], 1, 'holds'),                          # small but consistent: t = 12.1, p = 0.007
    ([2.0, 5.0, 3.0], 1, 'not seen'),                       # t = 3.78 < 4.30: the old "2 SE" rule said holds
    ([0.0, 0.0, 0.0], 1, 'not seen'),
    ([1.0, -1.0, 0.5], 0, 'no difference detected'),
    ([-8.0, -9.0, -10.0], 0, 'B ahead'),
])
def test_verdict_is_the_paired_t_test(diffs, sign, expected):
    assert claims.verdict(stats.one_sample_t(diffs), sign, len(diffs)) == expected
    assert claims.verdict(None, sign, 1) == 'no verdict (1 seed)'
    assert claims.verdict(stats.one_sample_t(diffs[:2]), sign, 2) == 'no verdict (2 seeds)'


def test_equal_differences_up_to_rounding_are_equal():
    diffs = [1 / 7 * 10 - 1 / 14 * 10, 10 / 14]  # the same number, computed two ways
    assert diffs[0] != diffs[1]
    assert stats.one_sample_t(diffs)['se'] == 0.0 and stats.one_sample_t(diffs)['p'] == 0.0


MOTION_CLASSES = ['MoveLeft', 'MoveRight', 'Grow', 'Shrink', 'BounceBall', 'BounceBox']


def _fake_run(shift_motion, noshift_motion):
    """The metrics of a motions run whose four motion classes all score shift_motion normally, and whose
    reversed clips score 100 - that (a model that follows the motion) or the same (an order-blind model)."""
    out = {}
    for arm, acc, blind in (('motions_shift', shift_motion, False), ('motions_noshift', noshift_motion, True)):
        normal = {c: (acc if c in claims.MOTION else 100.0) for c in MOTION_CLASSES}
        rev = {c: (v if blind or c not in claims.MOTION else 100.0 - v) for c, v in normal.items()}
        out[arm] = dict(results={'motions': dict(top1=sum(normal.values()) / 6, per_class=normal)},
                        orders={'motions': {'normal': dict(top1=0, per_class=normal),
                                            'reversed': dict(top1=0, per_class=rev)}})
    return out


def _summary(rows, seeds, scale):
    return dict(seeds={'tokenshift': len(seeds)}, steps_scale=scale, date='2026-12-04 17:00 UTC', code='c0de',
                jobs=2, wall_seconds=60.0, cpu_seconds=120.0, rows=rows, arms={},
                versions=dict(torch='2.x', torchvision='0.x', av='18', python='3.x', numpy='2'))


def test_rows_and_table_from_fake_runs():
    runs = [_fake_run(90, 50), _fake_run(80, 50), _fake_run(100, 50)]
    R = {arm: [r[arm] for r in runs] for arm in ('motions_shift', 'motions_noshift')}
    motion, reversal, everything = claims.rows_for('tokenshift', R)
    assert motion['a_values'] == [90, 80, 100] and motion['b_values'] == [50, 50, 50]
    assert motion['result']['mean'] == pytest.approx(40.0) and motion['result']['df'] == 2
    assert motion['result']['p'] == pytest.approx(stats.t_pvalue(40.0 / (10.0 / math.sqrt(3)), 2))
    assert motion['verdict'] == 'holds' and not motion['budgets_differ']
    # reversed: the shift model loses 2 * acc - 100 points, the order-blind one nothing
    assert reversal['a_values'] == [80, 60, 100] and reversal['b_values'] == [0, 0, 0]
    assert everything['a_values'][0] == pytest.approx((4 * 90 + 200) / 6)
    text = claims.markdown(_summary([motion], [0, 1, 2], 1.0))
    assert ('| 90.0 ± 10.0% | 50.0 ± 0.0% | +40.0% [15.2, 64.8] | paired t, df 2: p = 0.0202 | holds | '
            f"{claims.PAPER['tokenshift']} | equal |") in text
    assert 'REDUCED RUN' in claims.markdown(_summary([motion], [0, 1], 0.2))
    on_a_machine = _summary([motion], [0, 1, 2], 1.0)
    on_a_machine['versions']['cpu'] = claims.cpu_name()
    assert f"Python 3.x; {claims.cpu_name()}; code c0de" in ' '.join(claims.markdown(on_a_machine).split())
    assert 'torch kernels ' in claims.cpu_name()


def _fake_metrics(a, seed):
    """Made-up metrics of arm a holding every field any row reads: per-class top-1 of every class of its
    datasets, frame orders, projection matrices over the real class names, embedding statistics."""
    rng = np.random.default_rng([seed, len(a['name'])])
    classes = {}
    for d in a['datasets']:
        options = claims.DATASETS[d].get('synthetic')
        names = options.get('classes', MOTION_CLASSES) if isinstance(options, dict) else []
        classes[d] = claims.names_of(d, names) if d != 'motions' else MOTION_CLASSES
    per_class = lambda d: collections.defaultdict(lambda: float(rng.uniform(0, 100)),
                                                  {c: float(rng.uniform(0, 100)) for c in classes[d]})
    m = dict(results={d: dict(top1=float(rng.uniform(0, 100)), per_class=per_class(d)) for d in a['datasets']},
             orders={d: {o: dict(top1=float(rng.uniform(0, 100)), per_class=per_class(d))
                         for o in ('normal', 'reversed')} for d in a['datasets']},
             embedding=dict(effective_rank=float(rng.uniform(5, 20))))
    if a['settings'].get('projection', 'none') != 'none':
        m['W'] = {f'{s} -> {t}': dict(source=classes[s], target=classes[t],
                                      weight=rng.normal(size=(len(classes[t]), len(classes[s]))).tolist())
                  for s in a['datasets'] for t in a['datasets'] if s != t}
    return m


def _fake_rows(seeds=3):
    all_arms = claims.arms()
    R = {name: [_fake_metrics(a, s) for s in range(seeds)] for name, a in all_arms.items()}
    return [r for c in claims.CLAIMS for r in claims.rows_for(c, R, all_arms)]


def test_paired_arms_have_equal_budgets_unless_the_row_says_why():
    rows = _fake_rows()
    assert {r['claim'].split()[0] for r in rows} >= {'1', '2', '3', '4', '5'}
    for r in rows:
        if r['b_arm'] is None:
            continue
        differ, a, b = claims._budgets_differ(r['a_arm'], r['b_arm'], claims.arms())
        assert differ == r['budgets_differ']
        assert not differ or r['why'], f"{r['claim']} {r['setting']}: budgets {a} and {b} differ, and no reason"
    # the IV-ViT question both ways: at equal steps per dataset and at equal backbone updates
    ivvit = [r for r in rows if r['claim'] == '3 IV-ViT']
    updates = lambda arm: claims.budget(claims.arms()[arm])['updates']
    assert {updates(r['a_arm']) == updates(r['b_arm']) for r in ivvit} == {True, False}


def test_projection_row_is_the_exact_test_over_every_entry():
    rows = _fake_rows(seeds=5)
    pairs = next(r for r in rows if r['metric'] == 'AUC of the true pairs in W')
    assert len(pairs['a_values']) == 5 and pairs['b_arm'] is None and pairs['constant'] == 50.0
    assert '10 W' in pairs['test'] and 0 <= pairs['result']['p'] <= 1


def test_every_arm_is_a_config_that_train_py_accepts(tmp_path):
    for scale in (1.0, claims.QUICK_SCALE):
        for name, arm in claims.arms(scale).items():
            path = tmp_path / f'{name}.py'
            path.write_text(claims.config_text(arm, 3))
            cfg = config.load([str(path), f'--out_dir={tmp_path / name}'])
            assert cfg.max_iters == arm['settings']['max_iters'] and cfg.seed == 3
            for key in ('sampling', 'update', 'projection', 'shift_div', 'lr', 'uncertainty', 'loss_weights'):
                assert getattr(cfg, key) == arm['settings'].get(key, getattr(cfg, key))
            for dataset, spec in cfg.datasets.items():
                spec = config.dataset_spec(dataset, spec)
                if spec['synthetic']:
                    assert spec['synthetic']['seed'] == 3 and spec['root'].endswith(f'seed3/{dataset}')
                    inspect.signature(synthetic.WRITERS[spec['format']]).bind('root', **spec['synthetic'])
    assert claims.arms(0.2)['motions_shift']['settings']['max_iters'] * 5 == \
        claims.arms()['motions_shift']['settings']['max_iters']


def test_claims_name_their_arms():
    arms = claims.arms()
    for name, claim in claims.CLAIMS.items():
        if name != 'realdata' or claims.TINY_IMAGENET.is_dir():
            assert set(claim['arms']) <= set(arms)


def test_the_real_data_row_is_skipped_without_the_images(monkeypatch, tmp_path):
    monkeypatch.setattr(claims, 'TINY_IMAGENET', tmp_path / 'absent')
    assert not {'tin_alone', 'tin_motions'} & set(claims.arms())
    assert claims.rows_for('realdata', {}) == []


def test_each_seed_draws_its_own_data(tmp_path):
    for seed in (0, 1):
        synthetic.write_synthetic_tinyimagenet(tmp_path / f's{seed}', seed=seed, num_classes=2, train_per_class=1,
                                               val_per_class=1, size=16)
    image = 'train/n90000000/images/n90000000_0.JPEG'
    assert (tmp_path / 's0' / image).read_bytes() != (tmp_path / 's1' / image).read_bytes()


# ----------------------------------------------------------------------------- the run-reuse key


def test_the_code_hash_follows_the_core_not_the_docs(tmp_path, monkeypatch):
    arm = claims.arms()['motions_shift']
    (tmp_path / 'tools').mkdir()
    for name in ('model.py', 'sampling.py', 'README.md', 'tools/synthetic.py', 'tools/plot.py'):
        (tmp_path / name).write_text(f'# {name}\n')
    monkeypatch.setattr(claims, 'ROOT', tmp_path)
    first = claims.code_hash()
    (tmp_path / 'README.md').write_text('more docs\n')
    (tmp_path / 'tools' / 'plot.py').write_text('# a tool that reads results\n')
    assert claims.code_hash() == first
    for name in ('model.py', 'sampling.py', 'tools/synthetic.py'):
        (tmp_path / name).write_text(f'# {name}, changed\n')
        changed = claims.code_hash()
        assert changed != first
        first = changed
    assert claims.run_key(arm, 0, 'a') != claims.run_key(arm, 0, 'b') != claims.run_key(arm, 1, 'b')


def test_a_finished_run_is_reused_only_when_its_key_matches(tmp_path, monkeypatch):
    calls = []

    def fake_call(argv, log):
        calls.append(argv[0])
        out_dir = next(a.split('=', 1)[1] for a in argv if a.startswith('--out_dir='))
        with open(f'{out_dir}/log.jsonl', 'w') as f:
            f.write(json.dumps(dict(event='eval', iter=4, **{'motions/top1': 50.0,
                                                            'motions/per_class_top1': {}})) + '\n')
        return 1.5

    monkeypatch.setattr(claims, '_call', fake_call)
    arm = dict(claims.arms()['motions_noshift'], eval_args=[])
    first = claims.run(arm, 0, tmp_path, 'code1')
    assert calls == ['train.py'] and first['cpu_seconds'] == 1.5 and first['metrics']['results']['motions']
    assert claims.run(arm, 0, tmp_path, 'code1')['reused'] and calls == ['train.py']
    claims.run(arm, 0, tmp_path, 'code2')  # the core changed: trained again
    assert calls == ['train.py', 'train.py']


# ----------------------------------------------------------------------------- the committed summary


def test_update_docs_replaces_only_the_generated_table(tmp_path):
    summary = _summary([], [0, 1], 0.2)
    claims.update_docs(summary, tmp_path)  # no page yet: one is made
    page = tmp_path / 'claims.md'
    page.write_text('intro\n\n' + page.read_text().split('\n', 2)[2] + '\nafter\n')
    claims.update_docs(dict(summary, wall_seconds=600.0), tmp_path)
    text = page.read_text()
    assert text.startswith('intro\n') and text.endswith('after\n') and '10.0 min' in text
    assert claims.generated_block(text) == claims.markdown(dict(summary, wall_seconds=600.0))
    assert json.loads((tmp_path / 'claims.json').read_text())['wall_seconds'] == 600.0


def test_docs_table_is_generated_from_the_committed_summary():
    summary = json.loads((claims.DOCS / 'claims.json').read_text())
    assert claims.generated_block((claims.DOCS / 'claims.md').read_text()) == claims.markdown(summary)
    for r in summary['rows']:
        assert not r['budgets_differ'] or r['why']
        if r['result'] is not None:  # the verdict follows from the stated test
            assert r['verdict'] == claims.verdict(r['result'], r['sign'], len(r['a_values']))
    for claim, n in summary['seeds'].items():
        for name in claims.CLAIMS[claim]['arms']:
            assert {str(s) for s in range(n)} <= set(summary['arms'][name]['runs'])
    if summary['steps_scale'] == 1.0:  # the full run: at least 5 seeds for the projection pairs
        assert summary['seeds']['projection'] >= 5
        # the page's hand-written reading of the table names the run it reads: a new full run needs new words
        reading = (claims.DOCS / 'claims.md').read_text().split(claims.END)[1]
        assert '## What the full run shows' in reading and f"code {summary['code']}" in reading


# ----------------------------------------------------------------------------- the synthetic data it uses


def test_object_videos_show_their_object_in_a_drawn_motion():
    colour = np.array(synthetic.COLOURS['green'])
    motions = set()
    for n in range(12):
        rng = np.random.default_rng([0, n])
        motions.add(synthetic.OBJECT_MOTIONS[np.random.default_rng([0, n]).integers(5)])
        frames = synthetic.render_video('GreenTriangle', rng, 64, 48, 10)  # (T, H, W, 3)
        assert frames.shape == (10, 48, 64, 3)
        near = (np.abs(frames.astype(int) - colour).max(-1) <= 35).sum((1, 2))  # (T,): object pixels per frame
        assert (near > 0).all()
    assert len(motions) > 2  # not always the same motion


def test_writers_take_object_classes(tmp_path):
    synthetic.write_synthetic_tinyimagenet(tmp_path / 'img', classes=['GreenCircle', 'RedSquare'],
                                           train_per_class=2, val_per_class=1, size=16)
    assert (tmp_path / 'img' / 'words.txt').read_text().splitlines()[0].endswith('\tgreen circle')
    samples, classes = readers.read_tinyimagenet(tmp_path / 'img', 'train')
    assert classes == ['green circle', 'red square'] and len(samples) == 4
    synthetic.write_synthetic_ucf101(tmp_path / 'ucf', classes=['GreenCircle', 'MoveLeft'], groups=8, clips=1,
                                     seconds=0.2)
    samples, classes = readers.read_ucf101(tmp_path / 'ucf', 'train')
    assert classes == ['GreenCircle', 'MoveLeft'] and len(samples) == 2
    synthetic.write_synthetic_moments(tmp_path / 'mit', classes=['GreenCircle'], train_per_class=1, val_per_class=1,
                                      seconds=0.2)
    assert readers.read_moments(tmp_path / 'mit', 'train')[1] == ['green circle']
