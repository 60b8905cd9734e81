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
import os
import traceback
import types
from contextlib import nullcontext

import torch

# ---- I/O and logging
out_dir = 'out/demo'           # checkpoints, log.jsonl, config.json and eval.json go here
init_from = 'auto'             # where a run starts: 'auto' (from scratch), 'torchvision:vit_b_16' or
                               # 'torchvision:mvit_v2_s'; either continues from out_dir/ckpt.pt instead when it
                               # exists (a relaunched or requeued job goes on). 'scratch' ignores ckpt.pt (and
                               # overwrites it); 'resume' needs it
eval_interval = 200            # iterations between evaluations (and checkpoints)
log_interval = 10              # iterations between log lines
eval_max_batches = None        # cap on evaluation batches per dataset during training (None = whole split)
keep_last = 0                  # also keep the last N evaluated checkpoints as ckpt_<iter>.pt (0: only ckpt.pt)
save_best = False              # also keep ckpt_best.pt, the checkpoint with the best mean top-1 over datasets
seed = 1337
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
std = (0.229, 0.224, 0.225)
num_workers = 1                # DataLoader worker processes per dataset
num_temporal_clips = 1         # evaluation views: clips along time (10 in the DRL supplement)
num_spatial_crops = 1          # evaluation views: crops along the long side (3 in CoVeR)
# ---- model
backbone = 'vit'               # 'vit': frame-wise ViT with token shift (IV-ViT); 'mvit': MViTv2 (MultiTrain)
mvit_preset = 'tiny'           # backbone='mvit': 'mvit_v2_s' (torchvision's), 'multitrain' (24 blocks), 'tiny' (CPU)
patch_size = 8
dim = 96                       # embedding width (768 for ViT-B)
depth = 6                      # number of blocks (12 for ViT-B)
num_heads = 3                  # attention heads (12 for ViT-B)
mlp_ratio = 4.0
shift_div = 4                  # token shift: fold = dim // shift_div channels each way; 0 turns it off
head = 'linear'                # per-dataset head: 'linear' or 'mlp'
drop_path = 0.0
# ---- optimisation
max_iters = 800                # one iteration = one batch of every dataset
optimizer = 'adamw'            # 'adamw', or 'sgd' with momentum (CoVeR)
momentum = 0.9                 # optimizer='sgd': momentum
lr = 1e-3
min_lr = 1e-4
warmup_iters = 50
weight_decay = 0.05
beta1 = 0.9
beta2 = 0.999
grad_clip = 1.0                # 0 disables clipping
label_smoothing = 0.0          # cross-entropy label smoothing (0.1 in MultiTrain)
grad_accum = 1                 # micro-batches per optimizer step (per rank): same as a batch grad_accum x larger
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
loss_weights = {}              # fixed per-dataset weights (CoVeR), e.g. {'shapes': 0.5}; a dataset not named weighs 1
mixup_alpha = 0.0              # mixup: x = lam x + (1 - lam) x', lam ~ Beta(alpha, alpha), 0 = off (official
                               # MultiTrain recipe: 0.8); partners are samples of the same dataset (mixup.py)
cutmix_alpha = 0.0             # CutMix: a box of x' pasted into x, area 1 - lam, 0 = off (official: 1.0); with both
                               # on, each batch uses one of them, chosen with probability 0.5
eval_projected = False         # eval.py: also score each dataset with its projected logits Y'_k (eq. 4)
# ---- eval.py research tools (eval.py --temporal_tests=True, probe.py)
temporal_tests = False         # eval.py: also score each video dataset with its frames reversed, shuffled, static
temporal_seed = 0              # eval.py: seed of the one fixed frame permutation of the shuffled test
probe_datasets = {}            # probe.py: {name: dataset settings as in `datasets`} to probe (A -> B); {}: the run's own
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
    lr_schedule=('cosine', 'step'), dtype=('auto', 'float32', 'bfloat16', 'float16'))
# Each on-disk layout (a reader in readers.FORMATS, a writer in synthetic.WRITERS) and the kind of sample it holds:
# image files, video files, or rows of CIFAR's in-memory arrays.
FORMATS = dict(tinyimagenet='image', ucf101='video', imagefolder='image', cifar100='cifar', hmdb51='video',
               kinetics='video', minikinetics='video', ssv2='video', moments='video', activitynet='video')
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
    crop_scale=(0.08, 1.0), # images: area range of the random resized crop
    short_side=(1.0, 1.43), # videos: random short side range, in units of img_size (IV-ViT: 224..320)
    flip=True,              # random horizontal flip (off for direction-sensitive classes)
    color_jitter=0.0,       # strength of the random colour distortion in training (0 = off, at most 1)
    max_bad_fraction=0.01,  # stop when more than this fraction of the samples cannot be read
    frames=False,           # read videos from folders of extracted frames (see decode.frame_folder), not by decoding
    flat=False,             # Kinetics: clips directly in {train,val}/, not in {train,val}/<label>/
    frames_fps=None,        # frames=True: the rate at which the frames were extracted (a folder has none)
    clip_len=None,          # ActivityNet: the annotated segments are cut into clips of at most clip_len seconds,
                            # each one sample (None: 10, as MultiTrain cuts them; see readers.read_activitynet)
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


def _apply(arg, cfg, defaults):
    """Apply one command-line argument (a config file or --key=value) to the settings in cfg, in place."""
    if arg.startswith('--'):
        if '=' not in arg:
            raise ConfigError(f"command line argument {arg!r}: expected --key=value")
        key, raw = arg[2:].split('=', 1)  # only the first '=' separates: --out_dir=a=b is 'a=b'
        where = f"command line ({arg})"
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
    if cfg.init_from not in ('auto', 'scratch', 'resume') and not cfg.init_from.startswith('torchvision:'):
        raise ConfigError(f"init_from must be 'auto', 'scratch', 'resume' or 'torchvision:<model name>', "
                          f"got {cfg.init_from!r}")
    check_device(cfg.device)
    if cfg.grad_accum < 1:
        raise ConfigError(f'grad_accum must be >= 1, got {cfg.grad_accum}')
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
    if spec['frames'] and (FORMATS[spec['format']] != 'video' or not spec['frames_fps']):
        raise ConfigError(f"dataset {name!r}: frames=True needs a video format and frames_fps, the rate at which "
                          f"the frames were extracted (got format {spec['format']!r}, frames_fps "
                          f"{spec['frames_fps']!r})")
    if spec['clip_len'] is not None and not spec['clip_len'] > 0:
        raise ConfigError(f"dataset {name!r}: clip_len must be a positive number of seconds, got {spec['clip_len']!r}")
    for key in ('color_jitter', 'max_bad_fraction'):
        if not 0 <= spec[key] <= 1:
            raise ConfigError(f"dataset {name!r}: {key} must be in [0, 1], got {spec[key]!r}")
    return spec


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
