"""The question prior: its regression, its file, the refusal's weight on it and the answerer that
reads it (rag/adapters.py QuestionPrior, rag/training/prior.py, rag/answer/refusal.py)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from rag.adapters import QUESTION_PRIOR_FILE, QuestionPrior, load_adapter, load_question_prior, question_prior_for
from rag.answer.extractive import ANSWERING_FILE
from rag.answer.refusal import PODCAST_POLICY, RefusalPolicy, confidence, features
from rag.config import SHIPPED_ADAPTER
from rag.errors import InputError, ModelError
from rag.training.prior import auc, choose_weight, fit_logistic, questions, write
from rag.types import Chunk, Evidence, Hit, Sentence, Signals


def test_the_regression_finds_the_direction_that_separates_covered_from_uncovered_questions():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=16)
    direction /= np.linalg.norm(direction)
    x = rng.normal(size=(600, 16))
    y = (x @ direction + 0.3 * rng.normal(size=600) > -0.5).astype(float)
    w, b = fit_logistic(x[:400], y[:400])
    assert w @ direction / np.linalg.norm(w) > 0.9          # it learnt the direction, not noise
    assert auc(x[400:] @ w + b, y[400:]) > 0.9               # and it holds on rows it never saw
    assert b > 0                                            # most rows are covered: a positive intercept


def test_auc_counts_pairs_ordered_right_and_ties_as_half():
    assert auc(np.array([3.0, 2.0, 0.0]), np.array([1, 1, 0])) == 1.0
    assert auc(np.array([0.0, 2.0, 1.0]), np.array([1, 1, 0])) == 0.5
    assert auc(np.array([1.0, 1.0]), np.array([1, 0])) == 0.5
    assert np.isnan(auc(np.array([1.0]), np.array([1])))


def test_a_prior_file_round_trips_and_a_damaged_one_says_how_to_rebuild_it(tmp_path):
    w = np.linspace(-1, 1, 8).astype(np.float32)
    write(QuestionPrior(w=w, b=2.5, base=1.5, meta={"recipe": {"l2": 1.0}}), tmp_path / QUESTION_PRIOR_FILE)
    prior = load_question_prior(tmp_path / QUESTION_PRIOR_FILE)
    assert np.array_equal(prior.w, w) and prior.b == 2.5 and prior.base == 1.5 and prior.meta["recipe"] == {"l2": 1.0}
    assert prior(np.ones(8, np.float32)) == pytest.approx(float(w.sum()) + 2.5)
    # Distrust: how far the log-odds fall below the base rate, never below zero.
    below = -np.sign(w).astype(np.float32)                   # w . below = -sum|w| = -4.57: log-odds -2.07
    assert prior.distrust(below) == pytest.approx(1.5 - prior(below)) and prior.distrust(below) > 0
    assert prior.distrust(-below) == 0.0
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ModelError, match="rag.training.prior"):
        load_question_prior(tmp_path / "bad.safetensors")
    from safetensors.numpy import save_file   # a prior of the format's name but without its base rate

    save_file({"w": w, "b": np.array([2.5], np.float32)}, str(tmp_path / "old.safetensors"),
              metadata={"rag": json.dumps({"format": "rag-question-prior/1"})})
    with pytest.raises(ModelError, match="two numbers"):
        load_question_prior(tmp_path / "old.safetensors")


def test_the_shipped_adapter_carries_its_prior_and_the_policy_that_weighs_it():
    prior = question_prior_for(load_adapter(SHIPPED_ADAPTER))
    assert prior is not None, f"{SHIPPED_ADAPTER.parent / QUESTION_PRIOR_FILE} is missing"
    assert prior.w.shape == (384,) and (SHIPPED_ADAPTER.parent / QUESTION_PRIOR_FILE).stat().st_size < 10_000
    assert prior.meta["auc"]["validation"] > 0.8 and "CC BY-SA 4.0" in prior.meta["licence"]
    assert 1.0 < prior.base < 2.5              # about 85% of the listeners' single questions are covered
    shipped = json.loads((SHIPPED_ADAPTER.parent / ANSWERING_FILE).read_text())
    policy = RefusalPolicy(**shipped["policy"])
    assert policy.prior_weight > 0 and policy.threshold == PODCAST_POLICY.threshold
    chosen = shipped["figures"]["prior"]["chosen"]["validation"]
    before = shipped["figures"]["prior"]["before"]["validation"]
    assert chosen["refusal_recall"] > before["refusal_recall"] + 0.1
    assert chosen["false_refusals"] <= before["false_refusals"] + 0.005


def _evidence(distrust):
    sentence = Sentence(text="We ship every Friday.", speaker="Ann", start_s=0.0)
    chunk = Chunk(id="c0", episode="ep", chapter=None, speakers=("Ann",), start_s=0.0, end_s=5.0,
                  sentences=(sentence,))
    scores = {"dense": 0.5, "sentence": 0.5, "dense_rank": 1, "bm25_rank": 1, "sentence_scores": {0: 0.5}}
    return Evidence.of("When do they ship?", [Hit(chunk=chunk, score=1.0, scores=scores)],
                       Signals(coverage=1.0, local_coverage=1.0, semantic_coverage=1.0, answer=0.5, distrust=distrust))


def test_the_refusal_takes_its_weight_times_the_distrust_off_and_nothing_without_a_prior():
    policy = RefusalPolicy(threshold=0.5, coverage_weight=0.5, prior_weight=0.1)
    assert features(_evidence(0.0))["prior"] == 0.0
    assert confidence(_evidence(2.0), policy) == pytest.approx(confidence(_evidence(0.0), policy) - 0.2)
    without = replace(policy, prior_weight=0)
    assert confidence(_evidence(0.0), policy) == pytest.approx(confidence(_evidence(0.0), without))
    assert PODCAST_POLICY.prior_weight == 0.0     # the policy in code does not assume a prior


def test_the_weight_is_the_largest_whose_false_refusals_stay_within_a_standard_error():
    """Uncovered rows with a high distrust and answerable rows with a low one, alike in every other
    feature: the policy without the prior refuses few of either; with it, the uncovered ones, up to
    the weight where the answerable ones refused would grow by more than a standard error."""
    rng = np.random.default_rng(1)
    rows = []
    for n in range(800):
        answerable = n % 4 != 0
        f = {k: 0.0 for k in PODCAST_POLICY.weights()}
        distrust = max(rng.normal(-0.3 if answerable else 2.5, 0.5), 0)
        f.update(coverage=float(rng.uniform(0.3, 1.0)), prior=float(distrust))
        rows.append({"answerable": answerable, "refusal": f})
    base = RefusalPolicy(threshold=0.35, coverage_weight=1.0)
    policy, figures = choose_weight(rows, [], base)
    before, chosen = figures["before"]["validation"], figures["chosen"]["validation"]
    assert policy.threshold == base.threshold and policy.prior_weight > 0
    assert chosen["refusal_recall"] > before["refusal_recall"] + 0.3
    p = before["false_refusals"]
    allowed = p + np.sqrt(p * (1 - p) / before["answerable"])
    assert chosen["false_refusals"] <= allowed
    heavier = [t for t in figures["tried"] if t["prior_weight"] > policy.prior_weight]
    assert heavier and all(t["validation"]["false_refusals"] > allowed for t in heavier)


def test_fitting_the_prior_needs_uncovered_questions_in_each_split(tmp_path):
    from rag.training.prior import fit_beside

    items = [{"id": f"ep-{n}-1", "episode": f"ep-{n}", "question": "Why?", "answerable": True,
              "gold_quotes": ["because"]} for n in range(30)]
    for it in items:
        (tmp_path / f"{it['episode']}.jsonl").write_text(json.dumps(it) + "\n")
    assert len(questions("train", tmp_path)) > 0
    with pytest.raises(InputError, match="uncovered"):
        fit_beside(tmp_path / "adapter.safetensors", tmp_path, tmp_path, corpus=tmp_path)
