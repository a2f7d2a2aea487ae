"""A catalog-sized index searches its passages through an HNSW graph: the same answers as the
exact scan, with filters that still reach every passage they admit."""

import numpy as np
import pytest

from rag.stores import files as store
from rag.api import Assistant, build_index
from rag.config import ChunkSettings, Config
from rag.embedding import FakeEmbedder
from rag.retrieval import Retriever, Weights
from rag.types import Filters, Question

TOPICS = ["funding round investors", "video generation model", "research team hiring",
          "creative tools artists", "training data licensing", "latency of inference servers"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Twelve episodes, each a guest talking about two of the topics."""
    tmp = tmp_path_factory.mktemp("ann")
    sources = []
    for n in range(12):
        lines = []
        for t in range(24):
            topic = TOPICS[(n + t) % 2 * 3 + (n % 3)]
            who = "Host" if t % 2 == 0 else f"Guest {n}"
            lines.append(f"**{who}:** \\[{t // 2:02d}:{t % 2 * 30:02d}\\] In episode {n} we talked about "
                         f"{topic}, part {t}, with a story number {n * 100 + t}.")
        path = tmp / f"show-{n}.md"
        path.write_text("\n\n".join(lines) + "\n")
        sources.append(path)
    config = Config(index_dir=tmp / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    patch = pytest.MonkeyPatch()
    patch.setattr(store, "ANN_MIN", 1)  # every index is "large": the graph is built and read
    build_index(sources, name="cat", config=config, embedder=FakeEmbedder())
    patch.undo()
    return Assistant.load("cat", config=config, embedder=FakeEmbedder(), backend="extractive")


def test_the_graph_is_built_and_read(catalog):
    assert catalog.index.manifest["ann"]["kind"] == "HNSW,SQ8"
    assert catalog.index.ann is not None and catalog.index.ann.ntotal == len(catalog.index.chunks)


def test_graph_search_matches_the_exact_scan(catalog, monkeypatch):
    import rag.retrieval

    # The exact scan with the catalog's fusion (no sentence-window BM25 there: see Retriever._score).
    exact = Retriever(store.StoredIndex(**{**catalog.index.__dict__, "ann": None}), FakeEmbedder(),
                      Weights(sentence_bm25=0.0))
    questions = [f"what about {t} in episode {n}" for t in TOPICS for n in (1, 5, 9)]
    # Few graph neighbours, fewer than the passages: the rest are scored by the imputed floor.
    monkeypatch.setattr(rag.retrieval, "ANN_CANDIDATES", 12)
    monkeypatch.setattr(rag.retrieval, "SENTENCE_CANDIDATES", 12)
    assert len(catalog.index.chunks) > 4 * 12
    same = 0
    for q in questions:
        a = [h.chunk.id for h in catalog.search(q, k=5)]
        b = [h.chunk.id for h in exact.search(Question(q, k=5)).hits]
        assert a and b
        same += a == b
    assert same >= 0.9 * len(questions)
    # A filter narrower than the graph's reach scores every passage it admits, exactly.
    monkeypatch.setattr(rag.retrieval, "ANN_MIN", 10 ** 9)
    for q in questions[:6]:
        hits = catalog.search(q, k=3, episode="show-4")
        assert hits and all(h.chunk.episode == "show-4" for h in hits)
        assert [h.chunk.id for h in hits] == [h.chunk.id for h in exact.search(
            Question(q, k=3, filters=Filters(episode="show-4"))).hits]
