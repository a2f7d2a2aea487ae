"""Issue 9.9: property tests. Whatever goes in (arbitrary text or bytes, or text built from the
pieces each format is made of), out comes a Transcript / an answer, or a RagError subclass with a
message; never any other exception.

Example counts are small (the suite stays fast); ``HYPOTHESIS_PROFILE=thorough`` runs more.
"""

from __future__ import annotations

import json
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rag.errors import InputError, RagError, TranscriptError  # noqa: E402
from rag.parsers import load_transcript, parse_markdown, parse_page, parse_srt, parse_vtt  # noqa: E402
from rag.text import clean_json_line, clean_text  # noqa: E402
from rag.timing import assign_chapters, assign_times  # noqa: E402
from rag.types import Transcript  # noqa: E402

settings.register_profile("fast", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# Text from the pieces transcripts are made of, so that examples reach past the first check.
NAMES = st.sampled_from(["Chris Benson", "Anastasis Germanidis", "A", "Break", "Jingle", "",
                         "x" * 70, "Dr. O'Neil-Smith", "日本語", "\ud800"])
TIMES = st.sampled_from(["00:00", "06:01", "1:03:50", "99:99", "00:44:03:20", "00:06:01.01",
                         "0:00:00.000", "59:59.999", "1:2", "-1:00", "00:00:01,000", "00:01.000"])
WORDS = st.text(min_size=0, max_size=40)


@st.composite
def markdown_lines(draw) -> str:
    kind = draw(st.sampled_from(["speaker", "marker", "text", "heading", "break", "blank"]))
    if kind == "speaker":
        return f"**{draw(NAMES)}:** {draw(WORDS)}"
    if kind == "marker":
        return f"{draw(WORDS)} \\[{draw(TIMES)}\\] {draw(WORDS)}"
    if kind == "heading":
        return f"# {draw(WORDS)}"
    if kind == "break":
        return f"**Break**: \\[{draw(TIMES)}\\]"
    return "" if kind == "blank" else draw(WORDS)


@st.composite
def page_lines(draw) -> str:
    kind = draw(st.sampled_from(["chapters", "transcript", "chapter", "speaker", "text", "episode"]))
    if kind == "chapters":
        return "Chapters"
    if kind == "transcript":
        return "Transcript"
    if kind == "chapter":
        return f"{draw(TIMES)} {draw(WORDS)}"
    if kind == "speaker":
        return f"{draw(NAMES)}: {draw(WORDS)}"
    if kind == "episode":
        return f"Practical AI – Episode #{draw(st.integers(-5, 10**6))}"
    return draw(WORDS)


@st.composite
def subtitle_cues(draw, srt: bool) -> str:
    start, end = draw(TIMES), draw(TIMES)
    if srt:
        start, end = start.replace(".", ","), end.replace(".", ",")
    number = f"{draw(st.integers(-1, 10**6))}\n" if srt or draw(st.booleans()) else ""
    voice = draw(st.sampled_from(["", "<v {}>", "{}: "])).format(draw(NAMES))
    arrow = draw(st.sampled_from([" --> ", "-->", " -> ", " --> --> "]))
    return f"{number}{start}{arrow}{end}\n{voice}{draw(WORDS)}"


def _joined(lines, sep="\n"):
    return st.lists(lines, max_size=25).map(sep.join)


MARKDOWN = st.one_of(st.text(max_size=400), _joined(markdown_lines()))
PAGE = st.one_of(st.text(max_size=400), _joined(page_lines()))
VTT = st.one_of(st.text(max_size=400),
                _joined(subtitle_cues(srt=False), "\n\n").map(lambda t: "WEBVTT\n\n" + t))
SRT = st.one_of(st.text(max_size=400), _joined(subtitle_cues(srt=True), "\n\n"))


def _parses_or_refuses(parse, text: str) -> None:
    try:
        transcript = parse(text, "prop.txt")
    except RagError as err:
        assert str(err)
        return
    assert isinstance(transcript, Transcript)
    try:  # the timing stage takes whatever a parser produced
        timed = assign_chapters(assign_times(transcript))
    except RagError as err:
        assert str(err)
        return
    assert isinstance(timed, Transcript)
    json.dumps(timed.to_json())


@given(MARKDOWN)
def test_markdown_parser(text):
    _parses_or_refuses(parse_markdown, text)


@given(PAGE)
def test_page_parser(text):
    _parses_or_refuses(parse_page, text)


@given(VTT)
def test_webvtt_parser(text):
    _parses_or_refuses(parse_vtt, text)


@given(SRT)
def test_srt_parser(text):
    _parses_or_refuses(parse_srt, text)


@given(st.binary(max_size=600) | MARKDOWN.map(lambda t: t.encode("utf-8", "surrogatepass")),
       st.sampled_from([".md", ".txt", ".vtt", ".srt", ".toml", ""]))
def test_any_file_loads_or_is_a_transcript_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("prop") / f"file{suffix}"
    path.write_bytes(data)
    try:
        transcript = load_transcript(path)
    except TranscriptError as err:
        assert str(path) in str(err)
        return
    assert isinstance(transcript, Transcript) and transcript.turns


# --- text at the doors ---------------------------------------------------------------------------

@given(st.text())
def test_clean_text_is_always_encodable_and_idempotent(text):
    cleaned = clean_text(text)
    cleaned.encode("utf-8")
    assert clean_text(cleaned) == cleaned
    if text == cleaned:
        text.encode("utf-8")   # nothing was replaced only if nothing needed replacing


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=4))
def test_clean_json_line_always_gives_json_a_strict_parser_takes(value):
    line = clean_json_line(json.dumps(value) + "\n")
    from pydantic_core import from_json

    assert from_json(line) == {clean_text(k): clean_text(v) for k, v in value.items()}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    from rag.api import Assistant, build_index
    from rag.config import Config
    from rag.embedding import FakeEmbedder

    config = Config(index_dir=tmp_path_factory.mktemp("indexes"))
    build_index(None, config=config, embedder=FakeEmbedder())
    return Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")


QUESTIONS = st.one_of(st.text(max_size=300), st.text(max_size=3000),
                      st.binary(max_size=200).map(lambda b: b.decode("utf-8", "surrogateescape")))


@given(QUESTIONS)
def test_any_question_is_answered_or_an_input_error(assistant, question):
    try:
        answer = assistant.ask(question)
    except InputError as err:
        assert str(err)
        return
    json.dumps(answer.to_json(), ensure_ascii=False).encode("utf-8")
    assert answer.text and (answer.refused or answer.citations)


@given(QUESTIONS, st.one_of(st.none(), st.text(max_size=30)), st.one_of(st.none(), st.text(max_size=30)),
       st.one_of(st.none(), st.floats(allow_nan=True)), st.one_of(st.none(), st.floats()),
       st.integers(-5, 200))
def test_any_search_is_hits_or_an_input_error(assistant, query, chapter, speaker, start_s, end_s, k):
    try:
        hits = assistant.search(query, k=k, chapter=chapter, speaker=speaker, start_s=start_s,
                                end_s=end_s)
    except InputError as err:
        assert str(err)
        return
    assert len(hits) <= k
    json.dumps([h.to_json() for h in hits], ensure_ascii=False).encode("utf-8")


@given(st.lists(st.tuples(QUESTIONS, st.text(max_size=100)), max_size=3), QUESTIONS)
def test_any_conversation_is_answered_or_an_input_error(assistant, history, question):
    try:
        answer = assistant.ask(question, history=history)
    except InputError as err:
        assert str(err)
        return
    json.dumps(answer.to_json(), ensure_ascii=False).encode("utf-8")


# --- HTTP bodies -------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers()
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)
FIELDS = {"/ask": ["question", "k", "history", "backend"],
          "/search": ["query", "question", "k", "chapter", "speaker", "start_s", "end_s"],
          "/v1/chat/completions": ["messages", "stream", "k", "backend", "model"]}


@st.composite
def bodies(draw):
    path = draw(st.sampled_from(sorted(FIELDS)))
    keys = draw(st.lists(st.sampled_from(FIELDS[path]), unique=True, max_size=4))
    body = {k: draw(JSON) for k in keys}
    if path == "/v1/chat/completions" and draw(st.booleans()):
        body["messages"] = draw(st.lists(st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "system", "tool", ""]),
             "content": JSON}), max_size=3))
    return path, body


@pytest.fixture(scope="module")
def url(assistant):
    pytest.importorskip("fastapi")
    from rag.server import BackgroundServer, create_app

    with BackgroundServer(create_app(assistant)) as url:
        yield url


@given(bodies())
def test_any_json_body_is_answered_or_a_4xx_never_a_5xx(url, request_body):
    import httpx

    path, body = request_body
    r = httpx.post(url + path, json=body, timeout=30)
    assert r.status_code in (200, 413, 422), (r.status_code, r.text)
    if r.status_code != 200:
        assert r.json()["error"]["message"]
    elif body.get("stream") is True:
        assert r.text.rstrip().endswith("data: [DONE]") and '"internal_error"' not in r.text
