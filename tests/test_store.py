"""The index on disk: round trip, manifest checks, corruption, atomic rebuilds, embedding cache."""

import json

import numpy as np
import pytest

from rag.api import Assistant, build_index
from rag.config import ChunkSettings, Config
from rag.embedding import FakeEmbedder
from rag.errors import IndexNotFound, StaleIndex
from rag.query import content_words
from rag.stores.files import embedding_text, load_index

MD = """**Chris Benson:** \\[00:10\\] Welcome to the show. What are you building at the company?

**Anastasis Germanidis:** We build video generation models for artists. They are very useful.

**Chris Benson:** \\[01:30\\] How did you raise money early on?

**Anastasis Germanidis:** We raised a seed round from investors who believed in creative tools.
"""


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "episode-1.md"
    path.write_text(MD)
    return path


def _build(source, index_dir, embedder=None, **kw):
    return build_index([source], name="ep", config=Config(index_dir=index_dir),
                       embedder=embedder or FakeEmbedder(), **kw)


def test_round_trip(tmp_path, source):
    path = _build(source, tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "rag-index/7" and manifest["model"] == "fake-64"
    assert manifest["dim"] == 64 and manifest["chunker"] == ChunkSettings().to_json()
    assert manifest["sources"][0]["sha256"] and manifest["episodes"] == ["episode-1"]
    loaded = load_index(tmp_path / "idx", "ep", model="fake-64")
    assert len(loaded.chunks) == manifest["chunks"] == len(loaded.chunk_vectors)
    assert isinstance(loaded.chunk_vectors, np.memmap) and isinstance(loaded.sentence_vectors, np.memmap)
    vec = loaded.chunk_vectors[0]
    assert np.allclose(vec, FakeEmbedder().embed([embedding_text(loaded.chunks[0])])[0])
    # passages are read on demand, each line by its offset, and equal what iterating reads
    assert list(loaded.chunks) == [loaded.chunks[i] for i in range(len(loaded.chunks))]
    assert loaded.chunks[-1] == list(loaded.chunks)[-1] and loaded.chunks[0:2] == list(loaded.chunks)[:2]
    with pytest.raises(IndexError):
        loaded.chunks[len(loaded.chunks)]
    # the columns say of every passage what the passages say
    cols = loaded.columns
    assert [cols.episodes[e] for e in cols.episode] == [c.episode for c in loaded.chunks]
    assert cols.start_s.tolist() == [c.start_s for c in loaded.chunks]
    assert [cols.speakers[k] for k in cols.sentence_speaker] == \
        [loaded.chunks[ci].sentences[si].speaker for ci, si in loaded.sentence_rows]
    # the vocabulary: every content word of the passages, with its vector
    assert len(loaded.vocabulary) == manifest["vocabulary"] > 0
    assert set(loaded.vocabulary) >= {w for c in loaded.chunks for w in content_words(c.text)}
    word = loaded.vocabulary[0]
    assert np.allclose(loaded.vocabulary_vectors[0], FakeEmbedder().embed([word])[0], atol=1e-3)  # float16


def test_passage_vectors_carry_the_chapter_title():
    from dataclasses import replace

    from rag.types import Chunk, Sentence

    s = Sentence(text="We had years to figure this out.", speaker="Guest", start_s=1.0, estimated=False)
    chunk = Chunk(id="c", episode="e", chapter=None, speakers=("Guest",), start_s=0.0, end_s=5.0,
                  sentences=(s,))
    assert embedding_text(chunk) == chunk.text
    titled = replace(chunk, chapter="Early adoption of gen AI")
    assert embedding_text(titled) == "Early adoption of gen AI. " + chunk.text


def test_an_unwritable_index_folder_is_one_clear_error_before_any_embedding(tmp_path, source):
    from rag.errors import IndexError_

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    embedder = FakeEmbedder()
    with pytest.raises(IndexError_, match="cannot write indexes under .*RAG_INDEX_DIR"):
        _build(source, blocker / "idx", embedder)
    assert embedder.calls == []  # failed before embedding anything


def test_missing_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexNotFound, match="rag index SOURCES... --name nope"):
        load_index(tmp_path, "nope", model="fake-64")


def test_stale_when_model_or_sources_change(tmp_path, source):
    _build(source, tmp_path / "idx")
    with pytest.raises(StaleIndex, match="built with model 'fake-64'.*rebuild it with"):
        load_index(tmp_path / "idx", "ep", model="all-MiniLM-L6-v2")
    with pytest.raises(StaleIndex, match="chunker settings"):
        load_index(tmp_path / "idx", "ep", model="fake-64", settings=ChunkSettings(max_tokens=99))
    source.write_text(MD + "\n**Chris Benson:** One more thing.\n")
    with pytest.raises(StaleIndex, match="has changed since it was built"):
        load_index(tmp_path / "idx", "ep", model="fake-64")


def test_corrupt_index_is_refused_with_a_rebuild_hint(tmp_path, source):
    path = _build(source, tmp_path / "idx")
    for name, junk in (("chunks.npy", b"not an array"), ("bm25/params.index.json", b"{")):
        good = (path / name).read_bytes()
        (path / name).write_bytes(junk)
        with pytest.raises(StaleIndex, match="corrupt.*rebuild it with"):
            load_index(tmp_path / "idx", "ep", model="fake-64")
        (path / name).write_bytes(good)
    load_index(tmp_path / "idx", "ep", model="fake-64")   # whole again
    (path / "manifest.json").write_text("{")
    with pytest.raises(StaleIndex, match="corrupt"):
        load_index(tmp_path / "idx", "ep", model="fake-64")


def test_a_vocabulary_that_disagrees_with_the_manifest_is_corrupt(tmp_path, source):
    path = _build(source, tmp_path / "idx")
    np.save(path / "vocabulary.npy", np.zeros((1, 64), np.float16))
    with pytest.raises(StaleIndex, match="corrupt.*disagree"):
        load_index(tmp_path / "idx", "ep", model="fake-64")


class Exploding(FakeEmbedder):
    def embed(self, texts, progress=None):
        raise RuntimeError("power cut")


def test_crash_mid_build_leaves_previous_index_intact(tmp_path, source):
    _build(source, tmp_path / "idx")
    before = load_index(tmp_path / "idx", "ep", model="fake-64")
    source.write_text(MD.replace("seed round", "large round"))
    with pytest.raises(RuntimeError, match="power cut"):
        _build(source, tmp_path / "idx", embedder=Exploding())
    # the old version is still the live one, byte for byte (its sources changed, so compare raw)
    from rag.stores.files import check_manifest  # noqa: F401 - documents where staleness is decided
    current = (tmp_path / "idx" / "ep" / "CURRENT").read_text()
    assert (tmp_path / "idx" / "ep" / current / "manifest.json").exists()
    assert current == before.path.name


def test_rebuild_embeds_only_what_changed(tmp_path, source):
    first = FakeEmbedder()
    _build(source, tmp_path / "idx", embedder=first)
    embedded_first = sum(len(c) for c in first.calls)
    source.write_text(MD + "\n**Chris Benson:** \\[02:00\\] Thanks for joining us today.\n")
    second = FakeEmbedder()
    path = _build(source, tmp_path / "idx", embedder=second)
    embedded_second = sum(len(c) for c in second.calls)
    assert 0 < embedded_second < embedded_first
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["embedding_cache"]["reused"] > 0
    # only one version folder is kept
    assert len([p for p in (tmp_path / "idx" / "ep").iterdir() if p.is_dir()]) == 1


def test_default_index_rebuilds_itself_when_stale(tmp_path):
    config = Config(index_dir=tmp_path)
    Assistant.load(config=config, embedder=FakeEmbedder())
    root = tmp_path / "practical-ai-260"
    version = (root / "CURRENT").read_text()
    manifest = json.loads((root / version / "manifest.json").read_text())
    manifest["format"] = "rag-index/0"
    (root / version / "manifest.json").write_text(json.dumps(manifest))
    assistant = Assistant.load(config=config, embedder=FakeEmbedder())
    assert (root / "CURRENT").read_text() != version
    assert assistant.search("video generation models")


def test_a_named_index_rebuilds_itself_when_only_the_model_changed(tmp_path, source):
    """A new adapter (or model) changes the model id: an index whose sources are unchanged is rebuilt
    from them on load; one whose sources changed still refuses with the command."""
    from rag.embedding import FakeEmbedder

    idx = tmp_path / "idx"
    _build(source, idx, embedder=FakeEmbedder(dim=64))
    config = Config(index_dir=idx)
    tuned = FakeEmbedder(dim=32)  # another model: "fake-32"
    assistant = Assistant.load("ep", config=config, embedder=tuned)
    assert assistant.index.model == "fake-32" and assistant.search("seed round")
    source.write_text(MD.replace("seed round", "large round"))
    with pytest.raises(StaleIndex, match="rebuild it with: rag index"):
        Assistant.load("ep", config=config, embedder=FakeEmbedder(dim=16))
