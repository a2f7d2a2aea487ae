"""The sentence head: its map, its file, its fit, and the retriever scoring an answer's sentences
through it (rag/adapters.py SentenceHead, rag/training/sentences.py)."""

import numpy as np
import pytest

from rag.adapters import SENTENCE_HEAD_FILE, SentenceHead, load_adapter, load_sentence_head, sentence_head_for
from rag.api import Assistant, build_index
from rag.config import SHIPPED_ADAPTER, ChunkSettings, Config
from rag.embedding import FakeEmbedder
from rag.errors import ModelError

TURNS = [
    ("00:10", "Chris Benson", "Welcome to the show. What are you building at the company?"),
    ("00:20", "Anastasis Germanidis", "We build video generation models for artists and filmmakers."),
    ("15:00", "Chris Benson", "Tell me about the film festival."),
    ("15:10", "Anastasis Germanidis", "The film festival shows short films made with generative video. "
                                      "Hundreds of artists sent entries this year."),
]


def test_the_head_maps_a_question_by_identity_plus_its_low_rank_part_and_normalises():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)
    q = rng.normal(size=6).astype(np.float32)
    mapped = SentenceHead(u=u, v=v, meta={})(q)
    want = (np.eye(6) + u @ v.T) @ q
    assert np.allclose(mapped, want / np.linalg.norm(want), atol=1e-6)
    still = SentenceHead(u=np.zeros_like(u), v=v, meta={})(q)
    assert np.allclose(still, q / np.linalg.norm(q), atol=1e-6)


def test_a_head_file_round_trips_and_a_damaged_one_says_how_to_rebuild_it(tmp_path):
    from rag.training.sentences import write

    u = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    write(SentenceHead(u=u, v=-u, meta={"recipe": {"rank": 2}}), tmp_path / SENTENCE_HEAD_FILE)
    head = load_sentence_head(tmp_path / SENTENCE_HEAD_FILE)
    assert np.array_equal(head.u, u) and np.array_equal(head.v, -u) and head.meta["recipe"] == {"rank": 2}
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ModelError, match="rag.training.sentences"):
        load_sentence_head(tmp_path / "bad.safetensors")


def test_the_shipped_adapter_carries_a_small_head_with_its_recipe_and_figures():
    head = sentence_head_for(load_adapter(SHIPPED_ADAPTER))
    assert head is not None, f"{SHIPPED_ADAPTER.parent / SENTENCE_HEAD_FILE} is missing"
    assert head.u.shape == head.v.shape == (384, head.meta["recipe"]["rank"])
    assert (SHIPPED_ADAPTER.parent / SENTENCE_HEAD_FILE).stat().st_size < 100_000
    validation = head.meta["figures"]["validation"]
    assert validation["with"]["mrr"] > validation["without"]["mrr"]
    assert "CC BY-SA 4.0" in head.meta["licence"]


def test_fitting_learns_which_windows_answer_where_plain_similarity_does_not():
    """Synthetic questions whose gold window lies along a fixed map of the question, not along the
    question itself: the plain similarity picks a distractor, the fitted head the gold window."""
    pytest.importorskip("torch")
    from rag.training.sentences import figures, fit

    rng = np.random.default_rng(0)
    dim = 16
    turn = np.linalg.qr(rng.normal(size=(dim, dim)))[0]   # where the answer lies, seen from the question
    rows = []
    for _ in range(300):
        q = rng.normal(size=dim)
        q /= np.linalg.norm(q)
        gold = turn @ q
        decoy = q + 0.3 * rng.normal(size=dim)             # shares the question's topic
        others = rng.normal(size=(6, dim))
        windows = np.vstack([gold, decoy, others])
        windows /= np.linalg.norm(windows, axis=1, keepdims=True)
        rows.append({"queries": q[None].astype(np.float32), "windows": windows.astype(np.float16),
                     "bonus": np.zeros(len(windows), np.float32), "label": np.arange(len(windows)) == 0})
    train, held = rows[:200], rows[200:]
    head = fit(train, rank=dim, l2=1e-4, steps=300, batch=64, lr=0.05)
    before, after = figures(held, None), figures(held, head)
    assert before["top1"] < 0.2 and after["top1"] > 0.8, (before, after)
    assert after["mrr"] > before["mrr"]


@pytest.fixture
def assistant(tmp_path):
    src = tmp_path / "episode-1.md"
    src.write_text("\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TURNS) + "\n")
    config = Config(index_dir=tmp_path / "idx", chunking=ChunkSettings(max_tokens=60, question_context_tokens=0))
    build_index([src], name="ep", config=config, embedder=FakeEmbedder())
    return Assistant.load("ep", config=config, embedder=FakeEmbedder(), backend="extractive")


def test_the_retriever_scores_the_answers_sentences_through_the_head(assistant):
    """A head that maps every question onto one sentence's window makes that sentence the best
    match in its passage, and the passage's sentence signal in the ranking its score; without a head
    the question's own vector decides."""
    retriever = assistant.retriever
    assert retriever.sentence_head is None              # the fake embedder has no adapter
    question = "What does the film festival show?"
    plain = assistant.search(question, k=1)[0]
    sentences = plain.chunk.sentences
    target = next(i for i, s in enumerate(sentences) if s.text.startswith("Hundreds of artists"))
    assert plain.matched[0] != target
    row = retriever.window_rows([retriever.chunks.index(plain.chunk)])[target]
    window = retriever.index.window_vectors(np.array([row]))[0]
    q = retriever.query_vector(question)
    # W q = q + u (v . q) with u along the target window and v along q: q is carried to the window.
    head = SentenceHead(u=(50 * window)[:, None].astype(np.float32), v=(q / (q @ q))[:, None].astype(np.float32),
                        meta={})
    retriever.sentence_head = head
    mapped = assistant.search(question, k=1)[0]
    assert mapped.chunk.id == plain.chunk.id
    assert mapped.matched[0] == target
    assert mapped.scores["sentence_scores"][target] == pytest.approx(float(window @ head(q)), abs=1e-5)
    assert mapped.scores["sentence"] == pytest.approx(float(window @ head(q)), abs=1e-5)
    assert mapped.scores["sentence"] > plain.scores["sentence"]
