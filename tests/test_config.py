"""Tests of the configurator: the order of arguments, type checks, and the errors users will actually hit."""
import json
from pathlib import Path

import pytest

import config


def write(tmp_path, name, text):
    """A config file in tmp_path, returned as the path string the command line would carry."""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_of(argv, base=None):
    """The message of the ConfigError that load(argv, base) raises; it must fit on one line."""
    with pytest.raises(config.ConfigError) as info:
        config.load(argv, base=base)
    message = str(info.value)
    assert '\n' not in message
    return message


# ---- defaults and order

def test_defaults_are_the_module_values_and_nothing_else():
    cfg = vars(config.load([]))
    assert cfg['lr'] == config.lr and cfg['datasets'] == config.datasets and cfg['mean'] == config.mean
    for name in ('ConfigError', 'load', 'print_config', 'to_dict', 'ast', 'copy'):
        assert name not in cfg  # classes, functions and modules are not settings
    assert not any(k.startswith('_') for k in cfg)
    assert list(cfg)[:2] == ['out_dir', 'init_from']  # definition order


def test_file_then_command_line(tmp_path):
    f = write(tmp_path, 'a.py', "lr = 0.5\nmax_iters = 7\n")
    cfg = config.load([f, '--lr=0.25'])
    assert cfg.lr == 0.25 and cfg.max_iters == 7


def test_command_line_then_file(tmp_path):
    f = write(tmp_path, 'a.py', "lr = 0.5\n")
    cfg = config.load(['--lr=0.25', '--max_iters=9', f])
    assert cfg.lr == 0.5 and cfg.max_iters == 9


def test_two_files_later_wins(tmp_path):
    a = write(tmp_path, 'a.py', "lr = 0.5\nseed = 1\n")
    b = write(tmp_path, 'b.py', "lr = 0.125\n")
    cfg = config.load([a, b])
    assert cfg.lr == 0.125 and cfg.seed == 1
    assert config.load([b, a]).lr == 0.5


def test_file_sees_earlier_values(tmp_path):
    f = write(tmp_path, 'double.py', "lr = lr * 2\nmax_iters = max_iters + 1\n")
    cfg = config.load(['--lr=0.5', f, f])
    assert cfg.lr == 2.0 and cfg.max_iters == config.max_iters + 2


def test_file_may_edit_a_dataset_in_place_without_touching_the_defaults(tmp_path):
    before = json.dumps(config.datasets)
    f = write(tmp_path, 'small.py', "datasets['shapes']['batch_size'] = 8\ndel datasets['motions']\n")
    cfg = config.load([f])
    assert cfg.datasets == {'shapes': dict(config.datasets['shapes'], batch_size=8)}
    assert json.dumps(config.datasets) == before
    assert config.load([]).datasets == config.datasets  # a second load starts from the defaults again


def test_private_names_imports_functions_and_classes_in_a_file_are_ignored(tmp_path):
    f = write(tmp_path, 'helpers.py', (
        "import math\n"
        "_base = 0.1\n"
        "def _scale(x):\n    return x * 2\n"
        "def scale(x):\n    return x * 3\n"
        "class Thing:\n    pass\n"
        "lr = scale(_scale(_base)) * math.cos(0)\n"))
    cfg = config.load([f])
    assert cfg.lr == pytest.approx(0.6)
    assert not {'math', '_base', '_scale', 'scale', 'Thing'} & set(vars(cfg))


# ---- value parsing

def test_int_for_float_is_converted():
    cfg = config.load(['--lr=1', '--grad_clip=0'])
    assert cfg.lr == 1.0 and type(cfg.lr) is float and type(cfg.grad_clip) is float


def test_list_and_tuple_become_the_default_type(tmp_path):
    assert config.load(['--mean=[0.5, 0.25, 0.125]']).mean == (0.5, 0.25, 0.125)
    assert config.load(['--mean=(0.5,0.5,0.5)']).mean == (0.5, 0.5, 0.5)
    f = write(tmp_path, 'm.py', "std = [1, 2, 3]\n")
    assert config.load([f]).std == (1, 2, 3) and type(config.load([f]).std) is tuple


def test_dict_value():
    cfg = config.load(["--datasets={'x': {'format': 'cifar100', 'root': 'data/c', 'batch_size': 4}}"])
    assert cfg.datasets == {'x': {'format': 'cifar100', 'root': 'data/c', 'batch_size': 4}}


def test_bools():
    assert config.load(['--compile=True']).compile is True
    assert config.load(['--compile=False']).compile is False


def test_value_is_split_at_the_first_equals_sign():
    assert config.load(['--out_dir=a=b']).out_dir == 'a=b'


def test_bare_strings_and_str_defaults():
    assert config.load(['--out_dir=out/x']).out_dir == 'out/x'
    assert config.load(['--init_from=resume']).init_from == 'resume'
    assert config.load(['--out_dir=123']).out_dir == '123'     # a str setting keeps the text typed
    assert config.load(['--out_dir=None']).out_dir == 'None'
    assert config.load(["--out_dir='q r'"]).out_dir == 'q r'    # quotes are Python's, so they go


def test_none_default_accepts_anything(tmp_path):
    assert config.load(['--eval_max_batches=5']).eval_max_batches == 5
    assert config.load(['--eval_max_batches=5', '--eval_max_batches=None']).eval_max_batches is None
    assert config.load(['--eval_max_batches=[1, 2]']).eval_max_batches == [1, 2]
    assert config.load(['--eval_max_batches=abc']).eval_max_batches == 'abc'
    f = write(tmp_path, 'n.py', "eval_max_batches = 2.5\n")
    assert config.load([f]).eval_max_batches == 2.5


# ---- errors

def test_unknown_key_from_command_line():
    message = error_of(['--lrr=0.1'])
    assert "'lrr'" in message and 'lr' in message.split('did you mean')[1] and 'command line' in message


def test_unknown_key_without_a_similar_one():
    message = error_of(['--zzqqxxww=1'])
    assert "'zzqqxxww'" in message and 'no similar key' in message


def test_unknown_key_from_file_names_file_and_line(tmp_path):
    f = write(tmp_path, 'typo.py', "lr = 0.1\nmax_iter = 10\n")
    message = error_of([f])
    assert f + ':2' in message and "'max_iter'" in message and 'max_iters' in message


@pytest.mark.parametrize('arg, given', [
    ('--max_iters=abc', 'str'),     # not a number at all
    ('--max_iters=True', 'bool'),   # bool is an int in Python, but never a count of iterations
    ('--max_iters=1.5', 'float'),   # no silent truncation
    ('--lr=False', 'bool'),
    ('--compile=1', 'int'),         # int is not a bool
    ('--mean=0.5', 'float'),
    ("--datasets=['shapes']", 'list'),
])
def test_wrong_type_from_command_line(arg, given):
    message = error_of([arg])
    key = arg[2:].split('=')[0]
    expected = type(getattr(config, key)).__name__
    assert f"{key} must be {expected}" in message and f"of type {given}" in message and 'command line' in message


def test_wrong_type_from_file_names_file_and_line(tmp_path):
    f = write(tmp_path, 'bad.py', "# comment\nlr = 0.1\ndepth = '12'\n")
    message = error_of([f])
    assert f + ':3' in message and 'depth' in message and "'12'" in message and 'str' in message


def test_missing_file():
    message = error_of(['config/does_not_exist.py'])
    assert 'config/does_not_exist.py' in message and 'not found' in message


def test_argument_that_is_neither_file_nor_override(tmp_path):
    assert "'--lr'" in error_of(['--lr'])
    assert "'lr=0.1'" in error_of(['lr=0.1'])
    txt = write(tmp_path, 'a.txt', "lr = 0.1\n")
    assert txt in error_of([txt])


def test_syntax_error_in_file_names_file_and_line(tmp_path):
    f = write(tmp_path, 'broken.py', "lr = 0.1\nmax_iters = (\n")
    message = error_of([f])
    assert f + ':2' in message and 'SyntaxError' in message


def test_exception_in_file_names_file_and_line(tmp_path):
    f = write(tmp_path, 'raises.py', "lr = 0.1\n\nmax_iters = undefined_name * 2\n")
    message = error_of([f])
    assert f + ':3' in message and 'NameError' in message and 'undefined_name' in message


def test_config_error_is_a_value_error():
    assert issubclass(config.ConfigError, ValueError)


def test_base_config_then_command_line():
    base = config.to_dict(config.load(['--lr=0.25', '--mean=[0.5, 0.5, 0.5]', '--max_iters=3']))
    cfg = config.load(['--max_iters=5'], base=base)
    assert cfg.lr == 0.25 and cfg.max_iters == 5
    assert cfg.mean == (0.5, 0.5, 0.5) and type(cfg.mean) is tuple  # the JSON list becomes a tuple again
    base['datasets']['shapes']['batch_size'] = -1
    assert cfg.datasets['shapes']['batch_size'] != -1  # base was copied, not shared


def test_base_config_is_checked():
    message = error_of([], base=dict(lrr=0.1))
    assert 'base config' in message and "'lrr'" in message and 'did you mean lr' in message
    assert 'max_iters must be int' in error_of([], base=dict(max_iters='7'))


# ---- output

def test_to_dict_json_round_trip():
    cfg = config.load(['--mean=[0.5, 0.5, 0.5]', '--eval_max_batches=3'])
    d = config.to_dict(cfg)
    assert json.loads(json.dumps(d)) == d
    assert d['mean'] == [0.5, 0.5, 0.5] and d['eval_max_batches'] == 3 and d['lr'] == cfg.lr
    assert set(d) == set(vars(cfg))
    d['datasets']['shapes']['batch_size'] = -1  # a deep copy: editing it leaves cfg alone
    assert cfg.datasets['shapes']['batch_size'] == config.datasets['shapes']['batch_size']


def test_print_config_is_aligned(capsys):
    cfg = config.load(['--lr=0.25'])
    config.print_config(cfg)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(vars(cfg))
    assert len({line.index(' = ') for line in lines}) == 1
    assert [line.split(' = ')[0].strip() for line in lines] == list(vars(cfg))
    lr_line = next(line for line in lines if line.split()[0] == 'lr')
    assert lr_line.endswith(' = 0.25')


@pytest.mark.parametrize('path', sorted(str(p) for p in (Path(__file__).resolve().parent.parent / 'config').glob('*.py')))
def test_every_config_file_loads_with_valid_datasets(path, monkeypatch):
    """Each set-up in config/ loads alone (and after the demo for the objective files), and each of its datasets
    passes config.dataset_spec's checks: no typo in a key or a format reaches a cluster job."""
    monkeypatch.chdir(Path(path).parent.parent)
    monkeypatch.setenv('WORLD_SIZE', '8')
    cfg = config.load([path])
    for name, spec in cfg.datasets.items():
        config.dataset_spec(name, spec)
    assert cfg.sampling in ('round_robin', 'proportional', 'mixed')


def test_helper_names_in_a_file_must_be_private_and_the_error_says_so(tmp_path):
    f = write(tmp_path, 'loop.py', "for d in datasets.values():\n    d['flip'] = False\n")
    message = error_of([f])
    assert "'d'" in message and 'must start with _' in message
    f = write(tmp_path, 'loop_ok.py', "for _d in datasets.values():\n    _d['flip'] = False\n")
    assert not any(spec['flip'] for spec in config.load([f]).datasets.values())


@pytest.mark.parametrize('key', sorted(config.CHOICES))
def test_every_choice_is_checked_in_one_place(key):
    message = error_of([f'--{key}=nonsense'])
    assert f"{key} must be one of {', '.join(config.CHOICES[key])}, got 'nonsense'" in message
    for allowed in config.CHOICES[key]:
        config.load([f'--{key}={allowed}'])


def test_the_choices_are_those_the_code_implements():
    import decode
    import model
    import readers
    from tools import synthetic
    assert set(config.FORMATS) == set(readers.FORMATS) == set(synthetic.WRITERS)
    assert config.SAMPLERS == tuple(decode.SAMPLERS)
    assert set(config.CHOICES['mvit_preset']) == set(model.MVIT_PRESETS)


def test_other_values_are_checked_too():
    assert 'grad_accum must be >= 1' in error_of(['--grad_accum=0'])
    assert ("init_from must be 'auto', 'scratch', 'resume', 'torchvision:<model name>' or a checkpoint's path"
            in error_of(['--init_from=x']))
    assert "dataset 'p': 'root' is required" in error_of(["--probe_datasets={'p': {'format': 'ucf101'}}"])


# ---- one dataset's setting from the command line; --help

def test_one_dataset_setting_from_the_command_line(tmp_path):
    f = write(tmp_path, 'k.py', "datasets = {'k400': dict(format='kinetics', root='data/k400', batch_size=32),\n"
                                "            'mit': dict(format='moments', root='data/mit')}\n")
    cfg = config.load([f, '--datasets.k400.batch_size=8', '--datasets.k400.root=/data/k400',
                       '--datasets.mit.short_side=[1.0, 1.2]'])
    assert cfg.datasets['k400'] == dict(format='kinetics', root='/data/k400', batch_size=8)
    assert cfg.datasets['mit']['short_side'] == (1.0, 1.2)  # the type of the default, as for any setting
    assert config.load([f]).datasets['k400']['batch_size'] == 32  # nothing leaks into the next load
    assert "no dataset 'k4' in datasets (configured: k400, mit)" in error_of([f, '--datasets.k4.batch_size=8'])
    assert "unknown config key 'batch_sise' (did you mean batch_size" in error_of([f, '--datasets.k400.batch_sise=8'])
    assert 'batch_size must be int' in error_of([f, '--datasets.k400.batch_size=big'])


def test_a_per_dataset_key_at_the_top_says_it_is_set_per_dataset():
    message = error_of(['--batch_size=8'])
    assert 'batch_size is set per dataset, e.g. --datasets.shapes.batch_size=8 --datasets.motions.batch_size=8' \
        in message


def test_take_options_splits_an_entry_points_own_options():
    options, rest = config.take_options(['a.py', '--ckpt=x/ckpt_best.pt', '--lr=1'], ['ckpt', 'confusion'])
    assert options == {'ckpt': 'x/ckpt_best.pt', 'confusion': None} and rest == ['a.py', '--lr=1']
    with pytest.raises(config.ConfigError, match='expected --ckpt=VALUE'):
        config.take_options(['--ckpt='], ['ckpt'])


@pytest.mark.parametrize('script', ['train.py', 'eval.py', 'predict.py'])
def test_help_prints_every_setting_with_its_default_and_comment(script):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, script, '--help'], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith(f'usage: python {script}')
    defaults = vars(config.load([]))
    for key, value in defaults.items():
        assert f'  --{key}={value!r}' in text, key
    # the comments of config.py, continuation lines included
    assert "  --lr_schedule='cosine'\n      'cosine': warm-up, then cosine decay to min_lr at max_iters; 'step': " \
           "warm-up, then lr x lr_factor at each of lr_milestones" in text
    assert '  --grad_checkpoint=False\n      recompute each transformer block' in text
    assert '  batch_size=32\n      per rank' in text  # a dataset's settings
    assert '---- optimisation' in text
    if script == 'eval.py':
        assert '--confusion=DATASET' in text and '--ckpt=PATH' in text
    if script == 'predict.py':
        assert '--dataset=NAME' in text


def test_every_setting_has_a_comment():
    with open(config.__file__, encoding='utf-8') as f:
        entries = config._documented(f.read())
    assert {name for kind, name, _, _ in entries if kind == 'setting'} == set(vars(config.load([])))
    assert [name for kind, name, _, comment in entries if kind != 'section' and not comment] == []
