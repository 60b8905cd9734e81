"""
Tools around the training path: none of them is needed to train or evaluate, and the core files import none of
them (data.py calls synthetic.py's writers only for a dataset configured with `synthetic`, as the demo's are).
Each runs as `python -m tools.NAME` or `python tools/NAME.py` from the repository's root.

    smoke.py      a set-up shrunk onto synthetic copies of its datasets: train, resume, evaluate (before a cluster run)
    synthetic.py  small synthetic datasets written in the real on-disk layouts and codecs (the demo, the tests)
    encode.py     frames to video files (AVI/MPEG-4, MP4/H.264, WebM/VP9), the mirror of decode.py
    probe.py      linear probe of a run's frozen backbone on any dataset
    plot.py       log.jsonl to a PNG (needs matplotlib)
    claims.py     each paper's central claim as controlled experiments over seeds
    bench.py      speed and memory, ours against references, as ratios
"""
