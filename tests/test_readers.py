"""The listeners' corpus (eval/readers/): its validator, rule by rule, and the whole corpus in CI."""

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.evaluation import readers as R
from rag.training.data import HELD_OUT_EPISODES, held_out

REPO = Path(__file__).resolve().parent.parent

TRANSCRIPT = r"""**Ada Host:** Welcome to the show. Today I'm talking with Bob about compilers and coffee.

**Bob Guest:** Thanks for having me, it is a real pleasure to be here today with you.

**Ada Host:** \[02:10\] So how did you get into building compilers in the first place?

**Bob Guest:** I was frustrated with how slow the tools were at my first job in Lisbon.

Nobody else seemed to care about making them fast, so I rewrote the linker over one long winter.

**Ada Host:** \[05:40\] And what do you drink while you work on all of this?

**Bob Guest:** Mostly green tea from a small shop near the river, three cups before lunch every day.

**Ada Host:** \[09:05\] What would you tell someone starting out with language tooling today?

**Bob Guest:** Read the classic dragon book slowly, then write a tiny interpreter for a toy language.
"""

EP = "show-1"


def answerable(i, question, quote, speaker="Bob Guest", **extra):
    return {"id": f"{EP}-{i:02d}", "episode": EP, "question": question, "answerable": True,
            "type": "listener", "gold_quotes": [quote] if isinstance(quote, str) else quote,
            "answer": "An answer.", "speaker": speaker, **extra}


def problems(*items, complete=False):
    return R.validate_items(list(items), TRANSCRIPT, EP, complete=complete)


def test_a_verbatim_quote_by_its_speaker_passes_and_markup_and_case_do_not_matter():
    ok = answerable(1, "What got the guest started?", "frustrated with how SLOW the tools were")
    assert problems(ok) == []


@pytest.mark.parametrize("quote, speaker, expected", [
    ("frustrated with how slow the tools were not", "Bob Guest", "not found"),
    ("the tools were at my first job in Lisbon. Nobody else seemed", "Bob Guest", "spans two paragraphs"),
    ("slow", "Bob Guest", "quote has 1 words"),
    ("Mostly green tea from a small shop near", "Ada Host", "spoken by 'Bob Guest'"),
    ("how did you get into building compilers in the first place", "Ada Host", "host's question"),
])
def test_each_quote_rule_names_what_is_wrong(quote, speaker, expected):
    found = problems(answerable(1, "A question in other words?", quote, speaker=speaker))
    assert any(expected in p for p in found), found


def test_a_quote_found_twice_must_be_lengthened():
    text = TRANSCRIPT + "\n**Bob Guest:** I said it before: three cups before lunch every day.\n"
    found = R.validate_items([answerable(1, "How much tea?", "three cups before lunch every day")],
                             text, EP, complete=False)
    assert any("occurs 2 times" in p for p in found), found


def test_the_hosts_statements_may_answer_but_not_the_question_they_hand_over():
    item = answerable(1, "Who is on the show?", "Today I'm talking with Bob about compilers", speaker="Ada Host")
    assert problems(item) == []


def test_needs_all_quotes_come_from_different_paragraphs():
    same = answerable(1, "Where and what?", ["frustrated with how slow the tools were",
                                             "how slow the tools were at my first job in Lisbon"],
                      type="multi-passage", needs_all=True)
    assert any("different paragraphs" in p for p in problems(same))
    apart = dict(same, gold_quotes=["frustrated with how slow the tools were",
                                    "so I rewrote the linker over one long winter"])
    assert problems(apart) == []
    assert any("needs_all" in p for p in problems(dict(apart, needs_all=False)))


def test_a_time_scoped_question_names_a_minute_near_the_marker_before_its_quote():
    good = answerable(1, "Around the 6-minute mark, what does he drink?",
                      "Mostly green tea from a small shop near the river", type="time-scoped",
                      timestamp="05:40")
    assert problems(good) == []
    far = dict(good, question="Around the 20-minute mark, what does he drink?")
    assert any("names minute 20" in p for p in problems(far))
    assert any("must name its minute" in p for p in problems(dict(good, question="What does he drink?")))


def test_absent_terms_must_really_be_absent_as_whole_words():
    item = {"id": f"{EP}-21", "episode": EP, "question": "What does the tea cost?", "answerable": False,
            "why_unanswerable": "No price is given.", "absent_terms": ["price", "dollars"]}
    assert problems(item) == []
    assert any("'tea' does occur" in p for p in problems(dict(item, absent_terms=["price", "tea"])))
    # "cup" is absent as a whole word although "cups" is there
    assert problems(dict(item, absent_terms=["price", "cup"])) == []


def test_a_conversation_checks_every_turns_quotes():
    conv = {"id": f"{EP}-c1", "episode": EP, "type": "conversation", "turns": [
        {"question": "What does he drink?", "gold_quotes": ["Mostly green tea from a small shop"],
         "answer": "Green tea."},
        {"question": "How much of it?", "gold_quotes": ["three cups before lunch every day, twice"],
         "answer": "Three cups."}]}
    found = problems(conv)
    assert len(found) == 1 and "turn 2" in found[0] and "not found" in found[0]
    again = {**conv, "turns": [conv["turns"][0], {**conv["turns"][0], "question": "And then?"}]}
    found = problems(again)
    assert len(found) == 1 and "turn 2" in found[0] and "earlier turn's quote" in found[0]


def test_a_complete_file_needs_its_counts_and_questions_in_a_listeners_words():
    found = problems(answerable(1, "What got the guest started?", "frustrated with how slow the tools were"),
                     complete=True)
    text = "\n".join(found)
    for expected in ("1 answerable items", "0 unanswerable items", "0 conversation items",
                     "'paraphrase' questions", "marked \"style\""):
        assert expected in text
    echo = [answerable(i, "how slow were the tools at his first job in lisbon",
                       "how slow the tools were at my first job in Lisbon") for i in range(1, 5)]
    own = [answerable(i, "What made him start?", "frustrated with how slow the tools were")
           for i in range(5, 8)]
    found = problems(*echo, *own, complete=True)
    assert any("only 3 of 7 answerable questions" in p for p in found), found
    ids = {p.split(":")[0] for p in problems(*echo, *own, *own[:1], complete=False)}
    assert "id 'show-1-05'" in ids


def test_the_minute_a_question_names():
    assert R.minute_asked("around the 20-minute mark, what") == 20
    assert R.minute_asked("At minute 32 they say") == 32
    assert R.minute_asked("about 25 minutes in") == 25
    assert R.minute_asked("at 1:05:30 what") == pytest.approx(65.5)
    assert R.minute_asked("an hour and ten minutes in") == 70
    assert R.minute_asked("what did they say") is None


# --- the corpus itself --------------------------------------------------------------------------------

def test_the_splits_keep_every_other_question_sets_episodes_out_and_never_overlap():
    plan = R.splits()
    parts = {k: set(plan[k]) for k in ("train", "validation", "test", "held_out_shows")}
    for a in parts:
        for b in parts:
            assert a == b or not parts[a] & parts[b], (a, b)
    assert len(parts["test"]) >= 50
    everything = set().union(*parts.values())
    assert not everything & R.excluded_episodes()
    assert len({e.rsplit("-", 1)[0] for e in everything}) >= 12
    for e in parts["held_out_shows"]:
        assert e.rsplit("-", 1)[0] in plan["held_out_show_prefixes"]
    for e in parts["train"] | parts["validation"] | parts["test"]:
        assert e.rsplit("-", 1)[0] not in plan["held_out_show_prefixes"]
    # training never reads a question set's episode or a held-out show
    for e in parts["validation"] | parts["test"] | parts["held_out_shows"] | R.excluded_episodes():
        assert held_out(e)
    assert not any(held_out(e) for e in parts["train"])
    assert held_out("request-for-commits-behind-season-one")  # a whole show, whatever its ids
    assert "practical-ai-84" in HELD_OUT_EPISODES


def test_every_corpus_file_is_valid_against_its_transcript(catalog):
    files = R.corpus_files()
    if not files:
        pytest.skip("eval/readers/ holds no episode files yet")
    plan = R.splits()
    planned = set().union(*(plan[k] for k in ("train", "validation", "test", "held_out_shows")))
    texts = dict(R.transcripts({f.stem for f in files}, catalog))
    failures, ids = {}, Counter()
    for f in files:
        assert f.stem in planned, f"{f.name} is in no split of eval/readers/splits.json"
        assert f.stem in texts, f"{f.name}: no transcript {f.stem}.md in {catalog}"
        found = R.validate_file(f, texts[f.stem])
        if found:
            failures[f.name] = found[:5]
        ids.update(it["id"] for it in R.load(f))
    assert not failures, json.dumps(failures, indent=1)
    assert not [i for i, n in ids.items() if n > 1], "ids repeat across files"


# --- from the corpus to what rag trains and is judged on ----------------------------------------------

def test_items_become_eval_items_and_a_conversation_a_follow_up():
    conv = {"id": "c1", "episode": EP, "type": "conversation", "turns": [
        {"question": "What does he drink?", "gold_quotes": ["Mostly green tea"], "answer": "Tea."},
        {"question": "How much?", "gold_quotes": ["three cups before lunch"], "answer": "Three cups."}]}
    none = {"id": "u1", "episode": EP, "question": "Price?", "answerable": False,
            "why_unanswerable": "-", "absent_terms": ["price", "cost"], "style": "typed"}
    out = R.as_eval_items([answerable(1, "Why compilers?", "frustrated with how slow"), conv, none])
    assert [o["type"] for o in out] == ["listener", "followup", "unanswerable"]
    assert out[1]["history"] == ["What does he drink?"] and out[1]["gold_quotes"] == ["three cups before lunch"]
    assert out[2]["answerable"] is False and out[2]["gold_quotes"] == [] and out[2]["style"] == "typed"
    # a three-turn conversation is scored on its third turn, asked after the first two
    longer = {**conv, "id": "m1", "turns": conv["turns"] + [
        {"question": "Why that much?", "gold_quotes": ["it keeps me awake"], "answer": "To stay awake."}]}
    assert R.as_eval_items([longer]) == []      # left out unless asked for: fitted sets stay as they were
    third, = R.as_eval_items([longer], longer=True)
    assert third["type"] == "followup-3" and third["question"] == "Why that much?"
    assert third["history"] == ["What does he drink?", "How much?"]
    assert third["history_gold_quotes"] == ["Mostly green tea"] and third["gold_quotes"] == ["it keeps me awake"]
    # training reads a two-turn conversation's first turn, and leaves the three-turn ones out too
    from rag.training.readers import questions_of
    assert questions_of([conv, longer]) == [("What does he drink?", ["Mostly green tea"], False)]


def test_training_pairs_hold_their_quote_and_a_same_episode_negative(tmp_path):
    from rag.training.readers import corpus_items, pairs_for_episode

    long_para = " ".join(f"filler{i}" for i in range(200)) + " the quote we want sits right here at the end"
    text = TRANSCRIPT + f"\n**Bob Guest:** {long_para}\n"
    items = [answerable(1, "What sits at the end?", "the quote we want sits right here at the end"),
             answerable(2, "Where and what?", ["frustrated with how slow the tools were",
                                               "so I rewrote the linker over one long winter"],
                        needs_all=True)]
    pairs = pairs_for_episode(EP, items, text, "show")
    assert len(pairs) == 3                       # a pair per quote
    assert "the quote we want sits right here" in pairs[0].answer and len(pairs[0].answer.split()) <= 120
    assert all(p.neighbour and p.neighbour != p.answer and p.asker == "listener" for p in pairs)
    # a folder of question files without splits.json is split by episode, one in ten to validation
    for n in range(30):
        (tmp_path / f"ep-{n}.jsonl").write_text(json.dumps(dict(items[0], episode=f"ep-{n}")) + "\n")
    train, val = corpus_items(["train"], tmp_path), corpus_items(["validation"], tmp_path)
    assert len(train) + len(val) == 30 and 0 < len(val) < 10 and not set(train) & set(val)


def test_the_default_selector_is_the_hand_tuned_rule_and_a_fitted_one_is_read_beside_the_adapter(tmp_path):
    from rag.answer.extractive import DEFAULT_SELECTOR, Fitted, SpanSelector, answering_for
    from rag.answer.refusal import RefusalPolicy
    from rag.errors import ModelError

    f = {"best": 0.8, "mean": 0.6, "overlap": 0.5, "rank": 2.0, "sentences": 1.0, "words": 1.0,
         "turn_start": 1.0, "after_question": 0.0, "position": 0.1, "passage": 0.5}
    assert DEFAULT_SELECTOR.score(f) == pytest.approx((0.8 + 0.6) / 2 + 0.15 * 0.5 - 0.02 * 2)
    assert answering_for(tmp_path / "adapter.safetensors") == Fitted()
    (tmp_path / "answering.json").write_text(json.dumps(
        {"selector": {"best": 1.0, "turn_start": 0.5}, "policy": {"threshold": 0.3, "coverage_weight": 1.0},
         "fusion": {"dense": 1.5, "bm25": 0.25}}))
    fitted = answering_for(tmp_path / "adapter.safetensors")
    assert fitted.selector == SpanSelector((("best", 1.0), ("turn_start", 0.5))) and fitted.selector.score(f) == 1.3
    assert fitted.policy == RefusalPolicy(threshold=0.3, coverage_weight=1.0)
    assert fitted.fusion == {"dense": 1.5, "bm25": 0.25}
    (tmp_path / "answering.json").write_text('{"selector": {"loudness": 1}}')
    with pytest.raises(ModelError, match="answering.json is damaged"):
        answering_for(tmp_path / "adapter.safetensors")



def test_the_refusal_threshold_is_held_to_the_guard_questions_false_refusals():
    """Fitted on listeners' near misses alone, the threshold refused a quarter of #260's answerable
    dev questions; the guard's false refusals now cap it."""
    from rag.answer.refusal import RefusalPolicy
    from rag.training.answering import fit_refusal, highest_threshold, weighed

    def rows(pairs):
        return [{"answerable": a, "refusal": {"answer": x, "sentence": x, "dense": x, "coverage": x,
                                              "local_coverage": x, "semantic_coverage": x, "agreement": 0.0,
                                              "mismatch": 0.0}} for a, x in pairs]
    train = rows([(True, 0.5 + i / 100) for i in range(50)] + [(False, 0.1 + i / 100) for i in range(30)])
    val = rows([(True, 0.45 + i / 100) for i in range(50)] + [(False, 0.05 + i / 100) for i in range(40)])
    guard = rows([(True, 0.2 + i / 100) for i in range(40)])          # answerable, and less alike
    base = RefusalPolicy(threshold=0.2)
    alone, _ = fit_refusal(train, val, base)
    held, figures = fit_refusal(train, val, base, guard=guard, guard_false=0.05)

    def refused(policy, rs):
        return sum(weighed(policy, r["refusal"]) < policy.threshold for r in rs)
    assert refused(alone, guard) > 2                        # alone it refuses many guard questions
    assert refused(held, guard) <= 2 < refused(alone, guard) and held.threshold < alone.threshold
    assert figures["false_refusals"] <= 0.08 and figures["unanswerable"] == 40
    assert highest_threshold([{"answerable": True, "confidence": c} for c in (0.3, 0.1, 0.2, 0.4)], 0.25) == 0.2
    assert highest_threshold([{"answerable": False, "confidence": 0.1}], 0.1) == float("inf")


def test_a_refusal_fitted_beside_the_adapter_applies_with_a_selector_that_only_chooses_the_stretch(tmp_path):
    from rag.answer.refusal import RefusalPolicy
    from rag.api import _answerers
    from rag.config import Config
    from rag.reranking import FakeReranker

    (tmp_path / "answering.json").write_text(json.dumps({"policy": {"threshold": 0.31, "coverage_weight": 1.0}}))

    class Retriever:
        class index:
            transcripts = [{}]

        class embedder:
            name = "all-MiniLM-L6-v2+podcast"
        hosts = guests = frozenset()

    class Calibrated(FakeReranker):   # a probability of its own replaces the answer head's
        def probability(self, best):
            return 0.5

    fitted = RefusalPolicy(threshold=0.31, coverage_weight=1.0)
    adapter = tmp_path / "adapter.safetensors"
    assert _answerers(Retriever, Config(), adapter=adapter)[0].policy == fitted
    assert _answerers(Retriever, Config(), reranker=FakeReranker(), adapter=adapter)[0].policy == fitted
    assert _answerers(Retriever, Config(), reranker=Calibrated(), adapter=adapter)[0].policy != fitted

def test_the_selector_learns_which_stretches_hold_the_quote():
    import numpy as np

    from rag.answer.extractive import DEFAULT_SELECTOR, SPAN_FEATURES
    from rag.training.answering import fit_selector, selector_accuracy

    rng = np.random.default_rng(0)
    rows = []
    for q in range(60):  # the answer is the stretch right after the host's question, not the best-matching one
        spans = []
        for s in range(6):
            f = dict(zip(SPAN_FEATURES, rng.random(len(SPAN_FEATURES))))
            f["after_question"] = float(s == q % 6)
            spans.append([f[k] for k in SPAN_FEATURES] + [float(s == q % 6)])
        rows.append({"answerable": True, "spans": spans})
    fitted = fit_selector(rows)
    assert dict(fitted.weights)["after_question"] > 0
    assert selector_accuracy(rows, fitted)["all"] == 1.0 > selector_accuracy(rows, DEFAULT_SELECTOR)["all"]


def test_rag_questions_keeps_what_passes_the_validator_and_resumes(tmp_path):
    from rag.chat_models import FakeChatModel
    from rag.training.questions import write_questions

    source = tmp_path / "talks"
    source.mkdir()
    (source / f"{EP}.md").write_text(TRANSCRIPT)
    (source / "show-2.md").write_text(TRANSCRIPT)
    good = [answerable(i, f"What got him started, {i}?", q) for i, q in enumerate(
        ["frustrated with how slow the tools were", "so I rewrote the linker over one long winter",
         "Mostly green tea from a small shop near the river", "three cups before lunch every day",
         "Read the classic dragon book slowly"], 1)]
    invented = answerable(6, "What does he say about Rust?", "Rust is the future of every compiler")
    reply = "Here you go:\n```jsonl\n" + "\n".join(json.dumps(dict(g, episode="wrong", id=f"q{i}"))
                                                  for i, g in enumerate(good + [invented])) + "\n```\n"
    model = FakeChatModel([reply, "I cannot do that."])
    lines = []
    out = tmp_path / "questions"
    outcomes = write_questions(source, out, model, progress=lines.append)
    by_episode = {o.episode: o for o in outcomes}
    assert by_episode[EP].written == 5 and by_episode[EP].dropped == 1
    assert "not found" in by_episode[EP].reason
    assert by_episode["show-2"].written == 0 and not (out / "show-2.jsonl").exists()
    written = R.load(out / f"{EP}.jsonl")
    assert {it["episode"] for it in written} == {EP} and all(it["id"].startswith(EP + "-") for it in written)
    assert R.validate_file(out / f"{EP}.jsonl", TRANSCRIPT, complete=False) == []
    assert "Bob Guest" in model.calls[0][1]["content"] or "Bob Guest" in model.calls[0][0]["content"]
    assert any(line.startswith(f"{EP}: 5 questions, 1 dropped") for line in lines)
    # run again: the written episode is skipped, the other one asked again
    again = write_questions(source, out, FakeChatModel(["nothing"]))
    assert [o.episode for o in again] == ["show-2"]
