"""The CLI contract: JSON shapes, batch mode, human output, and one clear line for every error."""

import json
import re
import subprocess
import sys

import pytest

from rag.cli import main
from rag.progress import progress_printer

SHAPE_PASSAGE = {"id", "episode", "chapter", "speakers", "start", "start_s", "end_s", "score", "text"}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_json_shape(env, capsys):
    code, out, _ = run(capsys, "search", "video generation models", "--json", "--k", "3")
    assert code == 0
    data = json.loads(out)
    assert data["query"] == "video generation models" and len(data["passages"]) == 3
    for p in data["passages"]:
        assert SHAPE_PASSAGE <= set(p) and isinstance(p["speakers"], list)
        assert p["start"].count(":") >= 1 and p["start_s"] <= p["end_s"]
    scores = [p["score"] for p in data["passages"]]
    assert scores == sorted(scores, reverse=True)


def test_search_filters(env, capsys):
    code, out, _ = run(capsys, "search", "research", "--json", "--chapter", "Runway today",
                       "--speaker", "Anastasis")
    assert code == 0
    for p in json.loads(out)["passages"]:
        assert p["chapter"] == "Runway today" and "Anastasis Germanidis" in p["speakers"]
    code, out, _ = run(capsys, "search", "research", "--json", "--start", "20:00", "--end", "25:00")
    for p in json.loads(out)["passages"]:
        assert p["end_s"] >= 1200 and p["start_s"] <= 1500
    # part of a name, in any case, matches; a name no one in the index has is an error, not "no passage"
    code, out, _ = run(capsys, "search", "research", "--json", "--speaker", "chris")
    assert code == 0 and json.loads(out)["passages"]
    code, out, err = run(capsys, "search", "research", "--speaker", "Nobody")
    assert code == 2 and not out
    assert "no speaker matches 'Nobody'; the speakers are: Chris Benson, Anastasis Germanidis" in err


def test_ask_json_shape(env, capsys):
    code, out, _ = run(capsys, "ask", "Why did Runway build an in-house research team?", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"question", "answer", "refused", "backend", "citations", "passages"} <= set(data)
    assert data["backend"] == "extractive"
    for c in data["citations"]:
        assert {"passage_id", "start", "start_s", "chapter", "speaker", "quote"} <= set(c)
        assert c["passage_id"] in {p["id"] for p in data["passages"]}
        assert c["quote"] in next(p["text"] for p in data["passages"] if p["id"] == c["passage_id"])


def test_ask_human_output_and_openai_without_key(env, capsys):
    code, out, err = run(capsys, "ask", "research team in-house models", "--backend", "openai")
    assert code == 0
    notes = [line for line in err.splitlines() if not line.startswith(("embedding ", "chunking ", "building the BM25"))]  # build progress
    assert len(notes) == 1 and "no chat model configured" in notes[0]
    assert "Sources:" in out or "doesn't cover" in out


def test_batch_keeps_order_and_ids(env, capsys, tmp_path):
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"id": "a", "question": "video models"}\n\nplain text question\n'
                     '{"id": 7, "question": "funding and customers"}\n')
    code, out, _ = run(capsys, "ask", "--batch", str(batch))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["id"] for r in rows] == ["a", 3, 7]
    assert rows[1]["question"] == "plain text question"
    code, out, _ = run(capsys, "search", "--batch", str(batch), "--k", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == ["a", 3, 7] and all(len(r["passages"]) == 2 for r in rows)


@pytest.mark.parametrize("argv, message", [
    (["ask", "   "], "the question is empty"),
    (["search", "x", "--k", "0"], "k must be between 1 and 100"),
    (["transcript", "does-not-exist.md"], "not found"),
    (["ask", "hello", "--index", "nope"], "no index named 'nope'"),
])
def test_errors_are_one_clear_line(env, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code != 0 and out == ""
    assert err.startswith("rag: error:") and message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_an_unrecognised_on_off_variable_is_one_clear_line(env, capsys, monkeypatch):
    from rag.config import Config

    assert Config.from_env({"RAG_QUERY_REWRITE": "1"}).query_rewrite
    assert not Config.from_env({"RAG_QUERY_REWRITE": "off"}).query_rewrite
    assert not Config.from_env({}).query_rewrite
    monkeypatch.setenv("RAG_QUERY_REWRITE", "maybe")
    code, out, err = run(capsys, "ask", "How did Runway start?")
    assert code != 0 and out == "" and err.count("\n") == 1
    assert "RAG_QUERY_REWRITE='maybe' is not on or off" in err and "Traceback" not in err


def test_malformed_transcript_names_the_line(env, capsys, tmp_path):
    bad = tmp_path / "bad.srt"
    bad.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n\n2\nnot a timing line\nWorld\n")
    code, _, err = run(capsys, "transcript", str(bad))
    assert code != 0 and "bad.srt:6" in err


def test_bad_batch_line_names_the_line(env, capsys, tmp_path):
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"question": "ok"}\n{"id": 2}\n')
    code, _, err = run(capsys, "ask", "--batch", str(batch))
    assert code == 2 and f"{batch}:2" in err and '"question"' in err


def test_stale_named_index_says_how_to_rebuild(env, capsys, tmp_path):
    src = tmp_path / "ep.md"
    src.write_text("**A:** Hello there, this is a test episode about video.\n\n**B:** Indeed it is.\n")
    assert run(capsys, "index", str(src), "--name", "mine")[0] == 0
    src.write_text("**A:** Changed.\n")
    code, _, err = run(capsys, "search", "video", "--index", "mine")
    assert code == 4 and "stale" in err and f"rebuild it with: rag index {src} --name mine" in err


def test_transcript_json_and_no_heavy_imports(env):
    code = ("import sys, json; from rag.cli import main; main(['transcript', sys.argv[1], '--json']); "
            "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'numpy', 'openai', 'onnxruntime', 'onnx') "
            "if m in sys.modules]; "
            "print(json.dumps(heavy), file=sys.stderr)")
    from rag.parsers import default_sources

    md = str(default_sources()[0]) if str(default_sources()[0]).endswith(".md") else str(default_sources()[1])
    proc = subprocess.run([sys.executable, "-c", code, md], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
    data = json.loads(proc.stdout)
    assert set(data) >= {"episode", "chapters", "turns"}
    turn = data["turns"][0]
    assert {"speaker", "speaker_inferred", "chapter", "paragraphs"} <= set(turn)
    assert {"start_s", "estimated", "text"} <= set(turn["paragraphs"][0])


def test_sources_without_a_chapter_read_cleanly():
    import io

    from rag.cli import print_answer
    from rag.types import Answer, Citation

    cites = (Citation(passage_id="p1", start_s=61.0, chapter=None, speaker="Guest", quote="Hi there."),
             Citation(passage_id="p2", start_s=125.0, chapter="Intro", speaker="Host", quote="Yes."))
    out = io.StringIO()
    print_answer(Answer(question="q", text="Guest [01:01]: “Hi there.”", backend="extractive",
                        citations=cites), stream=out)
    assert "  [01:01] Guest\n" in out.getvalue() and "  [02:05] Intro · Host\n" in out.getvalue()


def test_sources_list_a_stretch_of_one_speaker_once_with_its_first_and_last_time():
    """Six quoted sentences from two stretches were six source lines, each repeating the chapter
    and speaker; now one line a stretch, its times from first to last (estimated ones marked)."""
    import io

    from rag.cli import print_answer, source_runs
    from rag.types import Answer, Citation

    def cite(pid, t, speaker="Guest", chapter="Intro", estimated=True):
        return Citation(passage_id=pid, start_s=t, chapter=chapter, speaker=speaker, quote="x.",
                        estimated=estimated)

    cites = (cite("p1", 100.0), cite("p1", 115.0), cite("p1", 123.0, estimated=False),
             cite("p9", 900.0, chapter="Later"), cite("p9", 912.0, chapter="Later"),
             cite("p9", 930.0, speaker="Host", chapter="Later"), cite("p1", 100.0))
    assert [len(run) for run in source_runs(cites)] == [3, 2, 1]
    out = io.StringIO()
    print_answer(Answer(question="q", text="…", backend="extractive", citations=cites), stream=out)
    assert out.getvalue().split("Sources:\n")[1] == ("  ~[01:40]–[02:03] Intro · Guest\n"
                                                     "  ~[15:00]–~[15:12] Later · Guest\n"
                                                     "  ~[15:30] Later · Host\n")
    # a quote that goes back in time within a passage starts a source of its own
    assert [len(run) for run in source_runs((cite("p1", 120.0), cite("p1", 100.0)))] == [1, 1]


def test_sources_name_the_episode_when_the_index_has_several():
    import io

    from dataclasses import replace

    from rag.cli import _passage_lines, print_answer
    from rag.types import Answer, Chunk, Citation, Hit, Sentence

    s = Sentence(text="Hi there.", speaker="Guest", start_s=61.0, estimated=False)
    chunk = Chunk(id="ep-7-abc", episode="ep-7", chapter=None, speakers=("Guest",), start_s=60.0,
                  end_s=90.0, sentences=(s,))
    hit = Hit(chunk=chunk, score=1.0, rank=1, matched=(0,), scores={})
    answer = Answer(question="q", text="Guest [01:01]: “Hi there.”", backend="extractive", hits=(hit,),
                    citations=(Citation(passage_id="ep-7-abc", start_s=61.0, chapter=None,
                                        speaker="Guest", quote="Hi there."),))
    one, several = io.StringIO(), io.StringIO()
    print_answer(answer, stream=one)
    print_answer(answer, stream=several, show_episode=True)
    assert "  [01:01] Guest\n" in one.getvalue()
    assert "  [ep-7 01:01] Guest\n" in several.getvalue()
    assert _passage_lines([hit], show_episode=True)[0] == "[ep-7 01:00] Guest"
    assert _passage_lines([hit])[0] == "[01:00] Guest"
    linked = replace(hit, chunk=replace(chunk, url="https://changelog.com/practicalai/7", episode_title="Seven"))
    assert _passage_lines([linked], show_episode=True)[0] == ("[ep-7 01:00] Seven · Guest · "
                                                             "https://changelog.com/practicalai/7")
    several = io.StringIO()
    print_answer(replace(answer, hits=(linked,)), stream=several, show_episode=True)
    assert "  [ep-7 01:01] Guest · https://changelog.com/practicalai/7\n" in several.getvalue()


def test_build_progress_shows_sensible_rates_and_an_eta(monkeypatch):
    """Texts found in the cache are not counted at the stage's rate, no rate is shown before half a
    second of work (today's `54/54 (6580551/s)`), and a terminal gets an ETA."""
    import io

    import rag.progress

    clock = {"t": 100.0}
    monkeypatch.setattr(rag.progress.time, "monotonic", lambda: clock["t"])

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    report = progress_printer(tty)
    report("chunks", 500, 1000)          # 500 came from the cache
    clock["t"] += 10
    report("chunks", 600, 1000)          # 100 embedded in 10 s
    shown = tty.getvalue().split("\r")[-1]
    assert "embedding chunks 600/1000" in shown and "(10/s, ETA 40s)" in shown and "10s" in shown
    clock["t"] += 40
    report("chunks", 1000, 1000)
    assert tty.getvalue().endswith("\n") and "ETA" not in tty.getvalue().split("\r")[-1]

    log = io.StringIO()
    report = progress_printer(log)
    report("sentences", 54, 54)          # all cached: finished at once, and no absurd rate
    assert log.getvalue() == "embedding sentences 54/54 0s\n"
    report("read", 100, 0)               # a count with no total
    assert log.getvalue().splitlines()[-1] == "reading transcripts 100 0s"
    report("passages", 0, 10000)
    clock["t"] += 10
    report("passages", 100, 10000)       # not yet a tenth: nothing new
    assert log.getvalue().splitlines()[-1] == "embedding passages 0/10000 0s"
    clock["t"] += 20
    report("passages", 300, 10000)       # 30 s since the last line: a log is told anyway
    assert log.getvalue().splitlines()[-1] == "embedding passages 300/10000 (10/s, ETA 16m10s) 30s"


def test_a_build_outrun_by_a_concurrent_build_of_the_same_index_still_reports(env, capsys, monkeypatch,
                                                                               tmp_path):
    """Three `rag index x --name same` at once: the last to publish removes the others' versions,
    and one of them crashed reading its own manifest (FileNotFoundError)."""
    import rag.api

    real = rag.api.build_index
    source = tmp_path / "talk.md"
    source.write_text("**Ada Host:** Why tea?\n\n**Bob Guest:** Green tea keeps me calm while the "
                      "compiler builds, three cups every morning.\n")

    def outrun(*args, **kwargs):
        mine = real(*args, **kwargs)
        real(*args, **kwargs)            # another process publishes just after, pruning ours
        assert not mine.exists()
        return mine

    monkeypatch.setattr(rag.api, "build_index", outrun)
    code, out, _ = run(capsys, "index", str(source), "--name", "same")
    assert code == 0 and out.startswith("indexed talk: 1 chunks")


def test_a_build_logs_nothing_from_its_libraries(env, capsys, caplog, tmp_path):
    """bm25s sets its own logger to DEBUG; once the root logger is configured (onnxruntime's
    quantizer does so on import) every build printed "DEBUG:bm25s:Building index from tokens"."""
    import logging

    caplog.set_level(logging.DEBUG)
    source = tmp_path / "talk.md"
    source.write_text("**Ada Host:** Why tea?\n\n**Bob Guest:** Green tea keeps me calm while the "
                      "compiler builds, three cups every morning.\n")
    assert run(capsys, "index", str(source), "--name", "quiet")[0] == 0
    assert not [r for r in caplog.records if r.name.startswith("bm25s")]


def test_ask_answers_a_non_question_with_a_note_not_a_quote(env, capsys):
    code, out, _ = run(capsys, "ask", "the", "--json")
    data = json.loads(out)
    assert code == 0 and "doesn't look like a question" in data["answer"] and not data["citations"]
    code, out, _ = run(capsys, "ask", "Qu'est-ce que Gen-2 ?")
    assert "ask in English" in out and "[" not in out
    # #260 ends at 41:19: "an hour in" quoted "Thanks so much for having me." [00:40].
    code, out, _ = run(capsys, "ask", "About an hour in, what did they say?", "--json")
    data = json.loads(out)
    assert code == 0 and data["refused"] and not data["citations"]
    assert data["answer"].startswith("The episode ends at about 41:")


def test_estimated_times_are_marked_in_json_and_in_the_answer(env, capsys):
    code, out, _ = run(capsys, "ask", "Why did Runway build an in-house research team?", "--json")
    data = json.loads(out)
    assert code == 0 and data["citations"]
    for c in data["citations"]:
        assert isinstance(c["estimated"], bool)
        shown = f"~[{c['start']}]"
        assert (shown in data["answer"]) == c["estimated"]
    code, out, _ = run(capsys, "ask", "Why did Runway build an in-house research team?")
    sources = out.split("Sources:")[1]
    for line in sources.strip().splitlines():   # each source: its first time, then its last
        times = re.findall(r"(~?)\[(\d+:\d+)\]", line)
        for mark, start in times:
            assert (mark == "~") == next(c["estimated"] for c in data["citations"] if c["start"] == start)


def test_an_otter_export_is_indexed_and_answered_with_its_times(env, capsys):
    """A transcription service's export ("Name  0:00", the words below) was refused as "not a
    transcript"; now it is indexed, and answers cite the times its labels give."""
    path = env / "interview.txt"
    path.write_text("Jane Doe  0:00\nWelcome to the show. Today we talk about compilers with John.\n\n"
                    "John Smith  0:12\nThanks for having me. I started writing compilers in 2009 in Berlin.\n\n"
                    "Jane Doe  1:05\nWhy did you pick Rust for the new backend?\n\n"
                    "John Smith  1:10\nMostly for memory safety. We had too many crashes in the C++ version.\n")
    code, out, err = run(capsys, "index", str(path), "--name", "otter")
    assert code == 0, err
    code, out, _ = run(capsys, "ask", "Why Rust for the backend? Memory safety?", "--index", "otter", "--json")
    data = json.loads(out)
    assert code == 0 and not data["refused"]
    cited = {(c["start"], c["speaker"], c["estimated"]) for c in data["citations"]}
    assert ("01:10", "John Smith", False) in cited


def test_episodes_of_captions_that_name_no_one_list_no_empty_hosts(env, capsys):
    path = env / "talk.vtt"
    path.write_text("WEBVTT\n\n00:01.000 --> 00:04.000\nwelcome to the show about compilers\n\n"
                    "00:04.000 --> 00:08.000\nwe picked rust for memory safety\n")
    assert run(capsys, "index", str(path), "--name", "captions")[0] == 0
    code, out, _ = run(capsys, "episodes", "--index", "captions")
    assert code == 0 and out.startswith("talk  -  00:0") and "hosts:" not in out and not out.endswith(" \n")


def test_per_episode_limits_search_and_ask_and_is_validated(env, capsys):
    code, out, _ = run(capsys, "search", "video generation models", "--json", "--k", "5", "--per-episode", "2")
    assert code == 0 and len(json.loads(out)["passages"]) == 2   # the shipped index is one episode
    code, out, _ = run(capsys, "ask", "What is Gen-2?", "--json", "--per-episode", "1")
    assert code == 0 and len(json.loads(out)["passages"]) == 1
    code, _, err = run(capsys, "search", "video", "--per-episode", "0")
    assert code != 0 and "per_episode must be a whole number between 1 and 100" in err


def test_a_bad_context_budget_is_one_clear_line_and_verbose_says_no_tokens_were_sent(env, capsys, monkeypatch):
    monkeypatch.setenv("RAG_CONTEXT_TOKENS", "lots")
    code, out, err = run(capsys, "ask", "How did Runway start?")
    assert code != 0 and out == "" and err.count("\n") == 1
    assert "RAG_CONTEXT_TOKENS='lots' is not a whole number from 500 to 128000" in err
    monkeypatch.setenv("RAG_CONTEXT_TOKENS", "4000")
    code, out, err = run(capsys, "ask", "How did Runway start?", "--verbose")
    assert code == 0 and "tokens: none (no chat model was asked)" in err
