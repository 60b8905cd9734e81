"""claims.py: the table's arithmetic and verdicts on made-up runs, its configs against the real config loader,
and the synthetic writers' options it uses. No experiment is run here."""
import inspect
import math

import numpy as np
import pytest

from tools import claims
import config
import readers
from tools import synthetic


def test_mean_std_is_the_sample_std():
    mean, std = claims.mean_std([1.0, 2.0, 6.0])
    assert mean == pytest.approx(3.0)
    assert std == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert claims.mean_std([4.0]) == (4.0, 0.0)


@pytest.mark.parametrize('diffs, sign, expected', [
    ([10.0, 12.0, 11.0], 1, 'holds'),                       # every seed the same way, far beyond its noise
    ([-10.0, -12.0, -11.0], 1, 'opposite'),
    ([10.0, -12.0, 11.0], 1, 'not seen at this scale'),     # one seed disagrees
    ([1.0, 30.0, 0.5], 1, 'not seen at this scale'),        # all positive, but the mean is within 2 SE
    ([0.0, 0.0, 0.0], 1, 'not seen at this scale'),
    ([5.0, 5.0], -1, 'opposite'),                           # no spread at all: separated
    ([1.0, -1.0, 0.5], 0, 'matches (within noise)'),
    ([-8.0, -9.0, -10.0], 0, 'B ahead'),
    ([50.0], 1, 'no verdict (1 seed)'),
    ([2.0, 2.0, 2.0], 1, 'not seen at this scale'),         # the same each seed, but smaller than a few clips
])
def test_verdict(diffs, sign, expected):
    assert claims.verdict(diffs, sign) == expected


def _fake_run(shift_motion, noshift_motion):
    """The metrics of a motions run whose four motion classes all score shift_motion normally, and whose
    reversed clips score 100 - that (a model that follows the motion) or the same (an order-blind model)."""
    classes = ['MoveLeft', 'MoveRight', 'Grow', 'Shrink', 'BounceBall', 'BounceBox']
    out = {}
    for arm, acc, blind in (('motions_shift', shift_motion, False), ('motions_noshift', noshift_motion, True)):
        normal = {c: (acc if c in claims.MOTION else 100.0) for c in classes}
        rev = {c: (v if blind or c not in claims.MOTION else 100.0 - v) for c, v in normal.items()}
        out[arm] = dict(results={'motions': dict(top1=sum(normal.values()) / 6, per_class=normal)},
                        orders={'motions': {'normal': dict(top1=0, per_class=normal),
                                            'reversed': dict(top1=0, per_class=rev)}})
    return out


def test_rows_and_table_from_fake_runs():
    runs = [_fake_run(90, 50), _fake_run(80, 50), _fake_run(100, 50)]
    R = {arm: [r[arm] for r in runs] for arm in ('motions_shift', 'motions_noshift')}
    rows = claims.rows_for('tokenshift', R)
    motion, reversal, everything = rows
    assert motion['a_values'] == [90, 80, 100] and motion['b_values'] == [50, 50, 50]
    assert motion['diff_mean_std'] == pytest.approx((40.0, 10.0))
    assert motion['verdict'] == 'holds'
    # reversed: the shift model loses 2 * acc - 100 points, the order-blind one nothing
    assert reversal['a_values'] == [80, 60, 100] and reversal['b_values'] == [0, 0, 0]
    assert everything['a_values'][0] == pytest.approx((4 * 90 + 200) / 6)
    text = claims.table(rows, [0, 1, 2])
    assert '| 90.0 ± 10.0% | 50.0 ± 0.0% | 40.0 ± 10.0% | holds |' in text
    assert 'REDUCED RUN' in claims.table(rows, [0, 1], 0.2)


def test_true_pairs_and_chance():
    names = {'a': ['x', 'y'], 'b': ['X', 'Y'], 'a/all': ['x', 'y', 'p', 'q'], 'b/all': ['X', 'Y', 'R', 'S']}
    pairs = {'a -> b': [['x', 'X', 0.9], ['y', 'X', 0.8], ['y', 'Y', 0.7], ['p', 'R', 0.1], ['q', 'S', 0.1]],
             'b -> a': [['X', 'x', 0.9], ['R', 'p', 0.1], ['S', 'q', 0.1], ['Y', 'q', 0.1], ['R', 'q', 0.0]]}
    found, total, chance = claims.true_pairs(pairs, names)
    assert (found, total) == (3, 10)
    assert chance == pytest.approx(2 * 5 * 2 / 16)  # per W: 5 entries x 2 true pairs / 16 entries


def test_every_arm_is_a_config_that_train_py_accepts(tmp_path):
    for scale in (1.0, claims.QUICK_SCALE):
        for name, arm in claims.arms(scale).items():
            path = tmp_path / f'{name}.py'
            path.write_text(claims.config_text(arm))
            cfg = config.load([str(path), '--seed=1', f'--out_dir={tmp_path / name}'])
            assert cfg.max_iters == arm['settings']['max_iters'] and cfg.seed == 1
            for key in ('sampling', 'update', 'projection', 'shift_div', 'lr'):
                assert getattr(cfg, key) == arm['settings'].get(key, getattr(cfg, key))
            for dataset, spec in cfg.datasets.items():
                spec = config.dataset_spec(dataset, spec)
                options = spec['synthetic'] if isinstance(spec['synthetic'], dict) else {}
                inspect.signature(synthetic.WRITERS[spec['format']]).bind('root', **options)  # the writer takes them
    assert claims.arms(0.2)['motions_shift']['settings']['max_iters'] * 5 == \
        claims.arms()['motions_shift']['settings']['max_iters']


def test_claims_name_their_arms():
    arms = claims.arms()
    for claim in claims.CLAIMS.values():
        assert set(claim['arms']) <= set(arms)


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
