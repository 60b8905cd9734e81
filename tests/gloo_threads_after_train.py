"""Run train.py in this process (under torchrun), then list the gloo worker threads that outlived it.

A thread left running can abort the process as Python exits (see train.leave_process_groups). Linux only: the
threads are found by name in /proc/self/task. Each rank writes the names it found to $GLOO_THREADS_DIR/rankR.json.

    GLOO_THREADS_DIR=DIR torchrun --standalone --nproc_per_node=2 tests/gloo_threads_after_train.py CONFIG
"""

import json
import os
import runpy
import sys

import torch.distributed as dist


def gloo_threads():
    names = (open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task'))
    return sorted(name for name in names if 'gloo' in name)


seen = []
init_process_group = dist.init_process_group


def init_and_look(*args, **kwargs):  # the threads just after they start: proof that this torch names them
    init_process_group(*args, **kwargs)
    seen.extend(gloo_threads())


dist.init_process_group = init_and_look
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, repo)
sys.argv = [os.path.join(repo, 'train.py'), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name='__main__')
left = gloo_threads()
with open(os.path.join(os.environ['GLOO_THREADS_DIR'], f'rank{os.environ["RANK"]}.json'), 'w') as f:
    json.dump(dict(after_init=seen, after_train=left), f)  # a file each: the ranks' prints would interleave
