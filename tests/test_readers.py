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
