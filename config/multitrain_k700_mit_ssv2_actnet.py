# MultiTrain with Kinetics-700 (arXiv:2209.12362, Table 2): K700 + MiT + SSv2 + ActivityNet. The paper
# reports 75.8 (K700) / 42.2 (MiT) / 69.1 (SSv2) / 88.1 (ActNet) top-1 at 224p.
#
#   torchrun --standalone --nproc_per_node=8 train.py config/multitrain_k700_mit_ssv2_actnet.py
#   python -m tools.smoke config/multitrain_k700_mit_ssv2_actnet.py
import os

exec(open(os.path.join(os.path.dirname(__file__), 'multitrain_k400_mit_ssv2_actnet.py')).read())

out_dir = 'out/multitrain_k700_mit_ssv2_actnet'
datasets['k700'] = dict(datasets.pop('k400'), root='data/kinetics700')  # same layout, 700 classes
datasets = {name: datasets[name] for name in ('k700', 'mit', 'ssv2', 'actnet')}
_epoch = (545_000 + 727_000 + 168_000 + 107_000) // 512  # K700 ~545k training clips
max_iters = 50 * _epoch
warmup_iters = 10 * _epoch
eval_interval = _epoch
