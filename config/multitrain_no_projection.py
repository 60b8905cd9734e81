# "w/o Projection Loss" of MultiTrain's Table 3 (arXiv:2209.12362): cross-entropy of each dataset's own head plus the
# informative loss (eqs. 2-3); no projection between label spaces.
#   python train.py config/multitrain_demo.py config/multitrain_no_projection.py --out_dir=out/mt/no_projection
sampling = 'mixed'
update = 'per_round'
projection = 'none'
var_weight = 1.0
cov_weight = 1.0
uncertainty = True
