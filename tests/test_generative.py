"""rag.citations and the openai answerer (rag.answer.generative), with hand-built Hits."""

import re
from dataclasses import replace

import pytest

from openai_server import OpenAIServer, reply, status
from rag.answer import Answerer, collect
from rag.answer.generative import (NO_COVERAGE, ChatAnswerer, condense_question, fill,
                                   format_passage, is_refusal, rewrite_queries)
from rag.chat_models import FakeChatModel, OpenAIChatModel
from rag.citations import check_citations, find_marks, resolve
from rag.errors import ChatModelError, InputError
from rag.types import Answer, Chunk, Evidence, Exchange, Hit, Question, Sentence, Signals

HOST, GUEST = "Chris Benson", "Anastasis Germanidis"


def make_hit(n, start_s, lines, chapter="Gen-2", step=10.0):
    sentences = tuple(Sentence(text, speaker, start_s + step * i) for i, (speaker, text)
                      in enumerate(lines))
    speakers = tuple(dict.fromkeys(s.speaker for s in sentences))
    chunk = Chunk(id=f"chunk-{n}", episode="practical-ai-260", chapter=chapter, speakers=speakers,
                  start_s=start_s, end_s=start_s + step * len(lines), sentences=sentences)
    return Hit(chunk=chunk, score=1.0 / n, rank=n)


HITS = [
    make_hit(1, 816.0, [(HOST, "So what is Gen-2 exactly?"),
                        (GUEST, "Gen-2 is our video generation model."),
                        (GUEST, "It can turn a text prompt into a short video clip.")]),
    make_hit(2, 1200.0, [(GUEST, "We started Runway back in 2018 as a tool for artists."),
                         (GUEST, "The early version ran models from the research community.")],
             chapter="Origins"),
]


def on(question: str, hits, previous: Exchange | None = None) -> tuple[Question, Evidence]:
    """The typed question and what retrieval would hand over for it."""
    e = Evidence.of(Question(question, previous=previous), hits, Signals(1.0, 1.0, 1.0, None))
    return e.question, e


class EchoExtractive:
    """A stand-in for the extractive answerer: quotes the first passage."""

    name = "extractive"

    def stream(self, question, evidence):
        hits = evidence.hits
        text = hits[0].chunk.sentences[1].text if hits else NO_COVERAGE
        yield text
        yield Answer(question=question.standalone, text=text, backend=self.name, hits=tuple(hits))


# -- citations ----------------------------------------------------------------------------------

def test_find_marks_parses_labels_times_and_groups():
    text = "A [P2]. B [P1, P3]. C [13:36]. D [1:02:03]. E [see above] [P1; 13:40]."
    marks = find_marks(text)
    assert [[r.raw for r in m.refs] for m in marks] == [
        ["P2"], ["P1", "P3"], ["13:36"], ["1:02:03"], ["P1", "13:40"]]
    assert marks[3].refs[0].seconds == 3723.0


def test_label_ranges_expand():
    (mark,) = find_marks("[P1-P2]")
    assert [r.label for r in mark.refs] == [1, 2]
    assert find_marks("[13:36-14:00]") == []  # a time range is not a citation form we promise


def test_resolve_labels_and_times():
    assert resolve(find_marks("[P2]")[0].refs[0], HITS) == 1
    assert resolve(find_marks("[P3]")[0].refs[0], HITS) is None
    assert resolve(find_marks("[P0]")[0].refs[0], HITS) is None
    assert resolve(find_marks("[13:50]")[0].refs[0], HITS) == 0
    assert resolve(find_marks("[14:08]")[0].refs[0], HITS) == 0  # 2 s past the end: tolerated
    assert resolve(find_marks("[99:00]")[0].refs[0], HITS) is None
    assert resolve(find_marks("[12:75]")[0].refs[0], HITS) is None


def test_invented_citations_are_removed_and_reported():
    raw = "Gen-2 turns a text prompt into video [P1]. It was invented on Mars [99:00]. Also [P9]."
    checked = check_citations(raw, HITS)
    assert "[99:00]" not in checked.text and "[P9]" not in checked.text
    assert "Mars." in checked.text and "Also." in checked.text
    assert "removed citation [99:00]: matches no retrieved passage" in checked.notes
    assert "removed citation [P9]: matches no retrieved passage" in checked.notes


def test_valid_labels_render_as_times_with_best_quote():
    checked = check_citations("Runway started in 2018 as a tool for artists [P2].", HITS)
    assert checked.text == "Runway started in 2018 as a tool for artists [20:00]."
    (cite,) = checked.citations
    assert cite.passage_id == "chunk-2" and cite.chapter == "Origins" and cite.speaker == GUEST
    assert cite.quote == "We started Runway back in 2018 as a tool for artists."


def test_label_time_is_the_sentence_that_backs_the_claim():
    checked = check_citations("It turns a text prompt into a short video clip [P1].", HITS)
    assert checked.text.endswith("[13:56].")  # the third sentence, not the passage start 13:36
    assert checked.citations[0].quote.startswith("It can turn a text prompt")


def test_citation_after_the_period_backs_the_previous_sentence():
    checked = check_citations("Runway began in 2018 as a tool for artists. [P2]", HITS)
    assert checked.citations[0].quote.startswith("We started Runway")


def test_group_and_timestamp_citations():
    checked = check_citations("Both passages matter [P1, P2]. Video at [13:46].", HITS)
    assert "[P1" not in checked.text and "[13:46]." in checked.text
    assert {c.passage_id for c in checked.citations} == {"chunk-1", "chunk-2"}
    assert not checked.notes


def test_partly_invalid_group_keeps_valid_part():
    checked = check_citations("Claim [P1, P7].", HITS)
    assert checked.text.count("[") == 1 and "P7" not in checked.text
    assert checked.notes == ("removed citation [P7]: matches no retrieved passage",)


def test_text_without_citations_is_untouched():
    assert check_citations("No brackets here , odd spacing.", HITS).text == \
        "No brackets here , odd spacing."


# -- token budget -------------------------------------------------------------------------------

def words_as_tokens(text):
    return len(text.split())


def test_fit_keeps_best_ranked_whole_passages():
    cost1 = words_as_tokens(format_passage(1, HITS[0]))
    kept = fill(list(reversed(HITS)), budget=cost1 + 5, count=words_as_tokens)
    assert [h.chunk.id for h in kept] == ["chunk-1"]  # rank order, not list order
    kept = fill(HITS, budget=10_000, count=words_as_tokens)
    assert [h.chunk.id for h in kept] == ["chunk-1", "chunk-2"]


def test_fit_cuts_an_oversized_top_passage_at_a_sentence_boundary():
    kept = fill(HITS, budget=25, count=words_as_tokens)
    assert len(kept) == 1
    sentences = kept[0].chunk.sentences
    assert 1 <= len(sentences) < 3 and sentences == HITS[0].chunk.sentences[: len(sentences)]


def test_answerer_drops_passages_to_fit_budget_with_real_tokens():
    model = FakeChatModel()
    base = ChatAnswerer(model).messages("What is Gen-2?", [])[0]
    from rag.tokens import count_tokens

    overhead = sum(count_tokens(m["content"]) + 4 for m in base)
    answerer = ChatAnswerer(model, token_budget=overhead + 60)
    answer = collect(answerer.stream(*on("What is Gen-2?", HITS)))
    assert "[P2]" not in model.calls[0][1]["content"]
    assert [h.chunk.id for h in answer.hits] == ["chunk-1"]
    assert any("left out to fit the token budget" in n for n in answer.notes)


# -- the answerer -------------------------------------------------------------------------------

def test_answerer_protocol_and_prompt():
    model = FakeChatModel(["Gen-2 is Runway's video generation model [P1]."])
    answerer = ChatAnswerer(model)
    assert isinstance(answerer, Answerer) and answerer.name == "openai"
    events = list(answerer.stream(*on("What is Gen-2?", HITS)))
    assert isinstance(events[-1], Answer) and all(isinstance(e, str) for e in events[:-1])
    answer = events[-1]
    assert "".join(events[:-1]) == answer.text  # the deltas stream the checked text, times included
    assert answer.text == "Gen-2 is Runway's video generation model [13:46]."
    assert answer.backend == "openai" and not answer.refused and not answer.notes
    system, user = model.calls[0]
    assert system["role"] == "system" and "[P2]" in system["content"]
    assert "[P1] practical-ai-260 | 13:36-14:06 | chapter: Gen-2 | speakers: Chris Benson, Anastasis Germanidis" \
        in user["content"]
    assert f"{GUEST}: Gen-2 is our video generation model." in user["content"]
    assert "Question: What is Gen-2?" in user["content"]


def test_answerer_removes_invented_citations():
    model = FakeChatModel(["Gen-2 makes video [P1]. Runway raised $1B [P9] [99:00]."])
    answer = collect(ChatAnswerer(model).stream(*on("q?", HITS)))
    assert "[P9]" not in answer.text and "[99:00]" not in answer.text
    assert "removed citation [99:00]: matches no retrieved passage" in answer.notes
    assert [c.passage_id for c in answer.citations] == ["chunk-1"]


def test_refusal_is_detected():
    model = FakeChatModel([NO_COVERAGE])
    answer = collect(ChatAnswerer(model).stream(*on("What is the weather?", HITS)))
    assert answer.refused and answer.citations == ()
    assert is_refusal("Sorry, the interview does not cover that.")
    assert not is_refusal("Gen-2 covers many styles.")


def test_no_hits_means_no_model_call():
    model = FakeChatModel()
    answer = collect(ChatAnswerer(model).stream(*on("Anything?", [])))
    assert answer.refused and answer.text == NO_COVERAGE and model.calls == []


def test_empty_question_is_input_error():
    with pytest.raises(InputError):
        collect(ChatAnswerer(FakeChatModel()).stream(*on("  ", HITS)))


def test_empty_reply_is_a_refusal_with_note():
    answer = collect(ChatAnswerer(FakeChatModel([""])).stream(*on("q?", HITS)))
    assert answer.refused and "empty reply" in answer.notes[-1]


def test_chat_failure_without_fallback_reraises():
    model = FakeChatModel().fail_next(message="server down")
    with pytest.raises(ChatModelError, match="server down"):
        collect(ChatAnswerer(model).stream(*on("q?", HITS)))


def test_chat_failure_with_fallback_returns_extractive_answer():
    model = FakeChatModel().fail_next(message="server down")
    answer = collect(ChatAnswerer(model, fallback=EchoExtractive()).stream(*on("q?", HITS)))
    assert answer.backend == "extractive" and answer.text == "Gen-2 is our video generation model."
    assert answer.notes == ("chat model failed: server down; showing the extractive answer",)



def test_fallback_in_a_follow_up_quotes_new_sentences():
    from rag.answer.extractive import ExtractiveAnswerer
    from rag.answer.refusal import DEFAULT_POLICY

    from dataclasses import replace

    hits = [replace(HITS[0], scores={"dense": 0.7, "sentence": 0.7, "dense_rank": 1, "bm25_rank": 1,
                                     "sentence_scores": {1: 0.7, 2: 0.6}})]
    extractive = ExtractiveAnswerer(max_sentences=1, policy=DEFAULT_POLICY)
    first = collect(extractive.stream(*on("What is Gen-2?", hits)))
    assert not first.refused
    model = FakeChatModel().fail_next(message="server down")
    again = collect(ChatAnswerer(model, fallback=extractive).stream(
        *on("What else about Gen-2?", hits, previous=Exchange("What is Gen-2?", first.text))))
    assert again.backend == "extractive" and again.text != first.text
    assert {c.quote for c in again.citations}.isdisjoint(c.quote for c in first.citations)


# -- over real HTTP -----------------------------------------------------------------------------

@pytest.fixture
def server():
    srv = OpenAIServer().start()
    yield srv
    srv.stop()


def test_answer_over_http_streams_and_checks(server):
    server.script(status(500), reply("Runway started in 2018 as a tool for artists [P2]. [P5]"))
    model = OpenAIChatModel("m", base_url=server.url, api_key="k", backoff=0, timeout=2)
    events = list(ChatAnswerer(model).stream(*on("When did Runway start?", HITS)))
    assert len([e for e in events if isinstance(e, str)]) > 1
    answer = events[-1]
    assert answer.text == "Runway started in 2018 as a tool for artists [20:00]."
    assert answer.notes == ("removed citation [P5]: matches no retrieved passage",)
    assert server.chat_requests[-1]["body"]["stream"] is True


def test_fallback_over_http_when_server_always_fails(server):
    server.default = status(500, "model crashed")
    model = OpenAIChatModel("m", base_url=server.url, api_key="k", backoff=0, max_retries=1)
    answer = collect(ChatAnswerer(model, fallback=EchoExtractive()).stream(*on("q?", HITS)))
    assert answer.backend == "extractive"
    assert "chat model failed:" in answer.notes[-1] and "HTTP 500" in answer.notes[-1]
    assert answer.notes[-1].endswith("showing the extractive answer")
    assert len(server.chat_requests) == 2


def test_condense_question():
    model = FakeChatModel(['"What did Anastasis say about Gen-2\'s training data?"\n'])
    history = [("What is Gen-2?", "A video model [13:46].")]
    assert condense_question(model, history, "What was it trained on?") == \
        "What did Anastasis say about Gen-2's training data?"
    assert "User: What is Gen-2?" in model.calls[0][1]["content"]
    assert condense_question(model, [], "Standalone?") == "Standalone?"


def test_rewrite_queries_reads_a_list_leniently():
    model = FakeChatModel(['1. "Runway seed round investors"\n- raised money early\n\n'
                           'How did they fund it?\n* raised money early\nQuery 4: funding round\n'
                           'a fifth one\n'])
    assert rewrite_queries(model, "How did they fund it?") == [
        "Runway seed round investors", "raised money early", "funding round"]
    assert "Question: How did they fund it?" in model.calls[0][1]["content"]
    failing = FakeChatModel().fail_next()
    with pytest.raises(ChatModelError):
        rewrite_queries(failing, "q?")


def test_streamed_deltas_never_show_labels_or_invented_citations():
    model = FakeChatModel(["Gen-2 makes video [P1]. Runway raised $1B [P9] [99:00]. Done [P1]."],
                          chunk_size=3)
    events = list(ChatAnswerer(model).stream(*on("q?", HITS)))
    streamed = "".join(e for e in events if isinstance(e, str))
    assert streamed == events[-1].text
    assert "[P" not in streamed and "[99:00]" not in streamed and "[13:" in streamed


# -- the context: a token budget, merged neighbours, the order of the conversation --------------

def many_hits(n, gap=60.0):
    """``n`` passages of one episode, ranked in reverse order of time, ``gap`` s apart."""
    hits = []
    for i in range(n):
        start = 100.0 + gap * i
        hits.append(make_hit(n - i, start, [(GUEST, f"Point {i} is about topic {i} and nothing else."),
                                            (GUEST, f"More words on topic {i} to fill the passage.")]))
    return sorted(hits, key=lambda h: h.rank)


def test_a_budget_reads_as_many_passages_as_it_takes_and_five_passages_reads_five():
    hits = many_hits(12)
    wide = FakeChatModel()
    answer = collect(ChatAnswerer(wide, token_budget=6000).stream(*on("What about topic 3?", hits)))
    prompt = wide.calls[0][1]["content"]
    assert len(re.findall(r"^\[P\d+\] ", prompt, re.M)) == 12
    assert answer.usage is not None and answer.usage.passages == 12
    narrow = FakeChatModel()
    answer = collect(ChatAnswerer(narrow, passages=5).stream(*on("What about topic 3?", hits)))
    assert "[P5]" in narrow.calls[0][1]["content"] and "[P6]" not in narrow.calls[0][1]["content"]
    assert answer.usage.passages == 5 and any("7 lower-ranked" in n for n in answer.notes)


def test_passages_of_one_episode_are_laid_out_in_the_order_they_were_said():
    hits = many_hits(4)          # rank 1 is the latest
    model = FakeChatModel(["Topic 0 comes first [P1]."])
    answer = collect(ChatAnswerer(model).stream(*on("q?", hits)))
    prompt = model.calls[0][1]["content"]
    times = [prompt.index(f"Point {i} ") for i in range(4)]
    assert times == sorted(times)                      # 01:40 before 02:40 before ...
    assert answer.citations[0].passage_id == "chunk-4" and answer.text.startswith("Topic 0 comes first [01:40]")
    assert [h.rank for h in answer.hits] == [1, 2, 3, 4]  # the answer lists them best first


def test_neighbouring_passages_merge_into_one_block_and_citations_name_the_right_one():
    first = make_hit(2, 100.0, [(HOST, "How did Runway begin?"), (GUEST, "It began at NYU ITP.")])
    second = make_hit(1, 120.0, [(HOST, "How did Runway begin?"), (GUEST, "We wanted artists to use models.")])
    second = replace(second, chunk=replace(second.chunk, sentences=(
        replace(second.chunk.sentences[0], start_s=100.0, context=True),
        replace(second.chunk.sentences[1], start_s=120.0))))
    model = FakeChatModel(['He said "we wanted artists to use models" [P1].'])
    answer = collect(ChatAnswerer(model).stream(*on("Why did Runway begin?", [second, first])))
    prompt = model.calls[0][1]["content"]
    assert "[P2]" not in prompt and prompt.count("How did Runway begin?") == 1
    assert "[P1] practical-ai-260 | 01:40-02:20" in prompt
    assert answer.text == 'He said "we wanted artists to use models" [02:00].'
    assert answer.citations[0].passage_id == "chunk-1"   # the passage that holds 02:00
    assert {h.chunk.id for h in answer.hits} == {"chunk-1", "chunk-2"} and not answer.notes


def test_a_quotation_the_passage_does_not_hold_loses_its_quotation_marks_with_a_note():
    model = FakeChatModel(['Anastasis called Gen-2 \u201cour video generation model\u201d [P1], and said '
                           'Runway was "founded to replace Hollywood" [P2].'], chunk_size=5)
    events = list(ChatAnswerer(model).stream(*on("What is Gen-2?", HITS)))
    answer = events[-1]
    assert "".join(e for e in events if isinstance(e, str)) == answer.text   # the stream never showed it
    assert "\u201cour video generation model\u201d [13:46]" in answer.text
    assert "was founded to replace Hollywood [20:00]" in answer.text and '"founded' not in answer.text
    assert answer.notes == ("removed the quotation marks from \u201cfounded to replace Hollywood\u201d: "
                            "not the words of the passage it cites",)


def test_a_quotation_of_another_passage_than_the_one_cited_is_not_kept():
    model = FakeChatModel(['They said "a tool for artists" [P1].'])
    answer = collect(ChatAnswerer(model).stream(*on("q?", HITS)))
    assert '"' not in answer.text and len(answer.notes) == 1   # the words are P2's, not P1's


def test_usage_reports_the_tokens_sent_and_received_in_json():
    from rag.tokens import count_tokens

    model = FakeChatModel(["Gen-2 is a video model [P1]."])
    answer = collect(ChatAnswerer(model).stream(*on("What is Gen-2?", HITS)))
    sent = sum(count_tokens(m["content"]) + 4 for m in model.calls[0])
    assert answer.to_json()["usage"] == {"prompt_tokens": sent, "completion_tokens":
                                         count_tokens("Gen-2 is a video model [P1]."),
                                         "total_tokens": sent + count_tokens("Gen-2 is a video model [P1]."),
                                         "passages": 2}


def test_the_fallback_reads_the_questions_own_k_passages_not_the_budgets():
    hits = many_hits(12)
    q, e = on("q?", hits)
    q = replace(q, depth=30)
    e = Evidence(q, e.hits, e.measure)
    model = FakeChatModel().fail_next(message="down")
    answer = collect(ChatAnswerer(model, fallback=EchoExtractive()).stream(q, e))
    assert answer.backend == "extractive" and len(answer.hits) == 5


def test_the_depth_follows_the_budget():
    from rag.answer.generative import depth_for

    assert ChatAnswerer(FakeChatModel(), passages=5).depth == 5
    assert depth_for(1500) < depth_for(3000) < depth_for(6000) <= 100
    assert depth_for(500, k=12) == 12 and depth_for(10**6) == 100


def test_a_passage_apart_that_repeats_a_question_already_read_keeps_its_own_words_only():
    first = make_hit(1, 100.0, [(HOST, "Where would I find Quicksilver these days?"),
                                (GUEST, "It is still around.")])
    later = make_hit(2, 200.0, [(HOST, "Where would I find Quicksilver these days?"), (GUEST, "On GitHub.")])
    later = replace(later, chunk=replace(later.chunk, sentences=(
        replace(later.chunk.sentences[0], start_s=100.0, context=True), later.chunk.sentences[1])))
    model = FakeChatModel()
    answer = collect(ChatAnswerer(model).stream(*on("Where is Quicksilver?", [first, later])))
    prompt = model.calls[0][1]["content"]
    assert prompt.count("Where would I find Quicksilver") == 1 and "[P2]" in prompt   # two blocks
    assert answer.hits[1].chunk.sentences == later.chunk.sentences   # the answer lists it whole


def test_quotation_marks_around_a_citation_are_two_quotations_not_one():
    # nested straight quotes pair up wrongly: the second "pair" spans a citation
    model = FakeChatModel(['He said "Gen-2 is "our video generation model" [P1], and "a tool for artists" [P2].'])
    answer = collect(ChatAnswerer(model).stream(*on("What is Gen-2?", HITS)))
    assert answer.text.count('"') == 5 and not answer.notes


def test_an_answer_that_opens_by_saying_the_passages_do_not_give_it_is_a_refusal_with_what_they_say():
    model = FakeChatModel(["The passages don't give the exact length of the clips. Anastasis says it turns "
                           "a prompt into a short video clip [P1]."])
    answer = collect(ChatAnswerer(model).stream(*on("How many seconds long are Gen-2 clips?", HITS)))
    assert answer.refused and answer.citations and answer.citations[0].start_s == 836.0
    assert "marked refused" in answer.notes[-1]
    partial = collect(ChatAnswerer(FakeChatModel(["Gen-2 makes short clips [P1]. The passages don't say how "
                                                  "long."])).stream(*on("How long are Gen-2 clips?", HITS)))
    assert not partial.refused   # an answer first, then what is missing: a partial answer
