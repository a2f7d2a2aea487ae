"""The ONNX Runtime query encoder: batches give each text its own vector, the built graph is cached
and reused (without importing onnx), a damaged cache is rebuilt, and without onnxruntime the
embedder falls back to the NumPy encoder. Agreement with sentence-transformers is checked in
test_embedding.py."""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import SentenceTransformerEmbedder, resolve_model_path
from rag.errors import ModelError
from rag.minilm import NumpyMiniLM
from rag.onnx_minilm import OnnxMiniLM, build_model, cache_key, prune_cache

MODEL = resolve_model_path("all-MiniLM-L6-v2")
TEXTS = [
    "How did Runway get started?",
    "Anastasis Germanidis: Well, the first thing I would say is that I did not get here by planning "
    "for it. " * 12,  # longer than 256 word pieces: truncated
    "Gen-2",
    "What book do they give every employee?",
    "",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder holding a freshly built model."""
    d = tmp_path_factory.mktemp("onnx-cache")
    assert OnnxMiniLM(MODEL, cache_dir=d).built
    return d


@pytest.fixture(scope="module")
def encoder(cache):
    return OnnxMiniLM(MODEL, cache_dir=cache)


@pytest.fixture(scope="module")
def reference():
    return NumpyMiniLM(MODEL).encode(TEXTS)


def cached_files(d):
    """The graph, its weights and the record that vouches for both."""
    model = d / f"minilm-onnx-{cache_key(MODEL)}.onnx"
    return model, model.with_name(model.name + ".data"), model.with_name(model.name + ".json")


def test_matches_the_numpy_encoder_and_is_unit_length(encoder, reference):
    got = encoder.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.abs(got - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_padded_batches_give_each_texts_own_vector(encoder):
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    # max_rows=20 puts the long text in a run of its own and pads the short ones together;
    # the default packs everything into one padded run.
    for packed in (encoder.encode(TEXTS), encoder.encode(TEXTS, max_rows=20),
                   encoder.encode(TEXTS[::-1])[::-1], encoder.encode(TEXTS * 3)[: len(TEXTS)]):
        assert np.abs(packed - alone).max() < 1e-5


def test_concurrent_runs_on_one_session(encoder, reference):
    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        barrier.wait()
        for _ in range(5):
            results[n] = encoder.encode(TEXTS[n % 2::2])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, got in results.items():
        assert np.abs(got - reference[n % 2::2]).max() < 1e-5
    assert len(results) == 4


def test_token_count_is_not_truncated(encoder):
    assert encoder.count_tokens(TEXTS[1]) > 256 == encoder.max_seq_length
    assert encoder.count_tokens("Gen-2") == 5


def test_cache_is_reused_without_importing_onnx(cache, reference, monkeypatch):
    files = cached_files(cache)
    stamps = [p.stat().st_mtime_ns for p in files]
    monkeypatch.setitem(sys.modules, "onnx", None)  # "import onnx" now fails: building would too
    again = OnnxMiniLM(MODEL, cache_dir=cache)
    assert not again.built
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert np.abs(again.encode(TEXTS) - reference).max() < 1e-5
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in files)  # no tmp files
    assert files[1].stat().st_size > 80e6 > 1e5 > files[0].stat().st_size  # weights kept apart


DAMAGE = ["truncated weights", "garbage graph", "garbage weights", "overwritten layer weights",
          "bad record", "no record", "no weights", "foreign record"]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_cache_is_rebuilt(cache, reference, tmp_path, damage):
    for p in cached_files(cache):
        shutil.copy(p, tmp_path / p.name)
    model, weights, record = cached_files(tmp_path)
    data = bytearray(weights.read_bytes())
    if damage == "truncated weights":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "garbage graph":  # same size, so only loading it catches it
        model.write_bytes(b"\x07" * model.stat().st_size)
    elif damage == "garbage weights":
        weights.write_bytes(b"\x07" * len(data))
    elif damage == "overwritten layer weights":  # same size, loads: only the probe catches it
        at = int(len(data) * 0.8)  # past the word embeddings, in the encoder layers
        data[at:at + 4096] = b"\x7f" * 4096
        weights.write_bytes(bytes(data))
    elif damage == "bad record":
        record.write_text("{not json")
    elif damage == "no record":
        record.unlink()
    elif damage == "no weights":
        weights.unlink()
    else:  # a record for another key
        rec = json.loads(record.read_text())
        record.write_text(json.dumps({**rec, "key": "0" * 32}))
    rebuilt = OnnxMiniLM(MODEL, cache_dir=tmp_path)
    assert rebuilt.built
    assert np.abs(rebuilt.encode(TEXTS) - reference).max() < 1e-5
    for fixed, good in zip(cached_files(tmp_path), cached_files(cache)):  # the cache is whole again
        assert fixed.read_bytes() == good.read_bytes()
    assert not OnnxMiniLM(MODEL, cache_dir=tmp_path).built


def test_unwritable_cache_still_gives_an_encoder(tmp_path, reference):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the cache folder would be: every write fails
    encoder = OnnxMiniLM(MODEL, cache_dir=blocker / "onnx")
    assert encoder.built and np.abs(encoder.encode(TEXTS[:1]) - reference[:1]).max() < 1e-5


def test_in_memory_build_and_key_metadata(reference):
    import onnx

    key = cache_key(MODEL)
    graph, weights = build_model(MODEL, key)
    assert weights == b"" and len(graph) > 80e6  # in memory: the weights inside the graph
    proto = onnx.load_from_string(graph)
    assert {p.key: p.value for p in proto.metadata_props} == {"rag_cache_key": key}
    assert [i.name for i in proto.graph.input] == ["input_ids", "attention_mask"]
    ops = {n.op_type for n in proto.graph.node}
    assert {"Softmax", "Erf", "LayerNormalization", "Gemm"} <= ops and not any(
        n.domain for n in proto.graph.node)  # standard operators only
    encoder = OnnxMiniLM(MODEL, cache_dir=None)
    assert encoder.built and encoder.cache_path is None
    assert np.abs(encoder.encode(TEXTS[:2]) - reference[:2]).max() < 1e-5


def test_cache_key_follows_the_weights_file(tmp_path):
    local = tmp_path / "model"
    shutil.copytree(MODEL, local)
    before = cache_key(local)
    assert before == cache_key(local)
    st = (local / "model.safetensors").stat()
    os.utime(local / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache_key(local) != before


def test_embedder_uses_onnx_with_cache_beside_embeddings(tmp_path):
    embedder = SentenceTransformerEmbedder(cache_dir=tmp_path / ".cache")
    assert embedder.query_encoder == "onnx" and embedder.query_encoder_error is None
    assert list((tmp_path / ".cache" / "onnx").glob("minilm-onnx-*.onnx"))
    assert embedder.embed_query("Gen-2").shape == (384,)


def test_falls_back_to_numpy_without_onnxruntime(tmp_path, reference, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # "import onnxruntime" raises ImportError
    embedder = SentenceTransformerEmbedder(cache_dir=tmp_path)
    assert embedder.query_encoder == "numpy" and isinstance(embedder._fast, NumpyMiniLM)
    assert not (tmp_path / "onnx").exists()
    assert np.abs(embedder.embed_query(TEXTS[0]) - reference[0]).max() < 1e-5
    with pytest.raises(ModelError, match="ONNX"):
        SentenceTransformerEmbedder(cache_dir=tmp_path, query_encoder="onnx")


def test_falls_back_to_numpy_when_the_graph_cannot_be_built(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # no cache and no onnx to build one
    embedder = SentenceTransformerEmbedder(cache_dir=tmp_path)
    assert embedder.query_encoder == "numpy" and isinstance(embedder.query_encoder_error, ImportError)
    assert SentenceTransformerEmbedder(cache_dir=tmp_path, query_encoder="numpy").query_encoder == "numpy"


def test_query_path_imports_neither_torch_nor_onnx(cache):
    code = ("import sys; from rag.embedding import SentenceTransformerEmbedder; "
            "e = SentenceTransformerEmbedder(cache_dir=sys.argv[1]); v = e.embed_query('How did Runway start?'); "
            "assert e.query_encoder == 'onnx' and v.shape == (384,); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'onnx'}))")
    # The embedder's cache_dir is the folder that holds onnx/: link the module's built cache there.
    parent = cache.parent / "embedder-cache"
    parent.mkdir(exist_ok=True)
    if not (parent / "onnx").exists():
        (parent / "onnx").symlink_to(cache, target_is_directory=True)
    out = subprocess.run([sys.executable, "-c", code, str(parent)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_prune_cache_drops_graphs_no_start_will_read(tmp_path, cache):
    assert json.loads(cached_files(cache)[2].read_text())["model_dir"] == str(Path(MODEL).resolve())

    def fake(key, record):
        for suffix in (".onnx", ".onnx.data"):
            (tmp_path / f"minilm-onnx-{key}{suffix}").write_bytes(b"x")
        (tmp_path / f"minilm-onnx-{key}.onnx.json").write_text(json.dumps(record))

    other_model = tmp_path / "another-model"
    other_model.mkdir()
    fake("current", {"model_dir": str(Path(MODEL).resolve())})
    fake("older", {"model_dir": str(Path(MODEL).resolve())})        # this model, built before
    fake("venv", {"model_dir": str(tmp_path / "deleted-venv")})     # a model folder that is gone
    fake("legacy", {"key": "legacy"})                                # no folder recorded
    fake("other", {"model_dir": str(other_model)})                   # another model still in use
    gone = prune_cache(tmp_path, keep="current", model_dir=Path(MODEL))
    left = sorted(p.name for p in tmp_path.glob("minilm-onnx-*"))
    assert len(gone) == 9
    assert left == sorted(f"minilm-onnx-{k}{s}" for k in ("current", "other")
                          for s in (".onnx", ".onnx.data", ".onnx.json"))


def test_quantizing_writes_no_scratch_file_into_the_shared_cache(tmp_path, monkeypatch):
    """Two processes building the int8 graph at once crashed (FileNotFoundError from unlink): ONNX
    Runtime's quantizer writes "<source>-inferred.onnx" beside its source and deletes it, and the
    source was the shared cached graph. Every scratch file must now land in a private folder."""
    import onnx.shape_inference

    d = tmp_path / "cache"
    OnnxMiniLM(MODEL, cache_dir=d)
    written = []
    real = onnx.shape_inference.infer_shapes_path

    def spy(source, target, *a, **k):
        written.append(Path(target))
        return real(source, target, *a, **k)

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes_path", spy)
    before = set(d.iterdir())
    enc = OnnxMiniLM(MODEL, cache_dir=d)
    vectors = enc.encode_bulk(["a passage about compilers", "another about tea"])
    assert written and all(d not in p.parents for p in written)
    assert vectors.shape == (2, 384)
    assert {p.name for p in set(d.iterdir()) - before} == {f"minilm-onnx-{cache_key(MODEL)}.int8.onnx"}
    assert enc._int8_path().stat().st_size > 1e6
