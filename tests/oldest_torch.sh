#!/usr/bin/env bash
# The fast suite on the oldest PyTorch we claim (2.4, with its torchvision 0.19), in a venv of its own.
# Not part of CI, which keeps one install (requirements.txt, the newest release pip finds).
#
#   bash tests/oldest_torch.sh                  # makes .venv-torch2.4 once, then runs pytest -m "not slow"
#   bash tests/oldest_torch.sh tests/test_ddp.py -m slow     # any pytest arguments instead
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv-torch2.4}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    # requirements.txt with torch and torchvision pinned to the oldest pair we support
    "$venv/bin/python" -m pip install --quiet torch==2.4.1 torchvision==0.19.1 \
        $(grep -v -E '^(torch|torchvision)$' requirements.txt)
fi
"$venv/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
exec "$venv/bin/python" -m pytest -q "$@"
