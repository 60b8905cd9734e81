"""The frame-wise ViT: token shift against element-by-element loops (the TokenShift code's channel order, and the
printed eq. 7's order up to that permutation), late fusion, images vs videos."""

import copy

import pytest
import torch
import torch.nn.functional as F

from model import Attention, VisionTransformer, token_shift


def tiny_vit(shift_div=4, **kw):
    torch.manual_seed(0)
    args = dict(img_size=16, patch_size=4, dim=32, depth=3, num_heads=2, shift_div=shift_div)
    args.update(kw)
    return VisionTransformer({'images': 5, 'videos': 7}, **args).eval()


def token_shift_loop(x, T, fold):
    """Token shift written out element by element, frame by frame, channel by channel, in the TokenShift code's
    channel order (what model.token_shift implements): channels [0:fold] of frame t take frame t+1's, channels
    [fold:2*fold] frame t-1's. IV-ViT's printed eq. 7 lists the frame t-1 part first; see the test below."""
    out = x.clone()
    B = x.shape[0] // T
    for b in range(B):
        for t in range(T):
            for d in range(x.shape[-1]):
                row = b * T + t
                if d < fold:                                   # frame t takes frame t+1, zero at the last frame
                    out[row, 0, d] = x[row + 1, 0, d] if t < T - 1 else 0.0
                elif d < 2 * fold:                             # frame t takes frame t-1, zero at the first frame
                    out[row, 0, d] = x[row - 1, 0, d] if t > 0 else 0.0
    return out


@pytest.mark.parametrize('T,fold', [(4, 2), (3, 1), (5, 4)])
def test_token_shift_matches_equations(T, fold):
    x = torch.randn(2 * T, 6, 8)  # (B*T, N+1, D), B = 2
    torch.testing.assert_close(token_shift(x, T, fold), token_shift_loop(x, T, fold), rtol=0, atol=0)


def test_printed_eq7_is_the_same_shift_with_the_two_channel_blocks_swapped():
    """eq. 7 as printed (arXiv:2308.10533): channels [0:D_b] of frame t take frame t-1's, [D_b:D_b+D_f] frame t+1's
    (D_b = D_f = fold); eq. 8: the patch tokens are untouched. Written out literally, it equals token_shift with the
    two channel blocks swapped, a relabelling of channels that only matters for loading pretrained weights."""
    T, fold = 4, 2
    x = torch.randn(2 * T, 6, 8)  # (B*T, N+1, D), B = 2
    literal = x.clone()
    for row in range(x.shape[0]):
        t = row % T
        for d in range(2 * fold):
            if d < fold:                                       # eq. 7, first case: from frame t-1 (zero at t = 1)
                literal[row, 0, d] = x[row - 1, 0, d] if t > 0 else 0.0
            else:                                              # eq. 7, second case: from frame t+1 (zero at t = T)
                literal[row, 0, d] = x[row + 1, 0, d] if t < T - 1 else 0.0
    swap = torch.cat([torch.arange(fold, 2 * fold), torch.arange(fold), torch.arange(2 * fold, 8)])
    torch.testing.assert_close(token_shift(x[..., swap], T, fold)[..., swap], literal, rtol=0, atol=0)


def test_token_shift_leaves_patch_tokens_and_images_alone():
    x = torch.randn(12, 6, 8)
    y = token_shift(x, 4, 2)
    assert torch.equal(y[:, 1:], x[:, 1:])          # eq. 8: patch tokens untouched
    assert torch.equal(y[:, 0, 4:], x[:, 0, 4:])    # channels beyond 2*fold untouched
    assert torch.equal(token_shift(x, 1, 2), x)     # a single frame (an image) is never shifted
    assert torch.equal(token_shift(x, 4, 0), x)     # shift_div = 0


def test_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = Attention(16, 4)
    x = torch.randn(3, 5, 16)
    q, k, v = attn.qkv(x).view(3, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)
    w = (q @ k.transpose(-2, -1) / 2.0).softmax(-1)            # head dim 4: scale 1/sqrt(4)
    expected = attn.proj((w @ v).transpose(1, 2).reshape(3, 5, 16))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_shapes_and_heads():
    model = tiny_vit()
    assert model(torch.randn(3, 3, 16, 16), 'images').shape == (3, 5)
    assert model(torch.randn(2, 3, 4, 16, 16), 'videos').shape == (2, 7)
    with pytest.raises(KeyError):
        model(torch.randn(2, 3, 16, 16), 'unknown')


def test_without_shift_a_video_is_the_mean_of_its_frames():
    model = tiny_vit(shift_div=0)
    video = torch.randn(2, 3, 4, 16, 16)
    frames = torch.stack([model.features(video[:, :, t]) for t in range(4)], dim=1)  # (B, T, D) as images
    torch.testing.assert_close(model.features(video), frames.mean(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(video, 'videos'), model.heads['videos'](frames.mean(1)), rtol=1e-5, atol=1e-5)


def test_images_do_not_depend_on_shift():
    shifted = tiny_vit(shift_div=4)
    plain = copy.deepcopy(shifted)
    for block in plain.blocks:
        block.fold = 0
    images = torch.randn(4, 3, 16, 16)
    assert torch.equal(shifted(images, 'images'), plain(images, 'images'))
    video = torch.randn(2, 3, 4, 16, 16)
    assert not torch.allclose(shifted(video, 'videos'), plain(video, 'videos'))  # but videos do


def test_frame_order_matters_only_with_shift():
    video = torch.randn(2, 3, 6, 16, 16)
    reverse = video.flip(2)
    blind = tiny_vit(shift_div=0)
    torch.testing.assert_close(blind(video, 'videos'), blind(reverse, 'videos'), rtol=1e-5, atol=1e-5)
    seeing = tiny_vit(shift_div=4)
    assert (seeing(video, 'videos') - seeing(reverse, 'videos')).abs().max() > 1e-3


def test_block_shifts_before_each_sublayer_with_shifted_residual():
    """One block by hand: shift, attention residual, shift, MLP residual (the TokenShift block)."""
    model = tiny_vit(shift_div=4)
    block, T = model.blocks[0], 3
    x = torch.randn(2 * T, 17, 32)
    h = token_shift_loop(x, T, block.fold)
    h = h + block.attn(block.norm1(h))
    h = token_shift_loop(h, T, block.fold)
    h = h + block.mlp(block.norm2(h))
    torch.testing.assert_close(block(x, T), h, rtol=1e-5, atol=1e-5)


def test_training_step_reduces_loss():
    model = tiny_vit().train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = torch.randn(8, 3, 4, 16, 16), torch.randint(0, 7, (8,))
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x, 'videos'), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * first  # 8 random clips: memorised
    assert model.heads['images'].weight.grad is None  # the other dataset's head took no part


@pytest.mark.parametrize('backbone', ['vit', 'mvit'])
def test_grad_checkpoint_gives_the_same_loss_and_gradients(backbone):
    """Activation checkpointing recomputes each block in backward instead of keeping its activations: the loss
    and every gradient are those of the plain model, also with stochastic depth on (the recomputation replays
    the block's random draws) and for images and videos alike."""
    from model import MVIT_PRESETS, MViT

    def build(checkpointed):
        torch.manual_seed(0)
        if backbone == 'mvit':
            return MViT({'images': 5, 'videos': 7}, img_size=32, num_frames=8, drop_path=0.3,
                        grad_checkpoint=checkpointed, **MVIT_PRESETS['tiny'])
        return VisionTransformer({'images': 5, 'videos': 7}, img_size=16, patch_size=4, dim=32, depth=3, num_heads=2,
                                 drop_path=0.3, grad_checkpoint=checkpointed)

    side = 32 if backbone == 'mvit' else 16
    images, videos = torch.randn(4, 3, side, side), torch.randn(2, 3, 8, side, side)
    results = []
    for checkpointed in (False, True):
        model = build(checkpointed).train()
        torch.manual_seed(1)  # the same stochastic-depth draws in both models
        saved = []  # every tensor the forward pass keeps for backward
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            loss = model(images, 'images').logsumexp(1).mean() + model(videos, 'videos').logsumexp(1).mean()
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
                        sum(saved)))
    (plain_loss, plain, plain_kept), (checkpointed_loss, checkpointed, checkpointed_kept) = results
    assert checkpointed_kept < plain_kept / 2  # the blocks' activations were not kept
    assert torch.equal(plain_loss, checkpointed_loss)
    assert plain.keys() == checkpointed.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)
    with torch.no_grad():  # no graph, nothing to recompute: the plain forward pass
        assert torch.equal(build(True).eval()(images, 'images'), build(False).eval()(images, 'images'))
