"""plot.py: reading log.jsonl into curves (no matplotlib needed), bad lines named by file:line, the message when
matplotlib is missing, and, where matplotlib is installed, the PNG itself."""

import json
import sys
import types

import pytest

from tools import plot

EVENTS = [
    {'event': 'eval', 'iter': 0, 'shapes/top1': 10.0, 'shapes/n': 200, 'shapes/per_class_top1': {'a': 0.0},
     'motions/top1': 16.7},
    {'event': 'train', 'iter': 10, 'lr': 1e-4, 'sec_per_iter': 0.2, 'shapes/loss': 2.0, 'motions/loss': 1.5,
     'sigma/shapes': 1.0, 'sigma/motions': 0.9},
    {'event': 'train', 'iter': 20, 'lr': 2e-4, 'sec_per_iter': 0.2, 'shapes/loss': 1.0, 'motions/loss': 1.2,
     'sigma/shapes': 1.1, 'sigma/motions': 0.8},
    {'event': 'eval', 'iter': 20, 'shapes/top1': 50.0, 'motions/top1': 40.0},
    # a resume from the checkpoint at iteration 10 repeats iteration 20 with other values: the later ones win
    {'event': 'train', 'iter': 20, 'lr': 2e-4, 'sec_per_iter': 0.2, 'shapes/loss': 0.9, 'motions/loss': 1.1,
     'sigma/shapes': 1.2, 'sigma/motions': 0.7},
]


def write_log(path, events):
    path.write_text(''.join(json.dumps(e) + '\n' for e in events))
    return path


def test_series_extracts_each_panel(tmp_path):
    events = plot.read_log(write_log(tmp_path / 'log.jsonl', EVENTS))
    assert events == EVENTS
    loss, top1, sigma = (plot.series(events, kind, wanted) for _, kind, wanted in plot.PANELS)
    assert loss == {'shapes/loss': ([10, 20], [2.0, 0.9]), 'motions/loss': ([10, 20], [1.5, 1.1])}
    assert top1 == {'shapes/top1': ([0, 20], [10.0, 50.0]), 'motions/top1': ([0, 20], [16.7, 40.0])}
    assert sigma == {'sigma/shapes': ([10, 20], [1.0, 1.2]), 'sigma/motions': ([10, 20], [0.9, 0.7])}


def test_no_sigma_when_none_is_logged():
    events = [e for e in EVENTS if e['event'] == 'eval'] + [{'event': 'train', 'iter': 5, 'shapes/loss': 3.0}]
    _, kind, wanted = plot.PANELS[2]
    assert plot.series(events, kind, wanted) == {}


@pytest.mark.parametrize('line, words', [('{"event": "train", "iter": 3', 'not a JSON line'),
                                         ('[1, 2]', 'expected a JSON object'),
                                         ('{"event": "train"}', 'expected a JSON object')])
def test_bad_line_names_file_and_line(tmp_path, line, words):
    path = tmp_path / 'log.jsonl'
    path.write_text(json.dumps(EVENTS[0]) + '\n\n' + line + '\n')
    with pytest.raises(ValueError, match=f'log.jsonl:3: {words}'):
        plot.read_log(path)


def test_missing_matplotlib_says_how_to_get_it(tmp_path, monkeypatch):
    write_log(tmp_path / 'log.jsonl', EVENTS)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # `import matplotlib` now raises ImportError
    with pytest.raises(SystemExit) as exit:
        plot.main([str(tmp_path)])
    assert 'pip install matplotlib' in str(exit.value.code)
    assert not (tmp_path / 'log.png').exists()


def test_png_is_written(tmp_path):
    pytest.importorskip('matplotlib')
    (tmp_path / 'a').mkdir()
    write_log(tmp_path / 'a' / 'log.jsonl', EVENTS)
    write_log(tmp_path / 'b.jsonl', EVENTS[:1])
    plot.main([str(tmp_path / 'a'), str(tmp_path / 'b.jsonl'), f'--out={tmp_path / "x.png"}'])
    assert (tmp_path / 'x.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


class FakeAxes:
    def __init__(self):
        self.lines, self.title = [], None

    def plot(self, x, y, label):
        self.lines.append((label, list(x), list(y)))

    def set_title(self, title):
        self.title = title

    def set_xlabel(self, label):
        pass

    def legend(self, **kwargs):
        pass


def fake_matplotlib(monkeypatch, figures):
    """Just enough of matplotlib for plot.main, recording each figure's axes; savefig writes a marker file."""
    pyplot = types.ModuleType('matplotlib.pyplot')

    def subplots(rows, cols, figsize, squeeze):
        axes = [[FakeAxes() for _ in range(cols)] for _ in range(rows)]
        figures.append(axes[0])
        fig = types.SimpleNamespace(tight_layout=lambda: None,
                                    savefig=lambda path, dpi: open(path, 'w').write('fake png'))
        return fig, axes

    pyplot.subplots = subplots
    matplotlib = types.ModuleType('matplotlib')
    matplotlib.use = lambda backend: None
    matplotlib.pyplot = pyplot
    monkeypatch.setitem(sys.modules, 'matplotlib', matplotlib)
    monkeypatch.setitem(sys.modules, 'matplotlib.pyplot', pyplot)


def test_main_draws_one_panel_per_logged_quantity(tmp_path, monkeypatch):
    """Without a real matplotlib: main draws the loss, top-1 and sigma panels with one line per dataset and run,
    and leaves out the sigma panel for a run that logs no sigma."""
    figures = []
    fake_matplotlib(monkeypatch, figures)
    (tmp_path / 'run').mkdir()
    write_log(tmp_path / 'run' / 'log.jsonl', EVENTS)
    plot.main([str(tmp_path / 'run')])
    assert (tmp_path / 'run' / 'log.png').read_text() == 'fake png'
    loss, top1, sigma = figures[0]
    assert (loss.title, top1.title, sigma.title) == ('training loss', 'top-1 (%)', 'sigma_k')
    assert loss.lines == [('shapes', [10, 20], [2.0, 0.9]), ('motions', [10, 20], [1.5, 1.1])]
    assert [label for label, _, _ in sigma.lines] == ['shapes', 'motions']

    write_log(tmp_path / 'other.jsonl', [e for e in EVENTS if e['event'] == 'eval'] +
              [{'event': 'train', 'iter': 5, 'shapes/loss': 3.0}])
    plot.main([str(tmp_path / 'other.jsonl'), f'--out={tmp_path / "b.png"}'])
    assert [ax.title for ax in figures[1]] == ['training loss', 'top-1 (%)']
    assert (tmp_path / 'b.png').exists()
