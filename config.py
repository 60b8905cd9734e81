"""
The configurator: every setting of nanoCoTrain, with its default, and the few lines that override them.

    python train.py config/x.py --lr=3e-4 --out_dir=out/x

Arguments are applied left to right, so a later one wins. An argument is either
  - a config file `path/to/file.py`: plain Python, run with the current settings as its globals
    (so `lr = lr * 2` works); its top-level assignments become the new settings. Names starting
    with `_` are private helpers, and imported modules, functions and classes are ignored;
  - an override `--key=value`: the value is read as a Python literal (`3e-4`, `None`, `[1, 2]`),
    or taken as a bare string when it is not one (`--out_dir=out/x`).
Every value is checked against the type of its default below, every choice against CHOICES, every dataset's
settings against DATASET_DEFAULTS and FORMATS (check(), the one place where allowed values are checked), and
every mistake (unknown key, wrong type or value, broken file) raises ConfigError with one line saying what went
wrong and where. This is nanoGPT's configurator with its sharp edges filed off: a typo like `--lrr=1` fails
loudly instead of silently creating a new global. Below the settings: what `device` and `dtype` mean on this
machine (resolve_device, autocast_for), for train.py, eval.py and probe.py alike.
"""
import ast
import builtins
import copy
import difflib
import importlib.util
import io
import os
import sys
import tokenize
import traceback
import types
from contextlib import nullcontext

import torch

import augment
# ---- I/O and logging
out_dir = 'out/demo'           # checkpoints, log.jsonl, config.json and eval.json go here
init_from = 'auto'             # where a run starts: 'auto' (from scratch), 'torchvision:vit_b_16',
                               # 'torchvision:mvit_v2_s' or an earlier run's checkpoint to fine-tune from (a
                               # path ending in .pt); each continues from out_dir/ckpt.pt instead when it exists
                               # (a relaunched or requeued job goes on). 'scratch' ignores ckpt.pt (and
                               # overwrites it); 'resume' needs it
eval_interval = 200            # iterations between evaluations (and checkpoints)
log_interval = 10              # iterations between log lines
eval_max_batches = None        # cap on evaluation batches per dataset during training (None = whole split)
keep_last = 0                  # also keep the last N evaluated checkpoints as ckpt_<iter>.pt (0: only ckpt.pt)
save_best = False              # also keep ckpt_best.pt, the checkpoint with the best mean top-1 over datasets
wandb_log = False              # also send log.jsonl's scalars to Weights & Biases (pip install wandb)
wandb_project = 'nanocotrain'  # wandb_log: the W&B project
wandb_run_name = 'run'         # wandb_log: the W&B run's name
tensorboard = False            # also write log.jsonl's scalars as TensorBoard events in out_dir/tensorboard
                               # (pip install tensorboard)
seed = 1337                    # seeds the initial weights and every sample's randomness
# ---- data: one entry per dataset, trained round-robin in this order (DATASET_DEFAULTS below: every key)
# The demo: synthetic data written on first use. Crops keep >= 35% of an image so that the shape stays in view;
# no flips for `motions`, whose classes MoveLeft and MoveRight a horizontal flip would swap.
datasets = {
    'shapes': dict(format='tinyimagenet', root='data/demo/shapes', synthetic=True, batch_size=32,
                   crop_scale=(0.35, 1.0)),
    'motions': dict(format='ucf101', root='data/demo/motions', synthetic=True, batch_size=8, num_frames=8,
                    flip=False),
}
img_size = 32                  # side of the square crop fed to the model (224 for real runs)
mean = (0.485, 0.456, 0.406)   # input normalisation (ImageNet statistics)
std = (0.229, 0.224, 0.225)    # input normalisation: standard deviations (ImageNet statistics)
num_workers = 1                # DataLoader worker processes per dataset
num_temporal_clips = 1         # evaluation views: clips along time (10 in the DRL supplement); a dataset's own
num_spatial_crops = 1          # evaluation views: crops along the long side (3 in CoVeR)   setting wins over these
# ---- model
backbone = 'vit'               # 'vit': frame-wise ViT with token shift (IV-ViT); 'mvit': MViTv2 (MultiTrain)
mvit_preset = 'tiny'           # backbone='mvit': 'mvit_v2_s' (torchvision's), 'multitrain' (24 blocks), 'tiny' (CPU)
patch_size = 8                 # side of the square patches that become tokens (16 for ViT-B/16)
dim = 96                       # embedding width (768 for ViT-B)
depth = 6                      # number of blocks (12 for ViT-B)
num_heads = 3                  # attention heads (12 for ViT-B)
mlp_ratio = 4.0                # hidden width of each block's MLP, in units of dim
shift_div = 4                  # token shift: fold = dim // shift_div channels each way; 0 turns it off
head = 'linear'                # per-dataset head: 'linear' or 'mlp'
head_hidden = None             # head='mlp': hidden width (None: 4 x the feature width; MultiTrain's release: 2048)
head_dropout = 0.5             # head='mlp': dropout after the hidden GELU (the release's MODEL.DROPOUT_RATE 0.5)
head_output_dropout = False    # head='mlp': the same dropout on the head's output too, as the release's Mlp does
drop_path = 0.0                # stochastic depth of the last block (rising linearly from 0 at the first)
grad_checkpoint = False        # recompute each transformer block's activations in backward: less memory, ~1/3 more
                               # compute (torch.utils.checkpoint)
# ---- optimisation
max_iters = 800                # one iteration = one batch of every dataset
optimizer = 'adamw'            # 'adamw', or 'sgd' with momentum (CoVeR)
momentum = 0.9                 # optimizer='sgd': momentum
lr = 1e-3                      # peak learning rate, reached at the end of the warm-up
min_lr = 1e-4                  # lr_schedule='cosine': the learning rate at max_iters
warmup_iters = 50              # iterations of linear warm-up from ~0 to lr
weight_decay = 0.05            # decoupled weight decay of the weight matrices (not biases, norms, tokens)
position_decay = False         # weight decay on position embeddings and class tokens too (MultiTrain's release:
                               # ZERO_DECAY_POS_CLS False); biases and norms never decay
beta1 = 0.9                    # AdamW's first-moment decay
beta2 = 0.999                  # AdamW's second-moment decay
grad_clip = 1.0                # 0 disables clipping
label_smoothing = 0.0          # cross-entropy label smoothing (0.1 in MultiTrain)
grad_accum = 1                 # micro-batches per optimizer step (per rank): same as a batch grad_accum x larger,
                               # except the informative loss with informative_batch='micro'
lr_schedule = 'cosine'         # 'cosine': warm-up, then cosine decay to min_lr at max_iters; 'step': warm-up, then
                               # lr x lr_factor at each of lr_milestones (CoVeR: 5e-3, 5e-4, 5e-5)
lr_milestones = []             # lr_schedule='step': the iterations at which the lr drops
lr_factor = 0.1                # lr_schedule='step': what each milestone multiplies the lr by
# ---- co-training: how datasets share iterations and steps (sampling.py, train.py)
sampling = 'round_robin'       # 'round_robin' (IV-ViT: each round one batch of every dataset, in order),
                               # 'proportional' (CoVeR: every round holds every dataset, the sum of the batch
                               # sizes split by the datasets' sizes, a batch per sample shape), 'mixed'
                               # (MultiTrain: batches drawn from all same-shape datasets, batch sizes summed)
update = 'per_dataset'         # 'per_dataset': a step after each batch (IV-ViT); 'per_round': one step on the
                               # sum over the round's batches (CoVeR, MultiTrain)
# ---- objective (losses.Objective; MultiTrain eqs. 2-6, CoVeR section 3.3.1). Defaults: plain cross-entropy
projection = 'none'            # 'none', 'add' (paper, eqs. 4-5) or 'separate' (official code)
projection_init = 'zeros'      # 'zeros' or 'normal' (std 0.02, official code)
var_weight = 0.0               # weight of the variance term (eq. 2): 1 in the paper, 2.5 in the official code
cov_weight = 0.0               # weight of the covariance term (eq. 3): 1 in the paper, 0.1 in the official code
expander_hidden = 384          # expander MLP hidden width (official: 4096)
expander_out = 96              # expander output width (official: 768)
uncertainty = False            # learned per-dataset loss weights (eq. 6)
uncertainty_init = 'zeros'     # 'zeros': sigma_k^2 = 1; 'official': sigma_k^2 ~ U(0.2, 1), as the release draws it
informative_batch = 'step'     # the batch of the informative loss's statistics under grad_accum: 'step' (all the
                               # step's micro-batches of all ranks, by gradient caching) or 'micro' (each micro-batch
                               # gathered over the ranks, as the release computes it); the same without grad_accum
dataset_loss = 'share'         # a dataset's L_k: 'share' (its summed losses / all samples of the step: it weighs by
                               # its share, as MultiTrain's release) or 'mean' (its mean loss: CoVeR's weighted sum)
loss_weights = {}              # fixed per-dataset weights (CoVeR), e.g. {'shapes': 0.5}; a dataset not named weighs 1
mixup_alpha = 0.0              # mixup: x = lam x + (1 - lam) x', lam ~ Beta(alpha, alpha), 0 = off (official
                               # MultiTrain recipe: 0.8); partners are samples of the same dataset (augment.py)
cutmix_alpha = 0.0             # CutMix: a box of x' pasted into x, area 1 - lam, 0 = off (official: 1.0); with both
                               # on, each batch uses one of them, chosen with probability 0.5
eval_projected = False         # eval.py: also score each dataset with its projected logits Y'_k (eq. 4)
# ---- eval.py research tools (eval.py --temporal_tests=True, probe.py)
temporal_tests = False         # eval.py: also score each video dataset with its frames reversed, shuffled, static
temporal_seed = 0              # eval.py: seed of the one fixed frame permutation of the shuffled test
probe_datasets = {}            # probe.py: {name: settings as in `datasets`} to probe (A -> B); {}: the run's own
probe_epochs = 30              # probe.py: passes of AdamW over the cached training features
probe_lr = 1e-3                # probe.py: AdamW learning rate (cosine decay to 0) on standardised features
probe_weight_decay = 1e-4      # probe.py: AdamW weight decay of the linear classifier
probe_batch_size = 256         # probe.py: mini-batch of cached features
# ---- system
device = 'auto'                # 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...
dtype = 'auto'                 # autocast: 'auto' (bfloat16 on a GPU, none on a CPU), 'float32' (none), 'bfloat16',
                               # 'float16' (with loss scaling: GPUs without bf16, such as the V100)
compile = False                # torch.compile the model

# -----------------------------------------------------------------------------
# The allowed values (tables in capitals are not settings). check() holds every setting to them.
CHOICES = dict(
    sampling=('round_robin', 'proportional', 'mixed'), update=('per_dataset', 'per_round'),
    projection=('none', 'add', 'separate'), projection_init=('zeros', 'normal'), backbone=('vit', 'mvit'),
    mvit_preset=('mvit_v2_s', 'multitrain', 'tiny'), head=('linear', 'mlp'), optimizer=('adamw', 'sgd'),
    lr_schedule=('cosine', 'step'), dtype=('auto', 'float32', 'bfloat16', 'float16'),
    uncertainty_init=('zeros', 'official'), informative_batch=('step', 'micro'), dataset_loss=('share', 'mean'))
# Each on-disk layout (a reader in readers.FORMATS, a writer in synthetic.WRITERS) and the kind of sample it holds:
# image files, video files, rows of CIFAR's in-memory arrays, or for 'list' either images or videos, as the
# listed files' suffixes say (readers.list_kind).
FORMATS = dict(tinyimagenet='image', ucf101='video', imagefolder='image', cifar100='cifar', hmdb51='video',
               kinetics='video', minikinetics='video', ssv2='video', moments='video', activitynet='video',
               list='list')
# The settings of one dataset in `datasets` (or `probe_datasets`), with their defaults; dataset_spec() fills them in.
DATASET_DEFAULTS = dict(
    format=None,            # on-disk layout, a key of FORMATS
    root=None,              # dataset root directory
    synthetic=False,        # write a synthetic copy at root first if root does not exist (a dict: the writer's options)
    fold=1,                 # official split number (UCF101, HMDB51: 1, 2 or 3)
    batch_size=32,          # per rank
    num_frames=8,           # frames per video clip
    sampler='window',       # how a clip's frames are picked (see decode.clip_indices): 'window' (IV-ViT: num_frames
                            # over clip_seconds), 'stride' (MViT, MultiTrain: every frame_stride-th frame at
                            # 30 fps), 'segments' (CoVeR, SSv2: one frame in each of num_frames parts of the video)
    clip_seconds=2.67,      # 'window': the clip's duration in seconds, whatever the video's fps
    frame_stride=4,         # 'stride': frames between two samples, counted at 30 fps (MViT's 16x4, 32x3)
    crop_scale=(0.08, 1.0), # images (videos with resized_crop): area range of the random resized crop
    crop_aspect=(3 / 4, 4 / 3),  # images (videos with resized_crop): aspect ratio range of that crop
    resized_crop=False,     # videos: the random resized crop instead of a random short side and crop (MultiTrain's
                            # release: area 0.08-1, aspect 0.75-1.333)
    short_side=(1.0, 1.43), # videos: random short side range, in units of img_size (IV-ViT: 224..320)
    flip=True,              # random horizontal flip (off for direction-sensitive classes)
    color_jitter=0.0,       # strength of the random colour distortion in training (0 = off, at most 1)
    rand_augment='',        # RandAugment in timm's notation ('' = off; MultiTrain's release: 'rand-m7-n4-mstd0.5-inc1')
    aug_interpolation='bilinear',  # resampling of RandAugment's rotations, shears, shifts (release: 'bicubic')
    random_erasing=0.0,     # probability of erasing one random box with noise (release: 0.25, 'pixel' mode)
    repeated_aug=1,         # training samples made from each loaded image or clip (release: 2, AUG.NUM_SAMPLE):
                            # batch_size counts loaded ones, so a batch holds batch_size x repeated_aug samples
    num_temporal_clips=None,  # evaluation views of this dataset (None: the run's num_temporal_clips,
    num_spatial_crops=None,   # num_spatial_crops)
    max_bad_fraction=0.01,  # stop when more than this fraction of the samples cannot be read
    frames=False,           # read videos from folders of extracted frames (see decode.frame_folder), not by decoding
    flat=None,              # Kinetics: None finds each clip in its class folder or directly in {train,val}/;
                            # True looks only directly in {train,val}/, False only in class folders
    frames_fps=None,        # frames=True: the rate at which the frames were extracted (a folder has none)
    clip_len=None,          # ActivityNet: the annotated segments are cut into clips of at most clip_len seconds,
                            # each one sample (None: 10, as MultiTrain cuts them; see readers.read_activitynet)
    train_list='train.txt', # 'list': the training list under the root, 'relative/path label' per line
    val_list='val.txt',     # 'list': the validation list
    label_map='classes.txt', # 'list': the class names, one per line (optional: without it, the label numbers)
)
SAMPLERS = ('window', 'stride', 'segments')  # DATASET_DEFAULTS['sampler'], decode.SAMPLERS
# -----------------------------------------------------------------------------


class ConfigError(ValueError):
    """A bad command line or config file; the message alone tells the user what to fix."""


def _settings(namespace):
    """The public plain values of a namespace: what a module or config file means as settings."""
    return {k: v for k, v in namespace.items()
            if not k.startswith('_') and not isinstance(v, types.ModuleType) and not callable(v)}


def _require_known(key, defaults, where, in_file=False):
    """Fail on a key that is not a setting, a typo most likely, and suggest the nearest real ones."""
    if key not in defaults:
        close = difflib.get_close_matches(key, list(defaults), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "no similar key"
        if in_file:  # e.g. the loop variable of `for d in datasets.values(): ...`
            hint += "; a config file's own helper names must start with _, as in `for _d in datasets.values()`"
        raise ConfigError(f"{where}: unknown config key {key!r} ({hint})")


def _check(key, value, defaults, where, in_file=False):
    """Return value converted to the type of key's default, or raise ConfigError naming the problem."""
    _require_known(key, defaults, where, in_file)
    default = defaults[key]
    if default is None:  # no type to compare with: anything goes (e.g. eval_max_batches=None or 50)
        return value
    want = type(default)
    accepted = {float: (int, float), tuple: (list, tuple), list: (list, tuple)}.get(want, want)
    # bool is a subclass of int in Python, so True would pass as an int unless we exclude it
    if not isinstance(value, accepted) or (isinstance(value, bool) and want is not bool):
        raise ConfigError(f"{where}: {key} must be {want.__name__}, got {value!r} of type {type(value).__name__}")
    return want(value)


def _parse(raw, default):
    """Read a command-line value as a Python literal, or keep it as the bare string it is."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError):  # e.g. out/x, a=b: not a literal, just text
        return raw
    # a str setting keeps exactly what was typed (--out_dir=123 means '123'), unless it was quoted
    return raw if isinstance(default, str) and not isinstance(value, str) else value


def _run_file(path, cfg, defaults):
    """Run a config file with the current settings as its globals; its settings then update cfg."""
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: SyntaxError in config file: {e.msg}") from None
    namespace = copy.deepcopy(cfg)  # the file may mutate values in place (datasets['x']['batch_size'] = 8)
    namespace['__file__'] = path
    try:
        # builtins.compile: in this module `compile` is the setting above (False), not the builtin
        exec(builtins.compile(tree, path, 'exec'), namespace)
    except Exception as e:
        lines = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == path]
        where = f"{path}:{lines[-1]}" if lines else path
        raise ConfigError(f"{where}: {type(e).__name__} in config file: {e}") from None
    # the line where each name is assigned (the last one found), to point errors at it
    assigned = {n.id: n.lineno for n in ast.walk(tree)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for key, value in _settings(namespace).items():
        where = f"{path}:{assigned[key]}" if key in assigned else path
        cfg[key] = _check(key, value, defaults, where, in_file=True)


def _apply_to_dataset(key, raw, cfg, where):
    """--datasets.NAME.KEY=value (or probe_datasets.NAME.KEY): one setting of one dataset of cfg, in place."""
    table, _, rest = key.partition('.')
    name, _, setting = rest.rpartition('.')  # dataset names may hold dots; settings never do
    if table not in ('datasets', 'probe_datasets') or not name:
        raise ConfigError(f"{where}: a dotted key must be datasets.NAME.KEY or probe_datasets.NAME.KEY")
    if name not in cfg[table]:
        known = ', '.join(cfg[table]) or 'none'
        raise ConfigError(f"{where}: no dataset {name!r} in {table} (configured: {known}); add it in a config file")
    _require_known(setting, DATASET_DEFAULTS, where)
    cfg[table][name][setting] = _check(setting, _parse(raw, DATASET_DEFAULTS[setting]), DATASET_DEFAULTS, where)


def _apply(arg, cfg, defaults):
    """Apply one command-line argument (a config file or --key=value) to the settings in cfg, in place."""
    if arg.startswith('--'):
        if '=' not in arg:
            raise ConfigError(f"command line argument {arg!r}: expected --key=value")
        key, raw = arg[2:].split('=', 1)  # only the first '=' separates: --out_dir=a=b is 'a=b'
        where = f"command line ({arg})"
        if '.' in key:
            _apply_to_dataset(key, raw, cfg, where)
            return
        if key not in defaults and key in DATASET_DEFAULTS:  # e.g. --batch_size=8: a per-dataset setting
            examples = ' '.join(f'--datasets.{name}.{key}={raw}' for name in cfg['datasets'])
            raise ConfigError(f"{where}: {key} is set per dataset, e.g. {examples}")
        _require_known(key, defaults, where)  # before parsing, which needs the key's default
        cfg[key] = _check(key, _parse(raw, defaults[key]), defaults, where)
    elif not arg.endswith('.py'):
        raise ConfigError(f"command line argument {arg!r}: expected a config file ending in .py or --key=value")
    elif not os.path.isfile(arg):
        raise ConfigError(f"command line argument {arg!r}: config file not found")
    else:
        _run_file(arg, cfg, defaults)


def load(argv, base=None):
    """The settings after applying argv (e.g. sys.argv[1:]) left to right to the defaults.

    base, a dict like to_dict() returns (a checkpoint's config), replaces the defaults it names first:
    eval.py starts from the run's own settings. Its values are checked like any others (lists become
    tuples again where the default is a tuple)."""
    defaults = {k: v for k, v in _settings(globals()).items() if not k.isupper()}  # tables are not settings
    cfg = copy.deepcopy(defaults)  # a copy, so that nothing a run does can change the next load()'s defaults
    for key, value in copy.deepcopy(base or {}).items():
        cfg[key] = _check(key, value, defaults, 'base config')
    for arg in argv:
        _apply(arg, cfg, defaults)
    cfg = types.SimpleNamespace(**cfg)
    check(cfg)
    return cfg


def _choose(what, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


def check(cfg):
    """Raise ConfigError unless every choice of cfg is an allowed value and every dataset's settings are valid."""
    for key, allowed in CHOICES.items():
        _choose(key, getattr(cfg, key), allowed)
    if (cfg.init_from not in ('auto', 'scratch', 'resume') and not cfg.init_from.startswith('torchvision:')
            and not cfg.init_from.endswith(('.pt', '.pth'))):
        raise ConfigError(f"init_from must be 'auto', 'scratch', 'resume', 'torchvision:<model name>' or a "
                          f"checkpoint's path (ending in .pt), got {cfg.init_from!r}")
    check_device(cfg.device)
    if cfg.grad_accum < 1:
        raise ConfigError(f'grad_accum must be >= 1, got {cfg.grad_accum}')
    if cfg.dataset_loss == 'mean' and cfg.sampling == 'mixed':
        raise ConfigError("dataset_loss='mean' needs every micro-batch of every rank to hold each dataset the same "
                          "number of times (sampling='proportional' or 'round_robin'); 'mixed' batches vary: use "
                          "dataset_loss='share'")
    for key in ('mixup_alpha', 'cutmix_alpha', 'lr_factor'):
        if getattr(cfg, key) < 0:
            raise ConfigError(f'{key} must be >= 0, got {getattr(cfg, key)}')
    for name, spec in {**cfg.datasets, **cfg.probe_datasets}.items():
        dataset_spec(name, spec)


def dataset_spec(name, spec):
    """DATASET_DEFAULTS updated with spec (one dataset of a config), checked early with clear errors."""
    for key in spec:
        if key not in DATASET_DEFAULTS:
            close = difflib.get_close_matches(key, DATASET_DEFAULTS)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ''
            raise ConfigError(f"dataset {name!r}: unknown key {key!r}{hint} (known: {', '.join(DATASET_DEFAULTS)})")
    spec = {**DATASET_DEFAULTS, **spec}
    _choose(f"dataset {name!r}: format", spec['format'], tuple(FORMATS))
    if spec['root'] is None:
        raise ConfigError(f"dataset {name!r}: 'root' is required")
    _choose(f"dataset {name!r}: sampler", spec['sampler'], SAMPLERS)
    if spec['flat'] not in (None, True, False):
        raise ConfigError(f"dataset {name!r}: flat must be None (find the layout on disk), True or False, "
                          f"got {spec['flat']!r}")
    if spec['frames'] and (FORMATS[spec['format']] not in ('video', 'list') or not spec['frames_fps']):
        raise ConfigError(f"dataset {name!r}: frames=True needs a video format and frames_fps, the rate at which "
                          f"the frames were extracted (got format {spec['format']!r}, frames_fps "
                          f"{spec['frames_fps']!r})")
    if spec['clip_len'] is not None and not spec['clip_len'] > 0:
        raise ConfigError(f"dataset {name!r}: clip_len must be a positive number of seconds, got {spec['clip_len']!r}")
    for key in ('color_jitter', 'max_bad_fraction', 'random_erasing'):
        if not 0 <= spec[key] <= 1:
            raise ConfigError(f"dataset {name!r}: {key} must be in [0, 1], got {spec[key]!r}")
    for key in ('repeated_aug', 'num_temporal_clips', 'num_spatial_crops'):
        if not (spec[key] is None and key != 'repeated_aug') and not (type(spec[key]) is int and spec[key] >= 1):
            raise ConfigError(f"dataset {name!r}: {key} must be a whole number >= 1, got {spec[key]!r}")
    if spec['rand_augment']:
        try:
            augment.parse_rand_augment(spec['rand_augment'])
        except ValueError as e:
            raise ConfigError(f"dataset {name!r}: {e}") from None
    _choose(f"dataset {name!r}: aug_interpolation", spec['aug_interpolation'], ('nearest', 'bilinear', 'bicubic'))
    return spec


# -----------------------------------------------------------------------------
# the command line around the settings: --help, an entry point's own options, the optional packages asked for


def _documented(source):
    """[(kind, name, default source, comment)] from config.py's source, in order: kind 'section' for a
    `# ---- title` line, 'setting' for a top-level assignment, 'dataset' for a key of DATASET_DEFAULTS. A comment
    is the one at the end of the assignment's lines, with the indented comment-only lines below it, or the
    comment-only lines right above it at the margin (as `datasets` has)."""
    lines = source.splitlines()
    comments = {}  # line number -> (column, text) of its comment
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = (token.start[1], token.string.lstrip('#').strip())

    def alone(n):  # the comment is all there is on line n
        return n in comments and not lines[n - 1][:comments[n][0]].strip()

    def comment_of(node):
        text = [comments[n][1] for n in range(node.lineno, node.end_lineno + 1) if n in comments][:1]
        n = node.end_lineno + 1
        while text and alone(n) and comments[n][0] > 0:  # indented continuation lines
            text.append(comments[n][1])
            n += 1
        above, n = [], node.lineno - 1
        while not text and alone(n) and comments[n][0] == 0 and not comments[n][1].startswith('----'):
            above.insert(0, comments[n][1])
            n -= 1
        return ' '.join(text or above)

    entries, body = [], ast.parse(source).body
    sections = sorted(n for n, (col, text) in comments.items() if col == 0 and text.startswith('---- '))
    for node in body:
        while sections and sections[0] < node.lineno:
            entries.append(('section', comments[sections.pop(0)][1][5:], None, None))
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name == 'DATASET_DEFAULTS':
            entries += [('dataset', k.arg, ast.get_source_segment(source, k.value), comment_of(k))
                        for k in node.value.keywords]
        elif not name.isupper() and not name.startswith('_'):
            entries.append(('setting', name, None, comment_of(node)))
    return entries


def help_text(usage, options=()):
    """The text of --help: usage, the entry point's own options [(--name=VALUE, what it does)], then every
    setting of config.py with its default and its comment, and the settings of one dataset."""
    defaults = {k: v for k, v in _settings(globals()).items() if not k.isupper()}
    with open(__file__, encoding='utf-8') as f:
        entries = _documented(f.read())
    out = [f'usage: {usage}', '']
    if options:
        out.append('options of this command:')
        out += [f'  {flag}\n      {text}' for flag, text in options]
        out.append('')
    out.append('settings (config.py), overridden left to right by config files and --key=value:')
    for kind, name, default, comment in entries:
        if kind == 'section':
            out.append(f'\n  ---- {name}')
        elif kind == 'setting':
            out.append(f'  --{name}={defaults[name]!r}' + (f'\n      {comment}' if comment else ''))
    out.append('\nsettings of each dataset, in `datasets` (or --datasets.NAME.KEY=value on the command line):')
    out += [f'  {name}={default}' + (f'\n      {comment}' if comment else '')
            for kind, name, default, comment in entries if kind == 'dataset']
    return '\n'.join(out)


def handle_help(argv, usage, options=()):
    """With -h or --help in argv, print help_text and exit 0."""
    if '-h' in argv or '--help' in argv:
        print(help_text(usage, options))
        sys.exit(0)


def entry_point_options(argv, usage, options):
    """An entry point's command line (eval.py, predict.py): --help prints the usage, its own options and every
    setting, then exits 0; its own options, each ('--name=VALUE', what it does) in options, are split from argv as
    take_options does. Returns ({name: value or None}, the other arguments); a malformed option exits with one
    line."""
    handle_help(argv, usage, options)
    try:
        return take_options(argv, [flag[2:].split('=')[0] for flag, _ in options])
    except ConfigError as e:
        sys.exit(f'config error: {e}')


def take_options(argv, names):
    """Split an entry point's own --name=value options (not settings, e.g. eval.py's --ckpt) from argv: returns
    ({name: value or None}, the other arguments)."""
    values, rest = dict.fromkeys(names), []
    for arg in argv:
        key, _, value = arg[2:].partition('=')
        if arg.startswith('--') and key in values:
            if not value:
                raise ConfigError(f"command line argument {arg!r}: expected --{key}=VALUE")
            values[key] = value
        else:
            rest.append(arg)
    return values, rest


# what an optional setting needs installed: {setting: (importable module, what to pip install)}
OPTIONAL_PACKAGES = dict(wandb_log=('wandb', 'wandb'), tensorboard=('tensorboard', 'tensorboard'))


def missing_packages(cfg):
    """None when every optional package the settings of cfg ask for is installed, else the one line saying
    what to pip install (checked without importing anything)."""
    missing = [(key, package) for key, (module, package) in OPTIONAL_PACKAGES.items()
               if getattr(cfg, key) and importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (f"{', '.join(f'{key}=True' for key, _ in missing)} needs what nanoCoTrain does not install: "
            f"pip install {' '.join(package for _, package in missing)}")


def print_config(cfg):
    """Print every setting as an aligned `key = value` line, in the order they are defined above."""
    width = max(map(len, vars(cfg)))
    for key, value in vars(cfg).items():
        print(f"{key:<{width}} = {value!r}")


def _plain(value):
    """A deep copy of value made of JSON types only: dicts, lists, str, numbers, bools, None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def to_dict(cfg):
    """The settings as a plain JSON-serialisable dict (tuples become lists), for checkpoints and config.json."""
    return {k: _plain(v) for k, v in vars(cfg).items()}


def check_device(name):
    """Raise ConfigError when device names a GPU this machine does not have."""
    if not name.startswith('cuda'):
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(name.split(':', 1)[1]) if ':' in name and name.split(':', 1)[1].isdigit() else 0
    if index >= count:
        found = f'{count} GPU(s)' if count else f'no GPU (torch {torch.__version__}, CUDA {torch.version.cuda})'
        raise ConfigError(f"device={name!r} but torch finds {found} here: use --device=cpu, or --device=auto "
                          f"(a GPU when there is one)")


def resolve_device(name):
    """'auto' means the first GPU when there is one, else the CPU."""
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return name


def autocast_for(dtype, device):
    """The autocast context that the config's dtype asks for on device. 'auto' is bf16 on a GPU and no autocast
    (fp32) on a CPU, where bf16 matmuls are slow on most processors; 'bfloat16' and 'float16' are honoured on both."""
    device_type = 'cuda' if device.startswith('cuda') else 'cpu'
    if dtype == 'auto':
        dtype = 'bfloat16' if device_type == 'cuda' else 'float32'
    return nullcontext() if dtype == 'float32' else torch.autocast(device_type, dtype=getattr(torch, dtype))
