"""
Classify files with a trained run: the top-5 classes of every dataset head, with their probabilities.

    python predict.py clip.mp4 photo.jpg                          # the demo run in out/demo
    python predict.py clip.mp4 --out_dir=out/x --dataset=k400     # one head only
    python predict.py clip.mp4 --ckpt=out/x/ckpt_best.pt --num_temporal_clips=10 --num_spatial_crops=3

The run's checkpoint (out_dir/ckpt.pt, or --ckpt) and the config saved in it are the starting point, as in
eval.py; config files and --key=value arguments override that config. A file is an image if PIL reads it, else a
video if PyAV reads it. Each head sees the file as its own dataset's evaluation does (data.file_views): for a
video, that dataset's clip sampler and number of frames; the views (temporal clips x spatial crops), whose
softmax scores are averaged (eval.view_scores). A file that cannot be read gets one line on stderr naming it, the
others are still classified, and the exit status is 1.
"""

import os
import sys

import torch

import config
import data
from decode import UnreadableSample, read_image
from eval import load_run, view_label, view_scores, views_of
from model import build_model

USAGE = 'python predict.py FILE [FILE ...] [CONFIG.py ...] [--key=value ...] [--ckpt=PATH] [--dataset=NAME]'
OPTIONS = [('--ckpt=PATH', 'the checkpoint to classify with (default: out_dir/ckpt.pt)'),
           ('--dataset=NAME', 'only the head of this dataset (default: every head)')]
VIEW_KEYS = ('num_temporal_clips', 'num_spatial_crops')


def head_spec(name, cfg, argv):
    """The settings with which dataset `name` evaluates; views asked for on the command line win over the
    dataset's own (where a dataset sets its own views)."""
    spec = config.dataset_spec(name, cfg.datasets[name])
    for key in VIEW_KEYS:
        if key in spec and any(arg.startswith(f'--{key}=') for arg in argv):
            spec[key] = getattr(cfg, key)
    return spec


def is_image(path):
    """True if PIL reads the file, which then is classified as an image."""
    try:
        read_image(path)
    except UnreadableSample:
        return False
    return True


@torch.no_grad()
def predict(model, path, specs, classes, cfg, device, autocast, k=5):
    """{head: (views label, [(class name, probability)] of its k most likely classes)} for one file."""
    video = not is_image(path)
    top = {}
    for name, spec in specs.items():
        x = data.file_views(path, video, spec, cfg)                   # (V, 3, S, S) or (V, 3, T, S, S)
        scores = view_scores(model, x[None].to(device), name, autocast)[0]  # (C,), the mean over the views
        p, c = scores.topk(min(k, len(scores)))
        top[name] = (view_label(views_of(spec, cfg, video), video), [(classes[name][i], v) for i, v in
                                                                     zip(c.tolist(), p.tolist())])
    return video, top


def main(argv):
    options, argv = config.entry_point_options(argv, USAGE, OPTIONS)
    files = [arg for arg in argv if not arg.startswith('--') and not arg.endswith('.py')]
    settings = [arg for arg in argv if arg not in files]
    if not files:
        sys.exit(f'no file to classify: {USAGE}')
    cfg, ckpt, ckpt_path = load_run(settings, options['ckpt'])
    heads = list(ckpt['classes'])
    if options['dataset']:
        if options['dataset'] not in heads:
            sys.exit(f"--dataset={options['dataset']}: the checkpoint has no head of that name (its heads: "
                     f"{', '.join(heads)})")
        heads = [options['dataset']]
    device = config.resolve_device(cfg.device)
    autocast = config.autocast_for(cfg.dtype, device)
    model = build_model(cfg, {name: len(c) for name, c in ckpt['classes'].items()})
    model.load_state_dict(ckpt['model'])
    model.to(device).eval()
    specs = {name: head_spec(name, cfg, settings) for name in heads}
    print(f'{ckpt_path} (iteration {ckpt["iter_num"]})')

    failed = 0
    for path in files:
        try:
            video, top = predict(model, path, specs, ckpt['classes'], cfg, device, autocast)
        except UnreadableSample as e:
            cause = f'{type(e.__cause__).__name__}: {e.__cause__}' if e.__cause__ else str(e)
            why = 'no such file' if not os.path.isfile(path) else f'neither an image nor a video ({cause})'
            print(f'{path}: skipped: {why}', file=sys.stderr)
            failed += 1
            continue
        print(f'{path} ({"video" if video else "image"})')
        for name, (views, classes) in top.items():
            noun = 'view' if views in ('1', '1x1') else 'views'
            print(f'  {name} ({views} {noun}): ' + ', '.join(f'{c} {p:.3f}' for c, p in classes))
    if failed:
        sys.exit(f'{failed} of {len(files)} file(s) could not be read')


if __name__ == '__main__':
    main(sys.argv[1:])
