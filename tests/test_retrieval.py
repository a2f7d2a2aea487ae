"""Retrieval on a hand-built index with the fake embedder: filters, scope and follow-up boosts,
a two-part question, MMR, monotone scores and the coverage signal."""

import pytest

from rag.api import Assistant, build_index
from rag.config import ChunkSettings, Config
from rag.embedding import FakeEmbedder
from rag.errors import InputError
from rag.retrieval import Retriever, Weights
from rag.query import exchange
from rag.types import Exchange, Question

TURNS = [
    ("00:10", "Chris Benson", "Welcome to the show. What are you building at the company?"),
    ("00:20", "Anastasis Germanidis", "We build video generation models for artists and filmmakers."),
    ("05:00", "Chris Benson", "How did you raise money early on?"),
    ("05:10", "Anastasis Germanidis", "We raised a seed round from investors who believed in creative tools."),
    ("10:00", "Chris Benson", "What was the first product like?"),
    ("10:10", "Anastasis Germanidis", "The first product was a drawing tool for street scenes."),
    ("15:00", "Chris Benson", "Tell me about the film festival."),
    ("15:10", "Anastasis Germanidis", "The film festival shows short films made with generative video."),
    ("20:00", "Chris Benson", "Where is video generation heading?"),
    ("20:10", "Anastasis Germanidis", "Video models will learn physics because they predict the next frame."),
]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrieval")
    src = tmp / "episode-1.md"
    src.write_text("\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TURNS) + "\n")
    config = Config(index_dir=tmp / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    build_index([src], name="ep", config=config, embedder=FakeEmbedder())
    return Assistant.load("ep", config=config, embedder=FakeEmbedder(), backend="extractive")


def texts(hits):
    return [h.chunk.text for h in hits]


def test_finds_the_passage_and_scores_are_monotone(assistant):
    hits = assistant.search("seed round investors", k=3)
    assert "seed round" in hits[0].chunk.text
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and [h.rank for h in hits] == [1, 2, 3]


def test_filters(assistant):
    hits = assistant.search("video", k=10, start_s=600, end_s=960)
    assert hits and all(h.chunk.end_s >= 600 and h.chunk.start_s <= 960 for h in hits)
    hits = assistant.search("video", k=10, speaker="Chris")
    assert all(any("Chris" in s.speaker for s in h.chunk.sentences) for h in hits)
    assert all(any("Chris" in s.speaker for s in h.chunk.sentences if not s.context) for h in hits)
    with pytest.raises(InputError, match="no speaker matches 'nobody'; the speakers are: Chris Benson"):
        assistant.search("video", k=10, speaker="nobody")   # a name no one has is wrong, not "no passage"


def test_time_scope_boost(assistant):
    hit = assistant.search("Around the 15-minute mark, what did he say?", k=1)[0]
    assert hit.chunk.start_s <= 15 * 60 + 60 and hit.chunk.end_s >= 15 * 60 - 60


@pytest.mark.parametrize("question, minute", [("What was discussed around minute 15?", 15),
                                              ("At minute ten, what did they talk about?", 10),
                                              ("What did they talk about in the first five minutes?", 0)])
def test_minute_n_searches_near_that_minute(assistant, question, minute):
    """"Around minute 30" named no time (on #260 it ranked 21:01, 6:30 and 22:53 first), and "the
    first five minutes" was the 5-minute mark."""
    top = assistant.search(question, k=1)[0].chunk
    assert top.start_s - 60 <= minute * 60 <= top.end_s + 60


@pytest.mark.parametrize("question", ["About an hour in, what did they say?", "What was said at 45:00?",
                                      "What did they discuss around minute 30?"])
def test_a_time_past_the_end_is_told_where_the_episode_ends(assistant, question):
    """The episode's last words are at 20:10: "an hour in" quoted its opening ("Welcome to the show")."""
    answer = assistant.ask(question)
    assert answer.refused and not answer.citations
    assert answer.text.startswith("The episode ends at about 20:") and "Ask about a time before the end" in answer.text
    # A time within the episode, or within the margin after its last words, is searched as before.
    assert not assistant.ask("What did they say around the 20-minute mark?").refused
    assert assistant.retriever.past_end(assistant.question("What was said at 22:00?")) is None


def test_a_question_that_is_only_scope_is_ranked_by_the_scope(assistant):
    # Nothing topical to match: the passages at the stated time / the end come first.
    top = assistant.search("What were they discussing around the 10-minute mark?", k=1)[0].chunk
    assert top.start_s <= 10 * 60 <= top.end_s
    last = max(c.start_s for c in assistant.index.chunks)
    top = assistant.search("What do they talk about at the very end?", k=1)[0].chunk
    assert top.end_s >= last  # reaches into the closing minutes


def test_followup_anchor_favours_the_previous_answer_time(assistant):
    r = assistant.retriever
    old = r.weights
    try:
        r.weights = Weights(followup=1.0)    # make the boost decide, to test where it lands
        for secs in (1210, 310):
            previous = Exchange("what next", "", times=(float(secs),))
            asked = Question("Anything else?", "Anything else? (following up on: what next)", previous, k=1)
            hit = r.search(asked).hits[0]
            assert hit.chunk.start_s <= secs <= hit.chunk.end_s
            # The times favour a follow-up only: a question that stands alone ignores them.
            alone = Question("Anything else?", previous=previous, k=1)
            assert not alone.follows_up
            # ... and so does a follow-up that names a new topic of its own.
            festival = Question("What about the film festival?",
                                "What about the film festival? (following up on: what next)", previous, k=1)
            assert festival.follows_up and "film festival" in r.search(festival).hits[0].chunk.text
    finally:
        r.weights = old
    assert r._near([910.0], 180.0).max() == pytest.approx(1.0)


def test_a_follow_ups_pull_leans_after_the_cited_time(assistant):
    """A follow-up's answer mostly comes after what the last answer cited: the passage five minutes
    after a cited time is pulled more than the one five minutes before it."""
    r = assistant.retriever
    cited = next(i for i, c in enumerate(r.chunks) if c.start_s <= 610 <= c.end_s)
    pull = r._after(Exchange("what was the first product?", "", times=(610.0,)))
    later = next(i for i, c in enumerate(r.chunks) if c.start_s <= 910 <= c.end_s)
    earlier = next(i for i, c in enumerate(r.chunks) if c.start_s <= 310 <= c.end_s)
    assert pull[cited] == pytest.approx(1.0)
    assert pull[later] > 0.3 and pull[earlier] < 0.01


def test_a_follow_ups_pull_stays_in_the_episode_the_last_answer_cited(tmp_path):
    """In an index of two episodes said alike, the minutes the last answer cited in one say nothing
    of the other's: a follow-up is pulled toward the cited episode's passages only."""
    for name in ("episode-1", "episode-2"):
        (tmp_path / f"{name}.md").write_text(
            "\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TURNS) + "\n")
    config = Config(index_dir=tmp_path / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    build_index([tmp_path / "episode-1.md", tmp_path / "episode-2.md"], name="two", config=config,
                embedder=FakeEmbedder())
    r = Assistant.load("two", config=config, embedder=FakeEmbedder(), backend="extractive").retriever
    # The last turn as a chat session keeps it, and as text over HTTP or MCP (its labels name the episode).
    for last in (Exchange("what was the first product?", "", times=(610.0,), episodes=("episode-2",)),
                 exchange("what was the first product?", "Ann [episode-2 10:10]: \u201cThe first product...\u201d")):
        pull = r._after(last)
        assert {c.episode for c, p in zip(r.chunks, pull) if p > 0.5} == {"episode-2"}
        r.weights = Weights(followup=1.0)     # make the pull decide, to test where it lands
        asked = Question("Anything else?", "Anything else? (following up on: what was the first product?)", last, k=2)
        assert [h.chunk.episode for h in r.search(asked).hits] == ["episode-2", "episode-2"]
    # A label that names no episode of the index says nothing of where the answer was.
    pull = r._after(exchange("what was the first product?", "Ann [at 10:10]: \u201cThe first product...\u201d"))
    assert {c.episode for c, p in zip(r.chunks, pull) if p > 0.5} == {"episode-1", "episode-2"}


def test_multi_part_question_gets_both_parts_in_the_top(assistant):
    hits = assistant.search("How did they raise the seed round, and what was the first drawing tool?", k=2)
    joined = " ".join(texts(hits))
    assert "seed round" in joined and "drawing tool" in joined


def test_mmr_skips_near_duplicates(assistant):
    import dataclasses

    import numpy as np

    vecs = np.array(assistant.index.chunk_vectors)   # a writable copy of the memory-mapped vectors
    vecs[1] = vecs[0]                                # chunk 1 repeats chunk 0
    index = dataclasses.replace(assistant.index, chunk_vectors=vecs)
    order = list(range(len(index.chunks)))
    fused = np.linspace(1.0, 0.5, len(order))
    r = Retriever(index, assistant.retriever.embedder, Weights(mmr_lambda=0.5))
    assert 1 not in r._mmr(order, fused, 2)
    r = Retriever(index, assistant.retriever.embedder, Weights(mmr_lambda=1.0))
    assert r._mmr(order, fused, 2) == [0, 1]


def test_coverage_counts_words_missing_from_the_transcript(assistant):
    r = assistant.retriever
    assert r.words.coverage("video generation models") == pytest.approx(1.0)
    assert r.words.coverage("quarterly revenue spreadsheet") == 0.0
    evidence = r.search(Question("video models", k=1))
    assert evidence.signals.coverage == pytest.approx(1.0) and evidence.signals.local_coverage == pytest.approx(1.0)
    assert "coverage" not in evidence.hits[0].scores          # once for the question, not in every hit
    assert r.search(Question("quarterly revenue spreadsheet", k=1)).signals.coverage == 0.0


class SynonymEmbedder(FakeEmbedder):
    """The fake embedder, except that a few question words embed like a transcript word."""

    SAME = {"cash": "money"}

    def embed_query(self, text):
        return self._vector(self.SAME.get(text, text))


def test_semantic_coverage_credits_a_word_by_its_nearest_transcript_word(tmp_path):
    src = tmp_path / "episode-1.md"
    src.write_text("\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TURNS) + "\n")
    config = Config(index_dir=tmp_path / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    build_index([src], name="ep", config=config, embedder=SynonymEmbedder())
    r = Assistant.load("ep", config=config, embedder=SynonymEmbedder(), backend="extractive").retriever
    words = r.words
    assert "money" in words.vocabulary and "cash" not in words.vocabulary
    assert len(words.vocabulary_vecs) == len(words.vocabulary)
    scope = r.scope("cash")
    assert r.words.unseen_words("How did they get cash?", scope) == ["cash"]
    assert r.words.neighbours("cash")[0] == ("money", pytest.approx(1.0))
    # "cash" is absent from the transcript, but "money" stands in for it: full credit
    assert r.words.coverage("cash investors") < 1.0
    assert r.words.semantic_coverage("cash investors") == pytest.approx(1.0)
    # a word with no near transcript word keeps only its (low) nearest similarity
    far = r.words.neighbours("sora")[0][1]
    assert far < 0.9
    assert r.words.semantic_coverage("sora") == pytest.approx(max(0.0, far))
    calls = []
    r.words.semantic_coverage = lambda *a, **kw: calls.append(a) or 1.0
    evidence = r.search(Question("cash investors", k=1))
    assert evidence.hits and calls == []                      # a search that lists passages never pays for it
    assert evidence.signals.semantic_coverage == 1.0 and evidence.signals.semantic_coverage == 1.0
    assert len(calls) == 1                                    # computed once, when first read


def test_variants_find_what_the_question_words_miss(assistant):
    r = assistant.retriever
    question = "Where did the cash come from?"
    plain = r.search(Question(question, k=1))
    rewritten = r.search(Question(question, k=1, variants=("raised a seed round from investors",)))
    assert "seed round" not in plain.hits[0].chunk.text
    assert "seed round" in rewritten.hits[0].chunk.text
    # refusal features still describe the question as asked
    assert rewritten.signals == plain.signals


def test_query_rewriting_through_the_assistant(tmp_path):
    from dataclasses import replace

    from rag.chat_models import FakeChatModel

    src = tmp_path / "episode-1.md"
    src.write_text("\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TURNS) + "\n")
    config = Config(index_dir=tmp_path / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    build_index([src], name="ep", config=config, embedder=FakeEmbedder())
    on = replace(config, query_rewrite=True)
    model = FakeChatModel(["raised a seed round from investors"])  # the rewrite; the answer is default
    a = Assistant.load("ep", config=on, embedder=FakeEmbedder(), chat_model=model)
    answer = a.ask("Where did the cash come from?")
    assert "seed round" in answer.hits[0].chunk.text
    assert answer.search_queries == ("raised a seed round from investors",)
    assert answer.to_json()["search_queries"] == ["raised a seed round from investors"]
    assert "Search queries:" in model.calls[0][1]["content"] and len(model.calls) == 2
    # a failing model: the question is searched as asked, and the answer says so
    broken = Assistant.load("ep", config=on, embedder=FakeEmbedder(), chat_model=FakeChatModel().fail_next())
    answer = broken.ask("Where did the cash come from?")
    assert any("query rewriting failed" in n for n in answer.notes)
    # off by default: one call, the answer
    quiet = FakeChatModel()
    Assistant.load("ep", config=config, embedder=FakeEmbedder(), chat_model=quiet).ask("How did they get cash?")
    assert len(quiet.calls) == 1


TESTING_TURNS = [
    ("01:00", "Mat Ryer", "What do you think about testing in Go, and table driven testing in particular?"),
    ("01:10", "Kris Guest", "Testing is everything: table driven testing, testing helpers, testing all day."),
    ("10:00", "Mat Ryer", "How do you review code from new people on the team?"),
    ("10:10", "Kris Guest", "I read the whole change first and then leave a few kind comments."),
    ("16:20", "Mat Ryer", "And testing said again: what is testing to you?"),
    ("16:30", "Kris Guest", "Testing testing testing: what was said about testing is that testing matters."),
    ("24:30", "Mat Ryer", "Coming back to it, where does it fit in a release, the slow part?"),
    ("24:40", "Kris Guest", "Before a release we run the slow integration suite on real hardware, our testing."),
    ("40:00", "Mat Ryer", "Any unpopular opinions about deployment?"),
    ("40:10", "Kris Guest", "Deploy on Fridays, it forces you to make rollbacks boring."),
]


@pytest.mark.parametrize("question", ["What was said about testing around the 25-minute mark?",
                                      "What did Kris say about testing around the 25-minute mark?"])
def test_a_time_in_the_question_searches_near_it_even_with_a_topic(tmp_path, question):
    """go-time-250: "What was said about testing around the 25-minute mark?" ranked 16:21, 19:52 and
    18:09 first; the time was only a small boost that the topic outweighed."""
    src = tmp_path / "go-1.md"
    src.write_text("\n\n".join(f"**{who}:** \\[{t}\\] {text}" for t, who, text in TESTING_TURNS) + "\n")
    config = Config(index_dir=tmp_path / "idx", chunking=ChunkSettings(max_tokens=40, question_context_tokens=0))
    build_index([src], name="go", config=config, embedder=FakeEmbedder())
    assistant = Assistant.load("go", config=config, embedder=FakeEmbedder(), backend="extractive")
    top = assistant.search(question, k=1)[0]
    assert top.chunk.start_s <= 25 * 60 + 180 and top.chunk.end_s >= 25 * 60 - 180
    assert "integration suite" in top.chunk.text
    # nothing about the topic near the time: the window widens, then the time is only a boost
    far = assistant.search("What was said about deployment around the 10-minute mark?", k=1)[0]
    assert "Fridays" in far.chunk.text
