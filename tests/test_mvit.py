"""The MViTv2 backbone: parity with torchvision's MViT (random weights, no downloads), presets, shapes, gradients."""

import types

import pytest
import torch
import torchvision
from torchvision.models.video.mvit import MSBlockConfig

import config
import model as M
import pretrained as P

SMALL = [  # heads, dim in, dim out, q stride, kv stride: every kind of block, on a 32x32 input
    (1, 16, 16, (1, 1, 1), (1, 4, 4)),
    (2, 16, 32, (1, 2, 2), (1, 2, 2)),
    (2, 32, 32, (1, 1, 1), (1, 2, 2)),
    (4, 32, 64, (1, 2, 2), (1, 1, 1)),
]


def small_tv_mvit(num_frames=4, size=(32, 32), blocks=SMALL, **kw):
    """A torchvision MViT of the same code as mvit_v2_s, small enough for a fast test."""
    torch.manual_seed(0)
    setting = [MSBlockConfig(h, i, o, [3, 3, 3] if q else [], [3, 3, 3], list(q), list(kv))  # q=(): no q pooling
               for h, i, o, q, kv in blocks]
    args = dict(residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True,
                num_classes=7)
    args.update(kw)
    tv = torchvision.models.video.MViT(size, num_frames, setting, **args)
    for p in tv.head.parameters():  # a larger head than torchvision's init, so that logits differ visibly
        torch.nn.init.normal_(p, std=0.2)
    return tv.eval()


@pytest.mark.parametrize('num_frames,size,kw', [
    (4, (32, 32), {}),                                    # relative positions, class token (torchvision's)
    (6, (48, 32), {}),                                    # another T, a non-square frame
    (2, (64, 64), {'rel_pos_embed': False}),              # absolute separable space + time positions
    (4, (32, 32), {'residual_pool': False}),              # no pooled-query residual
])
def test_small_mvit_same_logits(num_frames, size, kw):
    tv = small_tv_mvit(num_frames, size, **kw)
    ours = P.from_torchvision(tv, 'toy').eval()
    x = torch.randn(2, 3, num_frames, *size)
    with torch.no_grad():
        expected = tv(x)
        assert expected.abs().mean() > 0.1
        torch.testing.assert_close(ours(x, 'toy'), expected, rtol=0, atol=1e-5)


def test_mvit_v2_s_converts_every_key():
    torch.manual_seed(0)
    tv = torchvision.models.video.mvit_v2_s(weights=None)
    ours = P.from_torchvision(tv, 'kinetics')
    assert len(tv.state_dict()) == len(ours.state_dict()) == 397
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())
    assert [b.attn.num_heads for b in ours.blocks] == [row[0] for row in M.MVIT_V2_S]


@pytest.mark.slow
def test_mvit_v2_s_same_logits():
    torch.manual_seed(0)
    tv = torchvision.models.video.mvit_v2_s(weights=None)
    for p in tv.head.parameters():
        torch.nn.init.normal_(p, std=0.2)
    tv.eval()
    ours = P.from_torchvision(tv, 'kinetics').eval()
    x = torch.randn(1, 3, 16, 224, 224)
    with torch.no_grad():
        expected = tv(x)
        diff = (ours(x, 'kinetics') - expected).abs().max().item()
    assert expected.std() > 0.1 and diff <= 1e-4


def test_every_key_is_consumed_and_checked():
    tv = small_tv_mvit()
    ours = P.from_torchvision(tv, 'toy').state_dict()
    rename = lambda k: P._mvit_key(k, 'toy')
    theirs = tv.state_dict()
    del theirs['blocks.1.attn.pool_k.norm_act.0.bias']
    with pytest.raises(KeyError, match=r'blocks\.1\.attn\.norm_k\.bias'):
        P.convert_state_dict(theirs, ours, rename)
    theirs = {**tv.state_dict(), 'blocks.0.attn.extra': torch.zeros(1)}
    with pytest.raises(KeyError, match=r'blocks\.0\.attn\.extra'):
        P.convert_state_dict(theirs, ours, rename)
    theirs = {**tv.state_dict(), 'blocks.2.attn.rel_pos_t': torch.zeros(5, 16)}
    with pytest.raises(ValueError, match=r'blocks\.2\.attn\.rel_pos_t.*blocks\.2\.attn\.rel_pos_t'):
        P.convert_state_dict(theirs, ours, rename)
    with pytest.raises(KeyError, match=r'blocks\.0\.attn\.pool_q'):  # a block without q pooling: named, not skipped
        P.from_torchvision(small_tv_mvit(blocks=[(1, 16, 16, (), (1, 4, 4))] + SMALL[1:]))


def test_unsupported_torchvision_settings_are_refused():
    with pytest.raises(ValueError, match='residual_with_cls_embed'):
        P.from_torchvision(small_tv_mvit(residual_with_cls_embed=True))
    with pytest.raises(ValueError, match='proj_after_attn'):
        P.from_torchvision(small_tv_mvit(proj_after_attn=False))


def test_rel_pos_bias_matches_torchvision():
    """The decomposed bias on its own, against torchvision's, for pooled grids of different sizes."""
    from torchvision.models.video.mvit import _add_rel_pos
    torch.manual_seed(0)
    for q_grid, k_grid, table_grid in [((2, 8, 8), (2, 2, 2), (2, 8, 8)), ((4, 4, 6), (2, 2, 3), (4, 4, 6)),
                                       ((2, 4, 4), (2, 4, 4), (3, 6, 6))]:   # the last: tables resampled
        attn = M.PoolingAttention(8, 8, 2, (1, 1, 1), (1, 1, 1), (3, 3, 3), table_grid, rel_pos=True,
                                  residual_pool=True)
        q = torch.randn(3, 2, 1 + q_grid[0] * q_grid[1] * q_grid[2], 4)   # (B, h, 1 + Nq, C), class token first
        Nk = 1 + k_grid[0] * k_grid[1] * k_grid[2]
        expected = _add_rel_pos(torch.zeros(3, 2, q.shape[2], Nk), q, q_grid, k_grid, attn.rel_pos_h,
                                attn.rel_pos_w, attn.rel_pos_t)
        ours = attn.rel_pos_bias(q[:, :, 1:], q_grid, k_grid, num_cls=1)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
        assert ours[:, :, 0].abs().max() == 0 and ours[:, :, :, 0].abs().max() == 0


def tiny(rel_pos=False, cls_token=False, **kw):
    torch.manual_seed(0)
    return M.MViT({'images': 5, 'videos': 7}, M.MVIT_TINY, img_size=32, num_frames=8, rel_pos=rel_pos,
                  cls_token=cls_token, **kw)


@pytest.mark.parametrize('rel_pos,cls_token', [(False, False), (True, True)])
def test_images_are_one_frame_videos(rel_pos, cls_token):
    model = tiny(rel_pos, cls_token).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images, 'images'), model(images.unsqueeze(2), 'images'), rtol=0, atol=0)


@pytest.mark.parametrize('rel_pos,cls_token', [(False, False), (True, True)])
def test_shapes_for_several_inputs(rel_pos, cls_token):
    """Built for 8x32x32; other clip lengths and frame sizes resample the position tables."""
    model = tiny(rel_pos, cls_token).eval()
    with torch.no_grad():
        for shape in [(2, 3, 8, 32, 32), (1, 3, 16, 32, 32), (2, 3, 2, 64, 48), (2, 3, 32, 32)]:
            assert model.features(torch.randn(*shape)).shape == (shape[0], 128)
            logits = model(torch.randn(*shape), 'videos')
            assert logits.shape == (shape[0], 7) and torch.isfinite(logits).all()


def test_mean_of_tokens_without_class_token():
    model = tiny().eval()
    seen = {}
    model.norm.register_forward_hook(lambda module, args, out: seen.update(tokens=out))
    video = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        features = model.features(video)
    assert seen['tokens'].shape == (2, 4 * 2 * 2, 128)                  # (B, T*H*W, D): the last grid, no class token
    torch.testing.assert_close(features, seen['tokens'].mean(1))


def check_every_parameter_learns(model, x, head):
    """Every parameter gets a non-zero gradient, but those of another head and, in a class-token model, the last
    block's query pooling and relative positions: the output reads the class token only, which neither touches."""
    model.train()
    model(x, head).square().mean().backward()
    last = f'blocks.{len(model.blocks) - 1}.attn.'
    unread = {last + n for n in ('pool_q.weight', 'rel_pos_t', 'rel_pos_h', 'rel_pos_w')} if model.num_cls else set()
    for name, p in model.named_parameters():
        if name.startswith('heads.') and not name.startswith(f'heads.{head}.'):
            assert p.grad is None, name                                   # another dataset's head is not touched
        elif name in unread:
            assert p.grad.abs().sum() == 0, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('rel_pos,cls_token', [(False, False), (True, True)])
def test_tiny_trains(rel_pos, cls_token):
    check_every_parameter_learns(tiny(rel_pos, cls_token, drop_path=0.1), torch.randn(2, 3, 8, 32, 32), 'videos')


def test_multitrain_preset_forward_backward():
    torch.manual_seed(0)
    model = M.MViT({'k400': 4}, img_size=32, num_frames=4, head='mlp', **M.MVIT_PRESETS['multitrain'])
    assert len(model.blocks) == 24 and model.num_features == 768 and model.cls_token is None
    assert [b.attn.num_heads for b in model.blocks] == [1] * 2 + [2] * 3 + [4] * 16 + [8] * 3
    check_every_parameter_learns(model, torch.randn(2, 3, 4, 32, 32), 'k400')


def test_residual_pooling_and_drop_path_change_the_output():
    video = torch.randn(2, 3, 8, 32, 32)
    model = tiny().eval()
    with torch.no_grad():
        plain = tiny(residual_pool=False).eval()(video, 'videos')
        assert (model(video, 'videos') - plain).abs().max() > 1e-3
        dropping = tiny(drop_path=0.5).train()
        assert (dropping(video, 'videos') - dropping(video, 'videos')).abs().max() > 1e-3
        torch.testing.assert_close(dropping.eval()(video, 'videos'), model(video, 'videos'))


def cfg(**kw):
    """The default settings (config.py) with a tiny MViT and the overrides kw."""
    args = dict(config.to_dict(config.load([])), backbone='mvit', mvit_preset='tiny', img_size=32,
                datasets={'shapes': dict(format='tinyimagenet'), 'motions': dict(format='ucf101', num_frames=8)})
    args.update(kw)
    return types.SimpleNamespace(**args)


def test_build_model_and_optimizer_groups():
    model = M.build_model(cfg(), {'shapes': 10, 'motions': 6})
    assert isinstance(model, M.MViT) and set(model.heads) == {'shapes', 'motions'}
    assert model.pos_embed_time.shape == (4, 32) and model.pos_embed_space.shape == (8 * 8, 32)  # 8 frames, 32x32
    images_only = M.build_model(cfg(datasets={'shapes': dict(format='tinyimagenet')}), {'shapes': 10})
    assert images_only.pos_embed_time.shape == (8, 32)                                       # 16 frames by default
    v2_s = M.build_model(cfg(mvit_preset='mvit_v2_s'), {'shapes': 10})
    groups = M.configure_optimizer(v2_s, 1e-3, 0.05, (0.9, 0.999), 'cpu').param_groups
    decayed = {id(p) for p in groups[0]['params']}
    for name, p in v2_s.named_parameters():
        position = name.rsplit('.', 1)[-1] in ('cls_token', 'rel_pos_t', 'rel_pos_h', 'rel_pos_w')
        assert (id(p) in decayed) == (p.ndim > 1 and not position), name
    with pytest.raises(ValueError, match='mvit_preset'):  # the choices are checked in one place: config.check
        config.load(['--backbone=mvit', '--mvit_preset=huge'])


def test_pretrained_backbone_loads_into_other_input_size(monkeypatch):
    """init_from='torchvision:mvit_v2_s' without a download: get_model returns a small random torchvision MViT."""
    tv = small_tv_mvit(num_frames=8, size=(64, 64))
    monkeypatch.setattr(torchvision.models, 'get_model', lambda name, weights: tv)
    torch.manual_seed(1)
    ours = M.MViT({'a': 3, 'b': 4}, SMALL, img_size=32, num_frames=4)          # 2x8x8 tokens, tv: 4x16x16
    head = ours.heads['a'].weight.clone()
    P.load_torchvision_backbone(ours, 'mvit_v2_s')
    assert torch.equal(ours.blocks[3].mlp.fc2.weight, tv.blocks[3].mlp[3].weight)
    assert torch.equal(ours.blocks[1].attn.pool_q.weight, tv.blocks[1].attn.pool_q.pool.weight)
    assert torch.equal(ours.cls_token, tv.pos_encoding.class_token)
    assert torch.equal(ours.heads['a'].weight, head)                            # heads are not touched
    assert ours.blocks[0].attn.rel_pos_t.shape == (3, 16) and tv.blocks[0].attn.rel_pos_t.shape == (7, 16)
    torch.testing.assert_close(ours.blocks[0].attn.rel_pos_t, M.resize_table(tv.blocks[0].attn.rel_pos_t, 3))
    wrong = M.MViT({'a': 3}, M.MVIT_TINY, img_size=32, num_frames=4)
    with pytest.raises(ValueError, match="does not fit the configured model.*mvit_preset='mvit_v2_s'"):
        P.load_torchvision_backbone(wrong, 'mvit_v2_s')


def test_pretrained_backbone_type_is_checked_before_download(monkeypatch):
    def no_download(name, weights):
        raise AssertionError('downloaded before checking the backbone')
    monkeypatch.setattr(torchvision.models, 'get_model', no_download)
    vit = M.VisionTransformer({'a': 3}, img_size=16, patch_size=8, dim=32, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="needs backbone='mvit'"):
        P.load_torchvision_backbone(vit, 'mvit_v2_s')
    with pytest.raises(ValueError, match="needs backbone='vit'"):
        P.load_torchvision_backbone(tiny(), 'vit_b_16')
