"""Parity with torchvision's ViT: the same weights give the same logits (random weights, no downloads)."""

import pytest
import torch
import torchvision

import model as M
import pretrained as P


def random_head(tv):
    """torchvision starts its head at zero, which would make every logit 0 and any comparison of logits empty."""
    for p in tv.heads.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return tv.eval()


def small_tv_vit(**kw):
    torch.manual_seed(0)
    args = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5)
    args.update(kw)
    return random_head(torchvision.models.VisionTransformer(**args))


def tv_frame_features(tv, frames):
    """torchvision's class-token feature of each image, (N, D): its forward pass without the head."""
    x = tv._process_input(frames)                                          # (N, L, D)
    x = torch.cat([tv.class_token.expand(x.shape[0], -1, -1), x], dim=1)    # (N, L+1, D)
    return tv.encoder(x)[:, 0]


def test_small_vit_same_logits():
    tv = small_tv_vit()
    ours = P.from_torchvision(tv, 'toy').eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = tv(x)
        assert expected.abs().min() > 1e-3  # real logits, not the zeros of an untouched head
        torch.testing.assert_close(ours(x, 'toy'), expected, rtol=0, atol=1e-5)


def test_vit_b_16_same_logits():
    torch.manual_seed(0)
    tv = random_head(torchvision.models.vit_b_16(weights=None))
    ours = P.from_torchvision(tv, 'imagenet').eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = tv(x)
        diff = (ours(x, 'imagenet') - expected).abs().max().item()
    assert expected.std() > 0.1 and diff <= 1e-4


def test_video_without_shift_is_torchvision_per_frame_mean():
    tv = small_tv_vit()
    ours = P.from_torchvision(tv, 'toy', shift_div=0).eval()
    video = torch.randn(2, 3, 5, 32, 32)                                    # (B, 3, T, H, W)
    with torch.no_grad():
        frames = video.transpose(1, 2).flatten(0, 1)                        # (B*T, 3, H, W)
        mean = tv_frame_features(tv, frames).view(2, 5, -1).mean(1)         # (B, D)
        torch.testing.assert_close(ours(video, 'toy'), tv.heads(mean), rtol=0, atol=1e-5)
        # with the shift on, images are still torchvision's, videos are not the plain mean any more
        shifted = P.from_torchvision(tv, 'toy', shift_div=4).eval()
        torch.testing.assert_close(shifted(frames, 'toy'), tv(frames), rtol=0, atol=1e-5)
        assert (shifted(video, 'toy') - tv.heads(mean)).abs().max() > 1e-4


def test_every_key_is_consumed_and_checked():
    with pytest.raises(KeyError, match='heads.pre_logits'):  # a head layout we do not have: named, not skipped
        P.from_torchvision(small_tv_vit(representation_size=16))
    tv = small_tv_vit()
    ours = P.from_torchvision(tv, 'toy').state_dict()
    theirs = tv.state_dict()
    rename = lambda k: P._vit_key(k, 'toy')
    del theirs['encoder.ln.weight']
    with pytest.raises(KeyError, match='norm.weight'):
        P.convert_state_dict(theirs, ours, rename)
    theirs = tv.state_dict()
    theirs['encoder.layers.encoder_layer_1.mlp.0.weight'] = torch.zeros(65, 32)
    with pytest.raises(ValueError, match=r'encoder_layer_1\.mlp\.0\.weight.*blocks\.1\.mlp\.fc1\.weight'):
        P.convert_state_dict(theirs, ours, rename)


def test_pretrained_backbone_loads_into_other_input_size(monkeypatch):
    """init_from='torchvision:...' without a download: get_model returns a random small ViT."""
    tv = small_tv_vit(image_size=32)
    monkeypatch.setattr(torchvision.models, 'get_model', lambda name, weights: tv)
    torch.manual_seed(1)
    ours = M.VisionTransformer({'a': 3, 'b': 4}, img_size=16, patch_size=8, dim=32, depth=2, num_heads=2,
                               mlp_ratio=2.0, shift_div=4)
    head = ours.heads['a'].weight.clone()
    P.load_torchvision_backbone(ours, 'vit_tiny')
    assert torch.equal(ours.blocks[1].mlp.fc2.weight, tv.encoder.layers[1].mlp[3].weight)
    assert torch.equal(ours.patch_embed.weight, tv.conv_proj.weight)
    assert torch.equal(ours.heads['a'].weight, head)                        # heads are not touched
    assert ours.pos_embed.shape == (1, 1 + 2 * 2, 32)                       # 4x4 grid resampled to 2x2
    torch.testing.assert_close(ours.pos_embed[:, 0], tv.encoder.pos_embedding[:, 0])
    small = M.VisionTransformer({'a': 3}, img_size=16, patch_size=8, dim=64, depth=2, num_heads=2)
    with pytest.raises(ValueError, match='does not fit the configured model'):
        P.load_torchvision_backbone(small, 'vit_tiny')


def test_resize_pos_embed_keeps_a_same_size_grid():
    pos = torch.randn(1, 1 + 16, 8)
    torch.testing.assert_close(P.resize_pos_embed(pos, 4), pos)
    assert P.resize_pos_embed(pos, 7).shape == (1, 50, 8)
