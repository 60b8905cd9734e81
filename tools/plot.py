"""
Plot a run's log.jsonl: training loss, top-1 of every dataset and, when logged, the uncertainty weights sigma_k.

    python -m tools.plot                                  # out/demo/log.jsonl -> out/demo/log.png
    python -m tools.plot out/demo out/demo_noshift        # several runs in one figure, the first one's folder gets it
    python -m tools.plot out/x/log.jsonl --out=x.png

matplotlib is the only dependency, and nothing else in nanoCoTrain needs it, so it is not in requirements.txt:
`pip install matplotlib` first. Reading the log (read_log, series) needs nothing and is what the tests check.
"""

import argparse
import json
import os
import sys

# (title of a panel, kind of event, which keys of it): train.py logs `<dataset>/loss` in 'train' lines and
# `<dataset>/top1` in 'eval' lines; uncertainty weighting (MultiTrain eq. 6) logs `sigma/<dataset>`.
PANELS = [
    ('training loss', 'train', lambda key: key.endswith('/loss')),
    ('top-1 (%)', 'eval', lambda key: key.endswith('/top1')),
    ('sigma_k', 'train', lambda key: key.startswith('sigma/')),
]


def read_log(path):
    """The events of a log.jsonl file, in order; a line that is not a JSON object is an error naming file:line."""
    events = []
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{n}: not a JSON line ({e.msg}): {line.strip()[:80]!r}') from None
            if not isinstance(event, dict) or 'iter' not in event:
                raise ValueError(f'{path}:{n}: expected a JSON object with an "iter": {line.strip()[:80]!r}')
            events.append(event)
    return events


def series(events, kind, wanted):
    """{key: (iterations, values)} for the numeric keys of events of this kind for which wanted(key) holds.

    A resumed run repeats the iterations after its last checkpoint in log.jsonl; the later value of an iteration
    wins, so the curve is that of the run that went on.
    """
    points = {}
    for event in events:
        if event.get('event') != kind:
            continue
        for key, value in event.items():
            if wanted(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
                points.setdefault(key, {})[event['iter']] = value
    return {key: (sorted(p), [p[i] for i in sorted(p)]) for key, p in points.items()}


def log_path(arg):
    """A run's folder or its log.jsonl -> the log.jsonl."""
    return os.path.join(arg, 'log.jsonl') if os.path.isdir(arg) else arg


def main(argv):
    parser = argparse.ArgumentParser(description='Plot training loss, per-dataset top-1 and sigma_k from log.jsonl.')
    parser.add_argument('runs', nargs='*', default=['out/demo'], help='run folders or log.jsonl files (out/demo)')
    parser.add_argument('--out', help='PNG to write (default: log.png beside the first log)')
    args = parser.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use('Agg')  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit('plot.py needs matplotlib, which nanoCoTrain does not install: pip install matplotlib')

    logs = [log_path(run) for run in args.runs]
    for path in logs:
        if not os.path.isfile(path):
            sys.exit(f'no log at {path}: train first, or name a run folder or its log.jsonl')
    runs = {path: read_log(path) for path in logs}
    panels = [(title, {path: series(events, kind, wanted) for path, events in runs.items()})
              for title, kind, wanted in PANELS]
    panels = [(title, by_run) for title, by_run in panels if any(by_run.values())]  # sigma_k only when logged
    if not panels:
        sys.exit(f'nothing to plot in {", ".join(logs)}: no loss, top-1 or sigma values')
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (title, by_run) in zip(axes[0], panels):
        for path, curves in by_run.items():
            run = os.path.basename(os.path.dirname(os.path.abspath(path)))
            for key, (iters, values) in curves.items():
                label = key.split('/')[1] if key.startswith('sigma/') else key.split('/')[0]
                ax.plot(iters, values, label=f'{run}: {label}' if len(runs) > 1 else label)
        ax.set_title(title)
        ax.set_xlabel('iteration')
        ax.legend(fontsize='small')
    fig.tight_layout()
    out = args.out or os.path.join(os.path.dirname(logs[0]), 'log.png')
    fig.savefig(out, dpi=120)
    print(f'wrote {out}')


if __name__ == '__main__':
    main(sys.argv[1:])
