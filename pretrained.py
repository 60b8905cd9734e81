"""
torchvision's weights in this project's models: the key maps and converters that the parity tests use to show
that our ViT and MViTv2 compute what torchvision's do (from_torchvision), and the pretrained initialisation of
init_from='torchvision:<name>' (load_torchvision_backbone). Every key is mapped and shape-checked; a key left
over or missing is an error naming it, because a converter that silently skips weights gives a silently wrong model.
"""

import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import PATCH_KERNEL, PATCH_PADDING, PATCH_STRIDE, MViT, VisionTransformer, resize_table

_VIT_BLOCK_KEYS = {'ln_1.': 'norm1.', 'self_attention.in_proj_': 'attn.qkv.', 'self_attention.out_proj.': 'attn.proj.',
                   'ln_2.': 'norm2.', 'mlp.0.': 'mlp.fc1.', 'mlp.3.': 'mlp.fc2.'}
_VIT_KEYS = {'conv_proj.': 'patch_embed.', 'class_token': 'cls_token', 'encoder.pos_embedding': 'pos_embed',
             'encoder.ln.': 'norm.'}
_MVIT_BLOCK_KEYS = {'norm1.': 'norm1.', 'attn.qkv.': 'attn.qkv.', 'attn.project.0.': 'attn.proj.',
                    'attn.pool_q.pool.': 'attn.pool_q.', 'attn.pool_q.norm_act.0.': 'attn.norm_q.',
                    'attn.pool_k.pool.': 'attn.pool_k.', 'attn.pool_k.norm_act.0.': 'attn.norm_k.',
                    'attn.pool_v.pool.': 'attn.pool_v.', 'attn.pool_v.norm_act.0.': 'attn.norm_v.',
                    'attn.rel_pos_': 'attn.rel_pos_', 'project.': 'skip_proj.', 'norm2.': 'norm2.',
                    'mlp.0.': 'mlp.fc1.', 'mlp.3.': 'mlp.fc2.'}
_MVIT_KEYS = {'conv_proj.': 'patch_embed.', 'pos_encoding.class_token': 'cls_token',
              'pos_encoding.temporal_pos': 'pos_embed_time', 'pos_encoding.spatial_pos': 'pos_embed_space',
              'pos_encoding.class_pos': 'pos_embed_cls', 'norm.': 'norm.'}


def _rename(key, block_pattern, block_table, table):
    """A state-dict key -> ours by prefix tables; keys matching block_pattern (number, rest) go to blocks.<number>."""
    block = re.fullmatch(block_pattern, key)
    if block:
        prefix, table, key = f'blocks.{block[1]}.', block_table, block[2]
    else:
        prefix = ''
    for old, new in table.items():
        if key.startswith(old):
            return prefix + new + key[len(old):]
    return None


def _vit_key(key, head):
    """A torchvision VisionTransformer state-dict key -> ours (None if there is no such place)."""
    return _rename(key, r'encoder\.layers\.encoder_layer_(\d+)\.(.+)', _VIT_BLOCK_KEYS,
                   {**_VIT_KEYS, 'heads.head.': f'heads.{head}.'})


def _mvit_key(key, head):
    """A torchvision MViT state-dict key -> ours (None if there is no such place)."""
    return _rename(key, r'blocks\.(\d+)\.(.+)', _MVIT_BLOCK_KEYS, {**_MVIT_KEYS, 'head.1.': f'heads.{head}.'})


def convert_state_dict(theirs, ours, rename):
    """Map every key of `theirs` with rename(key) onto `ours` (both state dicts), checking every shape.

    A key of theirs with no place in ours, a shape that does not fit, or a key of ours left without a value is
    an error naming the key: a converter that silently skips weights produces a model that is silently wrong.
    """
    out = {}
    for key, value in theirs.items():
        new = rename(key)
        if new is None or new not in ours:
            raise KeyError(f'torchvision key {key!r} has no place in this model (mapped to {new!r})')
        if value.shape != ours[new].shape:
            raise ValueError(f'torchvision {key!r} {tuple(value.shape)} does not fit {new!r} {tuple(ours[new].shape)}')
        out[new] = value
    missing = sorted(set(ours) - set(out))
    if missing:
        raise KeyError(f'no torchvision weights for {missing}')
    return out


def from_torchvision(tv_model, dataset='torchvision', shift_div=0):
    """This project's model with the weights of a torchvision VisionTransformer or video MViT, of any size.

    The architecture is read from the module itself, and the single classification head is named `dataset`.
    The logits equal torchvision's (for the ViT on images; on a video (B, 3, T, H, W) with shift_div=0 they equal
    the head applied to the mean of torchvision's per-frame class-token features).
    """
    import torchvision
    if isinstance(tv_model, torchvision.models.video.MViT):
        return _mvit_from_torchvision(tv_model, dataset)
    if not isinstance(tv_model, torchvision.models.VisionTransformer):
        raise TypeError(f'from_torchvision takes a torchvision VisionTransformer or MViT, '
                        f'got {type(tv_model).__name__}')
    layers = tv_model.encoder.layers
    model = VisionTransformer({dataset: tv_model.num_classes}, img_size=tv_model.image_size,
                              patch_size=tv_model.patch_size, dim=tv_model.hidden_dim, depth=len(layers),
                              num_heads=layers[0].self_attention.num_heads,
                              mlp_ratio=tv_model.mlp_dim / tv_model.hidden_dim, shift_div=shift_div)
    state = convert_state_dict(tv_model.state_dict(), model.state_dict(), lambda k: _vit_key(k, dataset))
    model.load_state_dict(state)
    return model


def mvit_settings(tv_model):
    """The MViT(...) arguments of a torchvision MViT, read from its modules: block table, input size, switches."""
    first = tv_model.blocks[0]
    if not first.proj_after_attn:
        raise ValueError('torchvision MViT with proj_after_attn=False (MViTv1) is not supported: we widen in attention')
    if first.attn.residual_pool and first.attn.residual_with_cls_embed:
        raise ValueError('torchvision MViT with residual_with_cls_embed=True is not supported: the class token '
                         'takes no pooled-query residual here')
    conv = tv_model.conv_proj
    if (conv.kernel_size, conv.stride, conv.padding) != (PATCH_KERNEL, PATCH_STRIDE, PATCH_PADDING):
        raise ValueError(f'patch embedding {conv} differs from kernel {PATCH_KERNEL}, stride {PATCH_STRIDE}, '
                         f'padding {PATCH_PADDING}')
    kernels = {m.kernel_size for m in tv_model.blocks.modules() if isinstance(m, nn.Conv3d)}
    if len(kernels) > 1:
        raise ValueError(f'pooling kernels differ between blocks ({sorted(kernels)}): one kernel is supported')
    stride = lambda pool: tuple(pool.pool.stride) if pool is not None else (1, 1, 1)
    blocks = [(b.attn.num_heads, b.norm1.normalized_shape[0], b.attn.output_dim, stride(b.attn.pool_q),
               stride(b.attn.pool_k)) for b in tv_model.blocks]
    (H, W), T = tv_model.pos_encoding.spatial_size, tv_model.pos_encoding.temporal_size   # token grid
    return dict(blocks=blocks, img_size=(H * PATCH_STRIDE[1], W * PATCH_STRIDE[2]), num_frames=T * PATCH_STRIDE[0],
                rel_pos=first.attn.rel_pos_h is not None, cls_token=True, residual_pool=first.attn.residual_pool,
                kernel=next(iter(kernels), (3, 3, 3)))


def _mvit_from_torchvision(tv_model, dataset):
    model = MViT({dataset: tv_model.head[-1].out_features}, **mvit_settings(tv_model))
    state = convert_state_dict(tv_model.state_dict(), model.state_dict(), lambda k: _mvit_key(k, dataset))
    model.load_state_dict(state)
    return model


def resize_pos_embed(pos_embed, grid):
    """(1, 1 + g*g, D) -> (1, 1 + grid*grid, D): the patch positions resampled bicubically, the class token's kept."""
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    g = math.isqrt(patches.shape[1])
    if g == grid:
        return pos_embed
    patches = patches.reshape(1, g, g, -1).permute(0, 3, 1, 2)                        # (1, D, g, g)
    patches = F.interpolate(patches, size=(grid, grid), mode='bicubic', align_corners=False)
    return torch.cat([cls, patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)         # (1, 1 + grid*grid, D)


def load_torchvision_backbone(model, name):
    """Copy the backbone of torchvision's pretrained `name` ('vit_b_16', 'mvit_v2_s') into model; heads stay new.

    torchvision downloads the weights on first use. Position tables are resampled when model's input size
    differs from the pretrained one (e.g. 64x64 Tiny-ImageNet crops from 224x224 ImageNet weights, or 8-frame clips
    from 16-frame Kinetics weights).
    """
    import torchvision
    mvit = name.startswith('mvit')
    if not isinstance(model, MViT if mvit else VisionTransformer):  # before the download
        raise ValueError(f"init_from='torchvision:{name}' needs backbone='{'mvit' if mvit else 'vit'}'")
    tv_model = torchvision.models.get_model(name, weights='DEFAULT')
    state = {k: v for k, v in tv_model.state_dict().items() if not k.startswith('head')}  # ViT 'heads.', MViT 'head.'
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith('heads.')}
    if mvit:
        rename, hint = lambda k: _mvit_key(k, None), "for MViTv2-S set mvit_preset='mvit_v2_s'"
        fits = lambda k: '.rel_pos_' in k and rename(k) in ours  # relative-position tables, resampled as at run time
        state = {k: resize_table(v, ours[rename(k)].shape[0]) if fits(k) else v for k, v in state.items()}
    else:
        rename, hint = lambda k: _vit_key(k, None), ('for ViT-B/16 set patch_size=16, dim=768, depth=12, '
                                                     'num_heads=12, mlp_ratio=4.0')
        grid = math.isqrt(model.pos_embed.shape[1] - 1)
        state['encoder.pos_embedding'] = resize_pos_embed(state['encoder.pos_embedding'], grid)
    try:
        model.load_state_dict(convert_state_dict(state, ours, rename), strict=False)
    except (KeyError, ValueError) as e:
        raise ValueError(f'{name} does not fit the configured model ({e}); {hint}') from e
