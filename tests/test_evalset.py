"""The shipped evaluation set is valid, and the validator really catches problems."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "eval" / "questions.jsonl"

_spec = importlib.util.spec_from_file_location("eval_validate", REPO / "eval" / "validate.py")
validate_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validate_mod)

TRANSCRIPT = validate_mod.default_transcript_path()

pytestmark = pytest.mark.skipif(
    not TRANSCRIPT.exists(), reason=f"transcript not available at {TRANSCRIPT}"
)


def _lines() -> list[str]:
    return [l for l in QUESTIONS.read_text(encoding="utf-8").splitlines() if l.strip()]


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "questions.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _first_index(lines: list[str], pred) -> int:
    for i, l in enumerate(lines):
        obj = json.loads(l)
        if "meta" not in obj and pred(obj):
            return i
    raise AssertionError("no matching item")


def _answerable(o: dict) -> bool:
    return o["answerable"] and o["type"] not in ("multi", "followup")


def test_shipped_set_is_valid():
    problems = validate_mod.validate(QUESTIONS, TRANSCRIPT)
    assert problems == []


def test_load_items_skips_meta_and_counts():
    items = validate_mod.load_items(QUESTIONS)
    assert len(items) >= 100
    assert all("meta" not in it for it in items)
    assert json.loads(_lines()[0]).keys() == {"meta"}
    assert sum(1 for it in items if not it["answerable"]) >= 20
    assert sum(1 for it in items if it["type"] == "followup") >= 14
    dev = sum(1 for it in items if it["split"] == "dev")
    assert 0.3 <= dev / len(items) <= 0.65  # q134+ extended dev only (see eval/README.md)


def test_normalise_unifies_markup_quotes_dashes_ellipses():
    n = validate_mod.normalise
    assert n("**Chris Benson:** It\u2019s   \u201cfine\u201d \u2014 really\u2026") == n("it's \"fine\" -- really...")
    assert n("\\[06:01\\] So I've") == "so i've"
    assert n("a \u2013 b") == n("a - b") == n("a -- b")


def test_a_quote_copied_with_html_entities_is_held_by_the_text_the_parser_reads():
    """Some archive files write "there&#39;s"; rag's parser reads "there's", and a listener's gold
    quote copied from the raw file kept the entity, so the answer that quoted it was not counted."""
    from rag.evaluation.metrics import holds

    n = validate_mod.normalise
    assert n("there&#39;s a &quot;reference&quot; &amp; more") == n('there\'s a "reference" & more')
    assert holds("We ended up at Block, because there's a reference to the Square shape.",
                 "we ended up at Block, because there&#39;s a reference to the Square shape")


def test_catches_quote_not_in_transcript(tmp_path):
    lines = _lines()
    i = _first_index(lines, _answerable)
    obj = json.loads(lines[i])
    obj["gold_quotes"] = ["this sentence was never said by anyone on the show at all"]
    lines[i] = json.dumps(obj)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert any("not found" in p and obj["id"] in p for p in problems)


def test_catches_duplicate_id(tmp_path):
    lines = _lines()
    a = json.loads(lines[1])
    b = json.loads(lines[2])
    b["id"] = a["id"]
    lines[2] = json.dumps(b)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert any("used 2 times" in p and a["id"] in p for p in problems)


def test_catches_quote_occurring_twice(tmp_path):
    lines = _lines()
    i = _first_index(lines, _answerable)
    obj = json.loads(lines[i])
    # said twice: once about LLMs predicting tokens, once about video frames
    obj["gold_quotes"] = ["in order to predict the next"]
    lines[i] = json.dumps(obj)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert not any("not found" in p for p in problems)
    assert any("times in the transcript" in p and obj["id"] in p for p in problems)


def test_catches_too_short_quote(tmp_path):
    lines = _lines()
    i = _first_index(lines, _answerable)
    obj = json.loads(lines[i])
    obj["gold_quotes"] = ["Gen-2 is a text"]
    lines[i] = json.dumps(obj)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert any("words" in p and obj["id"] in p for p in problems)


def test_catches_quote_spanning_speaker_turns(tmp_path):
    lines = _lines()
    i = _first_index(lines, _answerable)
    obj = json.loads(lines[i])
    obj["gold_quotes"] = ["Did I get it anywhere close to right there? Yeah, all good."]
    lines[i] = json.dumps(obj)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert any("spans" in p and obj["id"] in p for p in problems)


def test_catches_missing_meta_and_bad_fields(tmp_path):
    lines = _lines()[1:]  # drop meta
    obj = json.loads(lines[0])
    obj["split"] = "train"
    del obj["question"]
    lines[0] = json.dumps(obj)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert any("meta" in p for p in problems)
    assert any("split" in p for p in problems)
    assert any("'question'" in p for p in problems)


def test_catches_unanswerable_with_quotes(tmp_path):
    lines = _lines()
    i = _first_index(lines, lambda o: not o["answerable"])
    obj = json.loads(lines[i])
    obj["gold_quotes"] = ["Gen-2 is a text to video and image to video generation model"]
    lines[i] = json.dumps(obj)
    problems = validate_mod.validate(_write(tmp_path, lines), TRANSCRIPT)
    assert any("unanswerable" in p and obj["id"] in p for p in problems)


def test_cli_exit_codes(tmp_path):
    assert validate_mod.main([str(QUESTIONS), "--transcript", str(TRANSCRIPT)]) == 0
    lines = _lines()
    lines.append(lines[-1])  # duplicated id
    assert validate_mod.main([str(_write(tmp_path, lines)), "--transcript", str(TRANSCRIPT)]) == 1


HELD_OUT = REPO / "eval" / "episodes" / "practical-ai-84" / "questions.jsonl"


def test_held_out_set_skips_the_main_sets_minimums_but_not_its_quotes(tmp_path):
    """A held-out set for another episode: small and test-only, yet every quote is still checked
    (here against a transcript written for the test)."""
    transcript = tmp_path / "other.md"
    transcript.write_text("**Host:** What do you build?\n\n"
                          "**Guest:** We build question answering systems for public health agencies.\n")
    meta = {"meta": {"description": "d", "splits": {"dev": "none", "test": "all"}, "version": 1,
                     "held_out": True, "license": "(c) Changelog Media LLC, CC BY-SA 4.0"}}
    item = {"id": "p1", "split": "test", "type": "factual", "question": "What do they build?",
            "gold_quotes": ["We build question answering systems for public health agencies"],
            "answer": "QA systems for health agencies.", "answerable": True}
    path = _write(tmp_path, [json.dumps(meta), json.dumps(item)])
    assert validate_mod.validate(path, transcript) == []
    meta["meta"]["held_out"] = False  # the same file as a main set: far too small
    assert any("want >= " in p for p in validate_mod.validate(_write(tmp_path, [json.dumps(meta), json.dumps(item)]), transcript))
    meta["meta"]["held_out"] = True
    bad = dict(item, gold_quotes=["We build self-driving cars for agencies of the public sector"], split="dev")
    problems = validate_mod.validate(_write(tmp_path, [json.dumps(meta), json.dumps(bad)]), transcript)
    assert any("not found" in p for p in problems) and any("test items only" in p for p in problems)


def test_shipped_held_out_set_is_valid(tmp_path, catalog):
    import tarfile

    with tarfile.open(catalog) as tar:
        member = tar.getmember("changelog-transcripts/practicalai/practical-ai-84.md")
        (tmp_path / "ep84.md").write_bytes(tar.extractfile(member).read())
    assert validate_mod.validate(HELD_OUT, tmp_path / "ep84.md") == []
    assert json.loads(HELD_OUT.read_text(encoding="utf-8").splitlines()[0])["meta"]["held_out"] is True


def test_shipped_catalog_questions_quote_their_episodes_and_unanswerables_are_absent(catalog):
    """eval/catalog_questions.jsonl against the archive: every gold quote is in one of its gold
    episodes, and the words an unanswerable item names as ``absent`` are in no transcript."""
    import re
    import tarfile

    from rag.evaluation import metrics as M
    from rag.parsers.markdown import parse_markdown

    rows = [json.loads(line) for line in (REPO / "eval" / "catalog_questions.jsonl").read_text(
        encoding="utf-8").splitlines()[1:]]
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["split"] for r in rows} == {"dev", "test"}
    wanted = {e for r in rows for e in r["gold_episodes"]}
    words = sorted({w for r in rows if not r["answerable"] for w in r["absent"]})
    assert len(words) == sum(not r["answerable"] for r in rows)
    lowered = [w.lower() for w in words]
    texts, found = {}, []
    with tarfile.open(catalog) as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".md"):
                continue
            raw = tar.extractfile(member).read().decode("utf-8")
            low = raw.lower()       # a plain search first: a regex over 118 MB takes half a minute
            found += [(w, member.name) for w in lowered
                      if w in low and re.search(r"\b%s\b" % re.escape(w), low)]
            stem = Path(member.name).stem
            if stem in wanted:
                texts[stem] = " ".join(p.text for t in parse_markdown(raw, member.name).turns
                                       for p in t.paragraphs)
    assert found == []
    assert set(texts) == wanted
    for r in rows:
        assert bool(r["gold_episodes"]) == bool(r["gold_quotes"]) == r["answerable"], r["id"]
        for quote in r["gold_quotes"]:
            assert any(M.holds(texts[e], quote, fraction=1.0) for e in r["gold_episodes"]), (r["id"], quote)
