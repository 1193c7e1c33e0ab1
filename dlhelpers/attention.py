"""Attention from scratch: scaled dot-product attention, multi-head attention, the Transformer encoder block.

Scaled dot-product attention (Vaswani et al., 2017), for queries ``Q [.., L, E]``, keys ``K [.., S, E]`` and
values ``V [.., S, Ev]``::

    A = softmax(Q K^T * scale + M)      scale = 1 / sqrt(E) by default,  M = 0 / -inf (or any float) mask
    out = A V                            [.., L, Ev]

Without the ``1/sqrt(E)`` the logits of random unit-variance vectors have variance ``E``: the softmax
saturates (one weight near 1, the rest near 0) and its gradient vanishes.

Two mask conventions, both PyTorch's (and easy to mix up):

* :func:`scaled_dot_product_attention` (like ``F.scaled_dot_product_attention``): a **bool** ``attn_mask`` is
  True where a query **may** attend; a float mask is added to the logits. A query row with no allowed key
  gives zeros (PyTorch's "safe softmax"), not NaN.
* :class:`MultiheadAttention` / :class:`TransformerEncoderLayer` (like ``nn.MultiheadAttention``): a bool
  ``attn_mask`` or ``key_padding_mask`` is True where attention is **forbidden** (a padded key).

=============================  ===============================================================
ours                           PyTorch counterpart
=============================  ===============================================================
``scaled_dot_product_attention``   ``F.scaled_dot_product_attention`` (``attn_mask``, ``is_causal``, ``scale``)
``attention_weights``              the ``A`` above (PyTorch has no public function for it)
``causal_mask``                    ``~nn.Transformer.generate_square_subsequent_mask(L).isinf()``
``MultiheadAttention``             ``nn.MultiheadAttention`` (packed ``in_proj_weight``, same state_dict)
``TransformerEncoderLayer``        ``nn.TransformerEncoderLayer`` (post-norm or ``norm_first``; same state_dict)
``sinusoidal_positional_encoding``  the paper's PE (PyTorch has none): PE[p, 2i] = sin(p / 10000^(2i/d)),
                                   PE[p, 2i+1] = cos(p / 10000^(2i/d))
=============================  ===============================================================
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlhelpers import init as I
from dlhelpers._checks import check_choice, check_rank, check_tensor
from dlhelpers.activations import gelu, relu, softmax
from dlhelpers.blocks import LayerNorm, Linear
from dlhelpers.regularization import Dropout, dropout

__all__ = [
    "causal_mask", "attention_weights", "scaled_dot_product_attention", "MultiheadAttention",
    "TransformerEncoderLayer", "sinusoidal_positional_encoding", "PositionalEncoding",
]


def causal_mask(L: int, S: int | None = None, device: torch.device | None = None) -> Tensor:
    """Bool ``[L, S]`` mask, True where query ``i`` may see key ``j`` (``j <= i``): ``torch.ones(L, S).tril()``.

    This is the mask ``F.scaled_dot_product_attention(..., is_causal=True)`` applies (top-left aligned).
    """
    S = L if S is None else S
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def _broadcast_mask(mask: Tensor, target: tuple[int, ...], fn: str) -> None:
    try:
        shape = torch.broadcast_shapes(tuple(mask.shape), target)
    except RuntimeError:
        shape = None
    if shape != target:
        raise ValueError(f"{fn}: attn_mask of shape {tuple(mask.shape)} does not broadcast to the attention "
                         f"logits of shape {target} ([..., L, S])")


def _scores(query: Tensor, key: Tensor, attn_mask: Tensor | None, is_causal: bool, scale: float | None,
            fn: str = "scaled_dot_product_attention") -> tuple[Tensor, Tensor | None]:
    """The masked logits ``Q K^T * scale + M`` ``[.., L, S]`` and the ``[.., L, 1]`` rows with no allowed key
    (None when there are none). No mask is materialized when none is given."""
    for name, t in (("query", query), ("key", key)):
        check_tensor(t, name, fn)
        if t.dim() < 2:
            raise ValueError(f"{fn}: expected {name} of at least 2-D [..., length, embed], got shape "
                             f"{tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{fn}: query and key must have the same embedding size (last axis), got "
                         f"{tuple(query.shape)} and {tuple(key.shape)}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = (query * scale) @ key.transpose(-2, -1)  # scale the [L, E] queries, not the larger [L, S] logits
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{fn}: give either attn_mask or is_causal=True, not both")
        attn_mask = causal_mask(query.shape[-2], key.shape[-2], query.device)
    if attn_mask is None:
        return logits, None
    check_tensor(attn_mask, "attn_mask", fn)
    _broadcast_mask(attn_mask, tuple(logits.shape), fn)
    # in place: the matmul does not save its output for backward, so autograd allows it (and it is faster)
    if attn_mask.dtype == torch.bool:
        logits = logits.masked_fill_(~attn_mask, float("-inf"))
        dead = ~attn_mask.any(dim=-1, keepdim=True)  # a query with no allowed key: zeros, not NaN
    else:
        logits = logits.add_(attn_mask)
        dead = torch.isneginf(attn_mask).all(dim=-1, keepdim=True)
    if not bool(dead.any()):
        return logits, None
    return logits.masked_fill(dead, 0.0), dead  # a finite row, so exp(x - max) has no -inf - (-inf) = NaN


def attention_weights(query: Tensor, key: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False,
                      scale: float | None = None) -> Tensor:
    """``A = softmax(Q K^T * scale + M)`` over the keys, ``[.., L, S]``; rows with no allowed key are 0.

    ``attn_mask`` follows ``F.scaled_dot_product_attention``: bool True = may attend, float = added.
    """
    logits, dead = _scores(query, key, attn_mask, is_causal, scale)
    weights = softmax(logits, dim=-1)
    return weights if dead is None else weights.masked_fill(dead, 0.0)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 generator: torch.Generator | None = None) -> Tensor:
    """``softmax(Q K^T * scale + M) V`` with dropout ``dropout_p`` on the weights (always applied, as in PyTorch).

    query ``[.., L, E]``, key ``[.., S, E]``, value ``[.., S, Ev]`` -> ``[.., L, Ev]``; leading axes broadcast.
    Without dropout the softmax division is deferred, as FlashAttention does:
    ``softmax(X) V = (exp(X - m) V) / rowsum(exp(X - m))`` divides the ``[L, Ev]`` output instead of the
    ``[L, S]`` weights, and the exponentials overwrite the fresh logits buffer (no extra ``[L, S]`` tensors).
    PyTorch: ``F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)``.
    """
    check_tensor(value, "value", "scaled_dot_product_attention")
    if value.dim() < 2 or value.shape[-2] != key.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value must have the same length (axis -2), "
                         f"got key {tuple(key.shape)} and value {tuple(value.shape)}")
    if dropout_p > 0.0:
        weights = attention_weights(query, key, attn_mask, is_causal, scale)
        return dropout(weights, dropout_p, generator=generator) @ value
    logits, dead = _scores(query, key, attn_mask, is_causal, scale)
    # exp(X - max) in place: the max is a constant shift (softmax is shift-invariant), so it is detached
    e = logits.sub_(logits.detach().amax(dim=-1, keepdim=True)).exp_()
    out = (e @ value) / e.sum(dim=-1, keepdim=True)
    return out if dead is None else out.masked_fill(dead, 0.0)


# --------------------------------------------------------------------------- multi-head attention
def _mha_mask(attn_mask: Tensor | None, key_padding_mask: Tensor | None, N: int, H: int, L: int, S: int,
              dtype: torch.dtype, fn: str) -> Tensor | None:
    """Merge ``attn_mask`` ([L, S] or [N*H, L, S]) and ``key_padding_mask`` ([N, S]) into one additive
    float mask ``[N, H, L, S]`` (bool True = forbidden -> -inf), or None."""
    merged = None
    if attn_mask is not None:
        check_tensor(attn_mask, "attn_mask", fn)
        if tuple(attn_mask.shape) not in ((L, S), (N * H, L, S)):
            raise ValueError(f"{fn}: attn_mask must have shape {(L, S)} or {(N * H, L, S)} (batch * num_heads, "
                             f"L, S), got {tuple(attn_mask.shape)}")
        m = attn_mask.reshape(-1, H, L, S) if attn_mask.dim() == 3 else attn_mask
        merged = _additive(m, dtype)
    if key_padding_mask is not None:
        check_tensor(key_padding_mask, "key_padding_mask", fn)
        if tuple(key_padding_mask.shape) != (N, S):
            raise ValueError(f"{fn}: key_padding_mask must have shape {(N, S)} (batch, key length), got "
                             f"{tuple(key_padding_mask.shape)}")
        kp = _additive(key_padding_mask, dtype).view(N, 1, 1, S)
        merged = kp if merged is None else merged + kp
    return merged


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)


class MultiheadAttention(nn.Module):
    """Multi-head attention: ``MHA(Q, K, V) = concat(head_1..head_h) W_O^T + b_O``,
    ``head_i = softmax((Q W_Qi^T)(K W_Ki^T)^T / sqrt(d)) (V W_Vi^T)``, ``d = embed_dim / num_heads``.

    The three input projections are packed in one ``in_proj_weight [3E, E]`` (rows: W_Q, W_K, W_V) and
    ``in_proj_bias [3E]``, as PyTorch stores them; head ``i`` uses rows ``i*d:(i+1)*d`` of each. Masks follow
    ``nn.MultiheadAttention`` (bool True = forbidden). Returns ``(output, weights)``; ``weights`` is
    ``[N, L, S]`` averaged over heads (``average_attn_weights=True``), ``[N, H, L, S]`` otherwise, or None
    when ``need_weights=False``. PyTorch: ``nn.MultiheadAttention(embed_dim, num_heads, dropout, bias,
    batch_first=...)`` -- same parameter names, so ``copy_weights`` works.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False) -> None:
        super().__init__()
        fn = "MultiheadAttention"
        for name, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
        if embed_dim % num_heads:
            raise ValueError(f"{fn}: embed_dim must be divisible by num_heads, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} (embed_dim % num_heads = {embed_dim % num_heads})")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        I.xavier_uniform_(self.in_proj_weight)
        if bias:
            I.zeros_(self.out_proj.bias)
        self.attn_drop = Dropout(dropout)

    def _project(self, x: Tensor, i: int) -> Tensor:
        """``x W_i^T + b_i`` for i = 0 (query), 1 (key), 2 (value), split into heads ``[N, H, len, d]``."""
        E = self.embed_dim
        w = self.in_proj_weight[i * E:(i + 1) * E]
        out = x @ w.T
        if self.in_proj_bias is not None:
            out = out + self.in_proj_bias[i * E:(i + 1) * E]
        N, T, _ = out.shape
        return out.view(N, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        fn = "MultiheadAttention"
        layout = "[N, L, E] (batch_first) or [L, N, E], or unbatched [L, E]"
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_rank(t, (2, 3), name, fn, layout)
            if t.shape[-1] != self.embed_dim:
                raise ValueError(f"{fn}: expected {name} with embedding size {self.embed_dim} (last axis), "
                                 f"got shape {tuple(t.shape)}")
        if not query.dim() == key.dim() == value.dim():
            raise ValueError(f"{fn}: query, key and value must all be batched or all unbatched, got shapes "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        N, L, _ = query.shape
        S = key.shape[1]
        if is_causal and attn_mask is None:
            attn_mask = ~causal_mask(L, S, query.device)  # MHA convention: True = forbidden
        mask = _mha_mask(attn_mask, key_padding_mask, N, self.num_heads, L, S, query.dtype, fn)
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        if need_weights:
            weights = attention_weights(q, k, mask)
            out = self.attn_drop(weights) @ v                                # [N, H, L, d]
        else:  # the weights are not returned, so the faster deferred-normalization path is allowed
            out = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        out = self.out_proj(out.transpose(1, 2).reshape(N, L, self.embed_dim))
        if unbatched:
            out = out[0]
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = weights.mean(dim=1) if average_attn_weights else weights
        return out, (weights[0] if unbatched else weights)


class TransformerEncoderLayer(nn.Module):
    """One Transformer encoder block: self-attention and a feed-forward net, each with residual + LayerNorm.

    post-norm (``norm_first=False``, the 2017 paper):  x = LN1(x + SA(x));      x = LN2(x + FF(x))
    pre-norm  (``norm_first=True``):                    x = x + SA(LN1(x));     x = x + FF(LN2(x))
    ``SA(x) = dropout1(MHA(x, x, x))``, ``FF(x) = dropout2(linear2(dropout(act(linear1(x)))))``.
    PyTorch: ``nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
    batch_first, norm_first, bias)`` -- same submodule names, so ``copy_weights`` works.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        super().__init__()
        check_choice(activation, ("relu", "gelu"), "activation", "TransformerEncoderLayer")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias, batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        self.activation = activation

    def _sa(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, key_padding_mask, False, attn_mask, is_causal=is_causal)
        return self.dropout1(out)

    def _ff(self, x: Tensor) -> Tensor:
        act = relu if self.activation == "relu" else gelu
        return self.dropout2(self.linear2(self.dropout(act(self.linear1(x)))))

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff(x))


# --------------------------------------------------------------------------- positional encoding
def sinusoidal_positional_encoding(max_len: int, d_model: int, base: float = 10000.0,
                                   dtype: torch.dtype = torch.float32) -> Tensor:
    """``PE [max_len, d_model]``: ``PE[p, 2i] = sin(p w_i)``, ``PE[p, 2i+1] = cos(p w_i)``, ``w_i = base^(-2i/d)``.

    Each pair (sin, cos) rotates with the position at its own frequency, so ``PE[p + k]`` is a fixed rotation
    of ``PE[p]`` and ``<PE[p], PE[q]>`` depends only on ``p - q``. No PyTorch counterpart (Vaswani et al. 2017).
    """
    fn = "sinusoidal_positional_encoding"
    for name, v in (("max_len", max_len), ("d_model", d_model)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    if d_model % 2:
        raise ValueError(f"{fn}: d_model must be even (sin/cos pairs), got {d_model}")
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe.to(dtype)


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to a ``[N, L, d_model]`` (batch_first) input: ``x + PE[:L]``."""

    def __init__(self, d_model: int, max_len: int = 512) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        check_rank(x, (3,), "input", "PositionalEncoding", "[N, L, d_model]")
        if x.shape[1] > self.pe.shape[0] or x.shape[2] != self.pe.shape[1]:
            raise ValueError(f"PositionalEncoding: expected input [N, L <= {self.pe.shape[0]}, "
                             f"{self.pe.shape[1]}], got shape {tuple(x.shape)}")
        return x + self.pe[: x.shape[1]].to(x.dtype)
