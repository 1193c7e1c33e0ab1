"""dlhelpers.attention == PyTorch: scaled dot-product attention, multi-head attention, Transformer encoder layer.

float64, forward and backward (inputs and parameters), shapes, masks and options drawn by hypothesis.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from dlhelpers import attention as AT
from dlhelpers.blocks import copy_weights


def _randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _bool(shape: tuple[int, ...], seed: int, p: float = 0.3) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < p


# --------------------------------------------------------------------------- scaled dot-product attention
@st.composite
def sdpa_cases(draw):
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    L, S, E, Ev = (draw(st.integers(1, 6)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "bool", "bool_bcast", "float", "causal"]))
    scale = draw(st.sampled_from([None, 0.5, 2.0]))
    return lead, L, S, E, Ev, kind, scale, draw(st.integers(0, 2**20))


@settings(max_examples=40)
@given(case=sdpa_cases())
def test_sdpa_matches_torch(case):
    lead, L, S, E, Ev, kind, scale, seed = case
    q, k, v = _randn(lead + (L, E), seed), _randn(lead + (S, E), seed + 1), _randn(lead + (S, Ev), seed + 2)
    kwargs: dict = {"scale": scale}
    if kind == "bool":          # True = may attend; some rows may be fully masked (-> zeros in both)
        kwargs["attn_mask"] = _bool(lead + (L, S), seed + 3, 0.7)
    elif kind == "bool_bcast":  # broadcasts over the leading axes
        kwargs["attn_mask"] = _bool((L, S), seed + 3, 0.7)
    elif kind == "float":
        kwargs["attn_mask"] = _randn((1,) * len(lead) + (L, S), seed + 3)
    elif kind == "causal":
        kwargs["is_causal"] = True
    ins = [t.clone().requires_grad_(True) for t in (q, k, v)]
    ref_ins = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out = AT.scaled_dot_product_attention(*ins, **kwargs)
    ref = F.scaled_dot_product_attention(*ref_ins, **kwargs)
    assert_close(out, ref)
    g = _randn(tuple(out.shape), seed + 4)
    assert_close(torch.autograd.grad(out, ins, g), torch.autograd.grad(ref, ref_ins, g))


@settings(max_examples=15)
@given(L=st.integers(1, 5), S=st.integers(1, 5), p=st.sampled_from([0.1, 0.5, 0.9]), seed=st.integers(0, 2**20))
def test_sdpa_dropout_drops_normalized_weights(L, S, p, seed):
    """With dropout the weights are normalized first, then dropped (the deferred-division path is not taken)."""
    q, k, v = _randn((2, L, 3), seed), _randn((2, S, 3), seed + 1), _randn((2, S, 4), seed + 2)
    out = AT.scaled_dot_product_attention(q, k, v, dropout_p=p, generator=torch.Generator().manual_seed(seed))
    w = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(3), dim=-1)
    keep = torch.empty_like(w).bernoulli_(1 - p, generator=torch.Generator().manual_seed(seed))
    assert_close(out, (w * keep / (1 - p)) @ v)


@settings(max_examples=15)
@given(L=st.integers(1, 6), S=st.integers(1, 6), seed=st.integers(0, 2**20))
def test_attention_weights_are_distributions_that_respect_the_mask(L, S, seed):
    mask = _bool((L, S), seed, 0.6)
    mask[:, 0] = True
    w = AT.attention_weights(_randn((2, L, 4), seed), _randn((2, S, 4), seed + 1), mask)
    assert_close(w.sum(-1), torch.ones(2, L, dtype=torch.float64))
    assert bool((w[:, ~mask] == 0).all())


def test_causal_mask_matches_torch_convention():
    assert_close(AT.causal_mask(5), ~nn.Transformer.generate_square_subsequent_mask(5).isinf())
    assert AT.causal_mask(2, 4).tolist() == [[True, False, False, False], [True, True, False, False]]


# --------------------------------------------------------------------------- multi-head attention
@st.composite
def mha_cases(draw):
    heads, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    N, L = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    S = L if draw(st.booleans()) else draw(st.integers(1, 5))  # self- or cross-attention lengths
    opts = dict(batch_first=draw(st.booleans()), bias=draw(st.booleans()),
                padding=draw(st.booleans()), mask=draw(st.sampled_from(["none", "causal_bool", "causal_float",
                                                                        "float3d"])),
                need_weights=draw(st.booleans()), average=draw(st.booleans()))
    if opts["mask"].startswith("causal"):
        S = L
    return heads, d, N, L, S, opts, draw(st.integers(0, 2**20))


def _mha_masks(opts: dict, N: int, H: int, L: int, S: int, seed: int) -> dict:
    kw: dict = {}
    if opts["padding"]:
        kpm = _bool((N, S), seed + 5, 0.4)
        kpm[:, 0] = False  # every query keeps at least one key (an all-masked row is NaN in torch's MHA)
        kw["key_padding_mask"] = kpm
    if opts["mask"] == "causal_bool":
        kw["attn_mask"] = nn.Transformer.generate_square_subsequent_mask(L).isinf()
    elif opts["mask"] == "causal_float":
        kw["attn_mask"] = nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    elif opts["mask"] == "float3d":
        kw["attn_mask"] = _randn((N * H, L, S), seed + 6)
    if "key_padding_mask" in kw and "attn_mask" in kw and kw["attn_mask"].dtype != torch.bool:
        kw["key_padding_mask"] = AT._additive(kw["key_padding_mask"], torch.float64)  # torch wants equal types
    return kw


@settings(max_examples=40)
@given(case=mha_cases())
def test_multihead_attention_matches_torch(case):
    heads, d, N, L, S, opts, seed = case
    E = heads * d
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(E, heads, bias=opts["bias"], batch_first=opts["batch_first"]).double()
    ours = AT.MultiheadAttention(E, heads, bias=opts["bias"], batch_first=opts["batch_first"]).double()
    if opts["bias"]:  # torch zero-initializes the biases: randomize so they are tested
        with torch.no_grad():
            theirs.in_proj_bias.copy_(_randn((3 * E,), seed + 9))
            theirs.out_proj.bias.copy_(_randn((E,), seed + 10))
    assert copy_weights(theirs, ours) == (4 if opts["bias"] else 2)
    shape = (lambda T: (N, T, E)) if opts["batch_first"] else (lambda T: (T, N, E))
    q, kv = _randn(shape(L), seed), _randn(shape(S), seed + 1)
    kw = _mha_masks(opts, N, heads, L, S, seed)
    kw.update(need_weights=opts["need_weights"], average_attn_weights=opts["average"])
    ins = [t.clone().requires_grad_(True) for t in (q, kv, kv)]
    ref_ins = [t.clone().requires_grad_(True) for t in (q, kv, kv)]
    out, w = ours(*ins, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, ref_w = theirs(*ref_ins, **kw)
    assert_close(out, ref)
    if opts["need_weights"]:
        assert_close(w, ref_w)
        loss, ref_loss = (out * _randn(tuple(out.shape), 3)).sum() + w.sum(), (ref * _randn(
            tuple(out.shape), 3)).sum() + ref_w.sum()
    else:
        assert w is None and ref_w is None
        loss, ref_loss = (out * _randn(tuple(out.shape), 3)).sum(), (ref * _randn(tuple(out.shape), 3)).sum()
    params, ref_params = list(ours.parameters()), list(theirs.parameters())
    assert_close(torch.autograd.grad(loss, ins + params), torch.autograd.grad(ref_loss, ref_ins + ref_params))


@settings(max_examples=10)
@given(heads=st.integers(1, 3), L=st.integers(1, 5), seed=st.integers(0, 2**20))
def test_multihead_attention_unbatched_matches_torch(heads, L, seed):
    E = 2 * heads
    theirs = nn.MultiheadAttention(E, heads).double()
    ours = AT.MultiheadAttention(E, heads).double()
    copy_weights(theirs, ours)
    x = _randn((L, E), seed)
    for a, b in zip(ours(x, x, x, average_attn_weights=False), theirs(x, x, x, average_attn_weights=False)):
        assert_close(a, b)


# --------------------------------------------------------------------------- Transformer encoder layer
@settings(max_examples=25)
@given(heads=st.integers(1, 3), d=st.integers(1, 3), ff=st.integers(1, 8), N=st.integers(1, 3),
       L=st.integers(1, 5), norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]),
       batch_first=st.booleans(), causal=st.booleans(), padding=st.booleans(), seed=st.integers(0, 2**20))
def test_transformer_encoder_layer_matches_torch(heads, d, ff, N, L, norm_first, activation, batch_first, causal,
                                                 padding, seed):
    E = heads * d
    torch.manual_seed(seed)
    theirs = nn.TransformerEncoderLayer(E, heads, ff, 0.0, activation, batch_first=batch_first,
                                        norm_first=norm_first).double()
    ours = AT.TransformerEncoderLayer(E, heads, ff, 0.0, activation, batch_first=batch_first,
                                      norm_first=norm_first).double()
    with torch.no_grad():  # randomize the zero-initialized biases and the LayerNorm affine parameters
        for name, p in theirs.named_parameters():
            if p.dim() == 1:
                p.copy_(_randn(tuple(p.shape), seed + len(name)) * 0.5 + name.endswith("weight"))
    copy_weights(theirs, ours)
    x = _randn((N, L, E) if batch_first else (L, N, E), seed)
    kw: dict = {}
    if causal:
        kw["src_mask"] = nn.Transformer.generate_square_subsequent_mask(L).isinf()
    if padding:
        kpm = _bool((N, L), seed + 2, 0.4)
        kpm[:, 0] = False
        kw["src_key_padding_mask"] = kpm
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, ref = ours(xa, **kw), theirs(xb, **kw)
    assert_close(out, ref)
    g = _randn(tuple(out.shape), seed + 3)
    assert_close(torch.autograd.grad(out, [xa, *ours.parameters()], g),
                 torch.autograd.grad(ref, [xb, *theirs.parameters()], g))


# --------------------------------------------------------------------------- positional encoding
@settings(max_examples=15)
@given(max_len=st.integers(1, 20), half=st.integers(1, 8))
def test_positional_encoding_matches_the_formula(max_len, half):
    d = 2 * half
    ref = np.zeros((max_len, d))
    for pos in range(max_len):  # the paper's definition, one entry at a time
        for i in range(half):
            ref[pos, 2 * i] = math.sin(pos / 10000 ** (2 * i / d))
            ref[pos, 2 * i + 1] = math.cos(pos / 10000 ** (2 * i / d))
    assert_close(AT.sinusoidal_positional_encoding(max_len, d, dtype=torch.float64), torch.from_numpy(ref))


@settings(max_examples=10)
@given(half=st.integers(1, 8), k=st.integers(0, 10))
def test_positional_encoding_dot_products_depend_only_on_offset(half, k):
    pe = AT.sinusoidal_positional_encoding(30, 2 * half, dtype=torch.float64)
    dots = (pe[k:] * pe[: 30 - k]).sum(-1)  # <PE[p + k], PE[p]> for every p
    assert_close(dots, dots[:1].expand_as(dots))


def test_positional_encoding_module_adds_pe():
    x = torch.zeros(2, 5, 6)
    assert_close(AT.PositionalEncoding(6, max_len=8)(x)[1], AT.sinusoidal_positional_encoding(5, 6))


# --------------------------------------------------------------------------- errors
def test_embed_dim_not_divisible_by_heads_raises():
    with pytest.raises(ValueError, match=r"embed_dim must be divisible by num_heads, got embed_dim=10 and "
                                         r"num_heads=3"):
        AT.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match=r"embed_dim must be divisible by num_heads, got embed_dim=6 and "
                                         r"num_heads=4"):
        AT.TransformerEncoderLayer(6, 4)


def test_mask_that_does_not_broadcast_names_both_shapes():
    q = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 3\) does not broadcast to the attention "
                                         r"logits of shape \(2, 3, 3\)"):
        AT.scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(4, 3, dtype=torch.bool))
    mha = AT.MultiheadAttention(4, 2, batch_first=True)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\) or \(4, 3, 3\) .* got \(2, 3\)"):
        mha(q, q, q, attn_mask=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 3\) .* got \(3, 2\)"):
        mha(q, q, q, key_padding_mask=torch.zeros(3, 2, dtype=torch.bool))


def test_wrong_rank_and_size_raise():
    mha = AT.MultiheadAttention(4, 2)
    with pytest.raises(ValueError, match=r"expected query to be 2-D or 3-D .* got 4-D with shape \(1, 2, 3, 4\)"):
        mha(torch.zeros(1, 2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected key with embedding size 4 .* got shape \(2, 3, 5\)"):
        mha(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"all be batched or all unbatched"):
        mha(torch.zeros(3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected query of at least 2-D .* got shape \(4,\)"):
        AT.scaled_dot_product_attention(torch.zeros(4), torch.zeros(3, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"same embedding size .* got \(3, 4\) and \(3, 5\)"):
        AT.scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(3, 5), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"same length .* got key \(3, 4\) and value \(2, 4\)"):
        AT.scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"either attn_mask or is_causal=True, not both"):
        AT.scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4),
                                        attn_mask=torch.ones(3, 3, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match=r"d_model must be even .* got 5"):
        AT.sinusoidal_positional_encoding(4, 5)
    with pytest.raises(ValueError, match=r"PositionalEncoding: expected input \[N, L <= 8, 6\], got shape"):
        AT.PositionalEncoding(6, max_len=8)(torch.zeros(1, 9, 6))
    with pytest.raises(ValueError, match=r"unknown activation 'tanh'"):
        AT.TransformerEncoderLayer(4, 2, activation="tanh")
