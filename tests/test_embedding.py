"""Embedders: the NumPy and ONNX query encoders give sentence-transformers' vectors; the fake is
deterministic; the cache re-embeds only new content."""

import numpy as np
import pytest

from rag.embedding import CachedEmbedder, FakeEmbedder, SentenceTransformerEmbedder, make_embedder
from rag.minilm import NumpyMiniLM, supports
from rag.onnx_minilm import OnnxMiniLM

TEXTS = [
    "How did Runway get started?",
    "Anastasis Germanidis: Well, the first thing I would say is that I did not get here by planning "
    "for it. " * 12,  # long: exercises truncation at 256 word pieces
    "Gen-2",
]


@pytest.fixture(scope="module")
def real():
    return SentenceTransformerEmbedder()


def test_numpy_encoder_matches_sentence_transformers(real):
    assert supports(real.path)
    ours = NumpyMiniLM(real.path).encode(TEXTS)
    theirs = real.embed(TEXTS)  # the sentence-transformers (torch) path used for documents
    assert ours.shape == theirs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.allclose(real.embed_query(TEXTS[0]), theirs[0], atol=1e-4)


def test_onnx_encoder_matches_sentence_transformers(real, tmp_path):
    ours = OnnxMiniLM(real.path, cache_dir=tmp_path).encode(TEXTS)
    theirs = real.embed(TEXTS)
    assert ours.shape == theirs.shape == (3, 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() < 1e-4
    # The default embedder's queries take this path when onnxruntime is installed (it is a
    # dependency), through the coalescer.
    assert real.query_encoder == "onnx" and isinstance(real._fast, OnnxMiniLM)
    assert np.abs(real.embed_query(TEXTS[1]) - theirs[1]).max() < 1e-4


def test_token_count_uses_the_models_tokenizer(real):
    long = TEXTS[1]
    assert real.count_tokens(long) > real.max_tokens == 256  # counted without truncation
    assert real.count_tokens("Gen-2") == 5  # [CLS] gen - 2 [SEP]
    numpy = NumpyMiniLM(real.path)
    assert real.count_tokens(long) == numpy.count_tokens(long)
    assert len(real._fast.tokenizer.encode(long).ids) == 256  # queries are still truncated


def test_unknown_model_fails_fast_with_advice():
    from rag.errors import ModelError

    with pytest.raises(ModelError, match="never downloaded"):
        SentenceTransformerEmbedder("no-such-org/no-such-model")


def test_fake_embedder_is_deterministic_and_topical():
    a, b = FakeEmbedder(), FakeEmbedder()
    v = a.embed(["video generation models", "raising money from investors"])
    assert np.array_equal(v, b.embed(["video generation models", "raising money from investors"]))
    q = a.embed_query("generation of video")
    assert float(v[0] @ q) > float(v[1] @ q)
    assert make_embedder("fake-32").dim == 32


def test_cache_embeds_only_new_texts(tmp_path):
    inner = FakeEmbedder()
    cache = CachedEmbedder(inner, tmp_path / "cache.sqlite")
    first = cache.embed(["a b c", "d e f"])
    again = CachedEmbedder(inner, tmp_path / "cache.sqlite").embed(["d e f", "g h i", "a b c"])
    assert inner.calls == [["a b c", "d e f"], ["g h i"]]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])


def test_packed_batches_give_each_texts_own_vector(real):
    encoder = NumpyMiniLM(real.path)
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    # max_rows=20 forces the long text into a pass of its own and the short ones together.
    for packed in (encoder.encode(TEXTS), encoder.encode(TEXTS, max_rows=20), encoder.encode(TEXTS[::-1])[::-1]):
        assert np.abs(packed - alone).max() < 1e-5


def test_concurrent_queries_share_forward_passes(real):
    import threading

    questions = [f"What did he say about question number {i}?" for i in range(24)]
    expected = NumpyMiniLM(real.path).encode(questions)
    embedder = SentenceTransformerEmbedder()
    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(n, len(questions), 8):
            results[i] = embedder.embed_query(questions[i])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = np.vstack([results[i] for i in range(len(questions))])
    assert np.abs(got - expected).max() < 1e-5
    batcher = embedder._query_batches
    assert batcher.items == len(questions)
    assert batcher.batches < len(questions)  # some calls were served together
