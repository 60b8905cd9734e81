# The MultiTrain demo: three synthetic video datasets whose classes correspond, the same six motions stored and
# named as UCF101 (AVI: 'MoveLeft'), Kinetics (MP4 with audio: 'moving something left') and Moments in Time
# (MP4: 'leaving') store and name them. eval.py then shows whether the projection found the correspondences.
# A data set-up: give an objective file after it (config/multitrain*.py, config/cover.py), e.g.
#   python train.py config/multitrain_demo.py config/multitrain.py --out_dir=out/mt/multitrain
#   python eval.py --out_dir=out/mt/multitrain
# Writes data/demo/{motions,moves,clips} on first use.
_video = dict(num_frames=8, flip=False, batch_size=4)  # no flips: MoveLeft/MoveRight would swap
datasets = {
    'motions': dict(format='ucf101', root='data/demo/motions', synthetic=True, **_video),
    'moves': dict(format='kinetics', root='data/demo/moves', synthetic=dict(train_per_class=30, val_per_class=10),
                  **_video),
    'clips': dict(format='moments', root='data/demo/clips', synthetic=dict(train_per_class=30, val_per_class=10),
                  **_video),
}
max_iters = 400
eval_interval = 100
warmup_iters = 25
