"""The sentence selector trained on listeners' questions (rag/training/selector.py): its groups,
its choice of depth and weight, its probability, its loss, and how the answerer reads its settings."""

import numpy as np
import pytest

from rag.training.rerank import Group, RerankRecipe, group_batch
from rag.training.selector import fit_probability, groups_of, picked_right


def row(question, texts, first, held, answerable=True):
    """One collected question: its stretches, their first-stage scores, which hold a gold quote."""
    return {"question": question, "answerable": answerable, "texts": texts, "first": first,
            "spans": [[0.0, float(h)] for h in held], "refusal": {}}


def test_a_group_is_the_stretches_that_hold_a_quote_against_the_hardest_others():
    r = row("q", ["a", "b", "c", "d"], [0.1, 0.9, 0.5, 0.7], [False, False, True, False])
    (g,) = groups_of([r])
    assert g == Group("q", ("c",), ("b", "d", "a"))   # negatives best first-stage score first
    assert groups_of([r], depth=2) == [Group("q", ("c",), ("b", "d"))]   # negatives among the top 2 only
    # nothing to learn from: no stretch holds the quote, none that does not, or not answerable
    assert groups_of([row("q", ["a"], [0.3], [False])]) == []
    assert groups_of([row("q", ["a"], [0.3], [True])]) == []
    assert groups_of([row("q", ["a", "b"], [0.3, 0.2], [True, False], answerable=False)]) == []


def test_the_batch_is_a_pure_function_of_seed_and_step_with_positives_first():
    groups = [Group(f"q{i}", (f"p{i}a", f"p{i}b", f"p{i}c"), tuple(f"n{i}{j}" for j in range(9)))
              for i in range(20)]
    recipe = RerankRecipe(questions=4, negatives=3)
    batch = group_batch(groups, recipe, step=5)
    assert batch == group_batch(groups, recipe, step=5) and batch != group_batch(groups, recipe, step=6)
    assert len(batch) == 4 and len({q for q, _, _ in batch}) == 4
    for q, candidates, answering in batch:
        i = q[1:]
        assert answering == 2 and candidates == [f"p{i}a", f"p{i}b", f"n{i}0", f"n{i}1", f"n{i}2"]


def test_the_rescoring_is_judged_by_whether_the_chosen_stretch_holds_the_quote():
    rows = [row("q1", ["a", "b", "c"], [0.9, 0.8, 0.1], [False, True, False]),
            row("q2", ["a", "b"], [0.5, 0.4], [True, False]),
            row("q3", [], [], []),                                     # nothing retrieved: wrong
            row("q4", ["a"], [0.2], [False], answerable=False)]        # not counted
    assert picked_right(rows, None, depth=8, weight=0.0) == pytest.approx(1 / 3)
    cross = [np.array([0.0, 10.0, 0.0]), np.array([0.0, 1.0]), np.zeros(0), np.array([1.0])]
    # weight 1 (x 1/20): q1's b gains 0.5 and wins; q2's b gains 0.05 and stays behind
    assert picked_right(rows, cross, depth=8, weight=1.0) == pytest.approx(2 / 3)
    # depth 1: only the first stage's best is read, whatever the cross-encoder says
    assert picked_right(rows, cross, depth=1, weight=8.0) == pytest.approx(1 / 3)
    # a weight so large the cross-encoder decides alone: q1 takes b, q2 takes b (no quote)
    assert picked_right(rows, cross, depth=8, weight=1e6) == pytest.approx(1 / 3)


def test_the_probability_rises_with_the_best_cross_score_and_separates_the_two_kinds():
    rng = np.random.default_rng(0)
    good = rng.normal(3.0, 0.5, 40)
    bad = rng.normal(-1.0, 0.5, 40)
    rows = [{"answerable": True}] * 40 + [{"answerable": False}] * 40 + [{"answerable": True}]
    cross = [np.array([x, x - 1]) for x in good] + [np.array([x]) for x in bad] + [np.zeros(0)]
    fit = fit_probability(rows, cross)
    assert fit["examples"] == 80 and fit["accuracy"] >= 0.97 and fit["weight"] > 0
    p = lambda x: 1 / (1 + np.exp(-(fit["weight"] * x + fit["bias"])))  # noqa: E731
    assert p(4.0) > 0.9 and p(-2.0) < 0.1


def test_the_answerer_reads_the_depth_weight_and_refusal_a_trained_selector_carries():
    from rag.answer.extractive import RERANK_DEPTH
    from rag.answer.refusal import RefusalPolicy
    from rag.api import _answerers
    from rag.config import Config
    from rag.reranking import FakeReranker

    class Trained(FakeReranker):
        settings = {"depth": 12, "weight": 4.0,
                    "policy": {"threshold": 0.123, "answer_weight": 0.5, "coverage_weight": 0.5}}

    class Retriever:   # what _answerers reads of a retriever
        class index:
            transcripts = [{}]

        class embedder:
            name = "all-MiniLM-L6-v2+podcast"
        hosts = guests = frozenset()

    extractive, answerer = _answerers(Retriever, Config(), reranker=Trained())
    assert answerer is extractive
    assert (extractive.rerank_depth, extractive.rerank_weight) == (12, 4.0)
    assert extractive.policy == RefusalPolicy(threshold=0.123, answer_weight=0.5, coverage_weight=0.5)
    plain, _ = _answerers(Retriever, Config(), reranker=FakeReranker())    # an older file: no settings
    assert plain.rerank_depth == RERANK_DEPTH and plain.policy != extractive.policy


torch = pytest.importorskip("torch")


def test_training_on_groups_ranks_every_answering_stretch_above_the_others(tmp_path):
    """The listwise loss with several positives: a few steps on a two-layer cross-encoder move
    the answering stretches above the others, and a rerun resumes from the checkpoint."""
    from rag.embedding import resolve_model_path
    from rag.training.rerank import RerankRun

    groups = [Group("Where did the company start?",
                    ("It started in an art school in New York.", "The first office was at NYU."),
                    ("We like cats a lot.", "The weather was nice.", "Music is great."))] * 4
    recipe = RerankRecipe(steps=12, layers=1, rank=4, alpha=8.0, lr=2e-3, warmup=1, questions=2,
                          negatives=3, checkpoint_every=6, question_tokens=16, candidate_tokens=24)
    run = RerankRun(recipe, tmp_path / "run", resolve_model_path("all-MiniLM-L6-v2"))
    run.train(groups=groups)
    losses = [entry["loss"] for entry in run.log]
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])
    model = run.model
    g = groups[0]
    with torch.inference_mode():
        s = model.scores([g.question] * 5, list(g.positives + g.negatives)).numpy()
    assert s[:2].min() > s[2:].max()
    again = RerankRun(recipe, tmp_path / "run", resolve_model_path("all-MiniLM-L6-v2"))
    again.train(groups=groups)            # finished: resumes at the last step, trains nothing more
    assert len(again.log) == 12
