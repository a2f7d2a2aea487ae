"""Embedders: the NumPy and ONNX query encoders give sentence-transformers' vectors; the fake is
deterministic; the cache re-embeds only new content."""

import subprocess
import sys

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


@pytest.fixture(scope="module")
def torch_vectors():
    """The reference: sentence-transformers itself (torch), as every other model is embedded."""
    st = SentenceTransformerEmbedder(force_torch=True)
    assert st.passage_encoder == st.query_encoder == "torch"
    return st.embed(TEXTS)


def test_numpy_encoder_matches_sentence_transformers(real, torch_vectors):
    assert supports(real.path)
    ours = NumpyMiniLM(real.path).encode(TEXTS)
    theirs = torch_vectors
    assert ours.shape == theirs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.allclose(real.embed_query(TEXTS[0]), theirs[0], atol=1e-4)


def test_onnx_encoder_matches_sentence_transformers(real, tmp_path, torch_vectors):
    ours = OnnxMiniLM(real.path, cache_dir=tmp_path).encode(TEXTS)
    theirs = torch_vectors
    assert ours.shape == theirs.shape == (3, 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() < 1e-4
    # The default embedder's queries take this path when onnxruntime is installed (it is a
    # dependency), through the coalescer.
    assert real.query_encoder == "onnx" and isinstance(real._fast, OnnxMiniLM)
    assert np.abs(real.embed_query(TEXTS[1]) - theirs[1]).max() < 1e-4


def test_documents_take_the_int8_onnx_encoder_on_all_cores(real, torch_vectors):
    assert real.passage_encoder == "onnx" and real.name.endswith("@int8-passages")
    reports = []
    texts = TEXTS * 100  # 300 texts: more than one progress step
    got = real.embed(texts, progress=lambda done, total: reports.append((done, total)))
    assert got.shape == (300, 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * np.vstack([torch_vectors] * 100)).sum(axis=1)
    assert cosine.min() > 0.98  # int8 matrix products: close to the fp32 vectors, not equal
    assert reports == [(256, 300), (300, 300)]
    assert real._fast._bulk_session() is real._fast._bulk_session()  # built once
    # Queries keep fp32: exactly sentence-transformers' vectors.
    assert np.abs(real.embed_query(TEXTS[0]) - torch_vectors[0]).max() < 1e-4


def test_sentence_windows_are_pooled_from_the_passage_pass(real, torch_vectors):
    """A span's vector is the passage's word states over its characters: it means what that
    sentence says (closest to the sentence's own vector, not its neighbours'), and a span past
    the model's truncation is embedded on its own instead of being lost."""
    sentences = ["Runway started as a way to bring machine learning models to artists.",
                 "We raised our first round of funding in 2018.",
                 "The weather in New York was terrible that winter."]
    text = " ".join(sentences)
    starts = [text.index(s) for s in sentences]
    spans = [((a, a + len(s)),) for a, s in zip(starts, sentences)]
    long_text = TEXTS[1] + " The last sentence is about video generation."
    tail = long_text.index("The last sentence")
    vectors, pooled = real.embed_spans([text, long_text], [spans, (((tail, len(long_text)),),)])
    assert vectors.shape == (2, 384) and [p.shape for p in pooled] == [(3, 384), (1, 384)]
    own = real.embed(sentences)
    assert (np.argmax(pooled[0] @ own.T, axis=1) == [0, 1, 2]).all()
    alone = real.embed([long_text[tail:]])[0]
    assert not np.isnan(pooled[1]).any() and float(pooled[1][0] @ alone) > 0.999
    # Embedders without pooling (the fake) embed each span's text apart: same shapes, same flow.
    from rag.embedding import embed_spans

    fake = FakeEmbedder()
    v, p = embed_spans(fake, [text], [spans])
    assert np.allclose(p[0], fake.embed(sentences))


def test_building_an_index_imports_no_torch(tmp_path):
    code = ("import sys; from pathlib import Path; from rag.embedding import SentenceTransformerEmbedder; "
            "from rag.parsers import parse_file; from rag.stores.files import build_index; "
            "t = parse_file(sys.argv[1]); "
            "build_index([t], [sys.argv[1]], name='tiny', index_dir=Path(sys.argv[2]), "
            "embedder=SentenceTransformerEmbedder(cache_dir=Path(sys.argv[2]) / '.cache')); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers'}))")
    md = tmp_path / "tiny.md"
    md.write_text("**Chris Benson:** How did the company start?\n\n"
                  "**Anastasis Germanidis:** We started as a research project at NYU in 2018.\n")
    out = subprocess.run([sys.executable, "-c", code, str(md), str(tmp_path / "indexes")],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert list((tmp_path / "indexes" / "tiny").glob("v-*/chunks.faiss"))


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
