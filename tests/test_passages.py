"""The passage reranker (rag/training/passages.py): its groups, how its depth and weight are
judged, and how the retriever reorders the hybrid's best passages with it."""

import numpy as np
import pytest

from rag.api import Assistant, build_index
from rag.config import ChunkSettings, Config, passages_path
from rag.embedding import FakeEmbedder
from rag.reranking import reorder
from rag.retrieval import Retriever
from rag.training.passages import figures, groups_of
from rag.training.rerank import Group
from rag.types import Question

TURNS = [
    ("00:10", "Chris Benson", "Welcome to the show. What are you building at the company?"),
    ("00:20", "Anastasis Germanidis", "We build video generation models for artists and filmmakers."),
    ("05:00", "Chris Benson", "How did you raise money early on?"),
    ("05:10", "Anastasis Germanidis", "We raised a seed round from investors who believed in video tools."),
    ("10:00", "Chris Benson", "What was the first product like?"),
    ("10:10", "Anastasis Germanidis", "The first product was a drawing tool for street scenes."),
    ("15:00", "Chris Benson", "Tell me about the film festival."),
    ("15:10", "Anastasis Germanidis", "The film festival shows short films made with generative video."),
    ("20:00", "Chris Benson", "Where is video generation heading?"),
    ("20:10", "Anastasis Germanidis", "Video models will learn physics because they predict the next frame."),
]


def row(texts, first, held, answerable=True, needs_all=False, quotes=1):
    return {"question": "q", "answerable": answerable, "texts": texts, "first": first, "held": held,
            "needs_all": needs_all, "quotes": quotes}


def test_a_group_is_the_passages_that_hold_a_quote_against_the_others_best_ranked_first():
    r = row(["a", "b", "c", "d"], [0.9, 0.7, 0.5, 0.1], [[], [], [0], []])
    assert groups_of([r]) == [Group("q", ("c",), ("a", "b", "d"))]
    assert groups_of([row(["a"], [0.3], [[]])]) == []                        # nothing holds the quote
    assert groups_of([row(["a", "b"], [0.3, 0.2], [[0], []], answerable=False)]) == []


def test_the_reorder_is_judged_by_hit_at_5_and_mrr_over_the_answerable_questions():
    texts = list("abcdefg")
    rows = [row(texts, [7, 6, 5, 4, 3, 2, 1], [[], [], [], [], [], [0], []]),     # the answer 6th
            row(texts, [7, 6, 5, 4, 3, 2, 1], [[0], [], [], [], [], [], []]),     # the answer 1st
            row(texts[:2], [2, 1], [[0], [1]], needs_all=True, quotes=2),          # both, by the 2nd
            row(texts, [7, 6, 5, 4, 3, 2, 1], [[], [], [], [], [], [], []], answerable=False)]
    plain = figures(rows, None, 0, 0.0)
    assert plain["questions"] == 3
    assert plain["hit@5"] == pytest.approx(2 / 3) and plain["mrr"] == pytest.approx((1 / 6 + 1 + 1 / 2) / 3)
    # a cross-encoder sure of the 6th: within depth 8 it comes first; within depth 5 it is not read
    cross = [np.array([0, 0, 0, 0, 0, 9, 0.0]), np.zeros(7), np.zeros(2), np.zeros(7)]
    assert figures(rows, cross, 8, 4.0)["hit@5"] == pytest.approx(1.0)
    assert figures(rows, cross, 8, 4.0)["mrr"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    assert figures(rows, cross, 5, 4.0) == plain


def test_reorder_adds_the_two_scores_as_z_scores():
    first = np.array([3.0, 2.0, 1.0])
    assert reorder(first, np.array([0.0, 0.0, 0.0]), 1.0).tolist() == [0, 1, 2]    # no opinion: as was
    assert reorder(first, np.array([0.0, 0.0, 5.0]), 0.25).tolist() == [0, 1, 2]  # a light weight
    assert reorder(first, np.array([0.0, 0.0, 5.0]), 4.0).tolist() == [2, 0, 1]   # a heavy one


class Picky:
    """Scores the passages that say ``word`` high: a reranker with trained settings."""

    name = "picky"

    def __init__(self, word, depth, weight=100.0):
        self.word, self.settings, self.calls = word, {"depth": depth, "weight": weight}, []

    def score(self, question, candidates):
        self.calls.append(len(candidates))
        return np.array([10.0 if self.word in c else 0.0 for c in candidates], dtype=np.float32)

    def probability(self, best):
        return None


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("passages")
    src = tmp / "episode-1.md"
    src.write_text("\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TURNS) + "\n")
    config = Config(index_dir=tmp / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    build_index([src], name="ep", config=config, embedder=FakeEmbedder())
    return Assistant.load("ep", config=config, embedder=FakeEmbedder(), backend="extractive")


def test_the_retriever_reorders_only_the_best_depth_passages_and_keeps_scores_falling(assistant):
    base = assistant.retriever
    plain = base.search(Question("video generation models")).hits
    texts = [h.chunk.text for h in plain]
    word = next(w for w in ("festival", "physics", "seed", "drawing") if w in " ".join(texts[2:]))
    at = next(i for i, t in enumerate(texts) if word in t)
    assert at >= 1
    deep = Retriever(base.index, base.embedder, base.weights, reranker=Picky(word, depth=at + 1))
    hits = deep.search(Question("video generation models")).hits
    assert word in hits[0].chunk.text                                    # read and moved up
    assert sorted(h.chunk.id for h in hits) == sorted(h.chunk.id for h in plain)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert scores[0] == pytest.approx(plain[0].score)                    # the hybrid's scores, reordered
    # Reading only the hybrid's best two, it cannot lift a passage from below them.
    last = next(w for w in ("festival", "physics", "seed", "drawing", "welcome") if w in texts[-1])
    shallow = Picky(last, depth=2)
    assert last not in Retriever(base.index, base.embedder, base.weights,
                                 reranker=shallow).search(Question("video generation models")).hits[0].chunk.text
    assert shallow.calls == [2]
    none = Picky("nowhere", depth=10)                                    # no opinion: the hybrid's order
    assert [h.chunk.id for h in Retriever(base.index, base.embedder, base.weights, reranker=none)
            .search(Question("video generation models")).hits] == [h.chunk.id for h in plain]


def test_the_passage_reranker_is_read_from_beside_the_adapter_unless_rag_rerank_is_off(tmp_path):
    adapter = tmp_path / "adapter.safetensors"
    adapter.write_bytes(b"x")
    assert passages_path({}, adapter) is None                            # none trained
    (tmp_path / "passages.safetensors").write_bytes(b"x")
    assert passages_path({}, adapter) == tmp_path / "passages.safetensors"
    assert passages_path({"RAG_RERANK": "off"}, adapter) is None
    assert passages_path({}, None) is None                               # the plain model: no adapter
    assert Config.from_env({"RAG_MODEL_DIR": "off"}).passages is None
