"""Chunking rules: chapter boundaries, whole sentences, speaker attribution, model-sized, context."""

from rag.chunking import chunk_transcript, split_sentences
from rag.config import ChunkSettings
from rag.parsers import load_default_episode
from rag.types import Chapter, Episode, Paragraph, Transcript, Turn


def words(text: str) -> int:
    return len(text.split()) + 2


def _episode(turns, chapters=()):
    return Transcript(episode=Episode(id="ep"), chapters=tuple(chapters), turns=tuple(turns))


def _turn(speaker, text, start, end, chapter="One"):
    return Turn(speaker=speaker, chapter=chapter,
                paragraphs=(Paragraph(text=text, start_s=start, end_s=end, estimated=False),))


def test_split_sentences_keeps_abbreviations_and_ellipses():
    assert split_sentences("I met Dr. Smith there. It was fun... And then? Yes!") == [
        "I met Dr. Smith there.", "It was fun...", "And then?", "Yes!"]


def test_chunks_never_cross_chapters_and_keep_every_sentence():
    transcript = load_default_episode()
    chunks = chunk_transcript(transcript, words, ChunkSettings(max_tokens=120))
    chapters = {c.title: c for c in transcript.chapters}
    for chunk in chunks:
        assert chunk.chapter in chapters and not chapters[chunk.chapter].sponsor
        own = [s for s in chunk.sentences if not s.context]
        # start_s is the chunk's own first word; the host's question in front is context only
        assert chunk.start_s == own[0].start_s
        for s in own:
            assert chunk.start_s <= s.start_s + 1e-6
    # Every word of the transcript is in some chunk's content (not only as context).
    content = " ".join(s.text for c in chunks for s in c.sentences if not s.context)
    for turn in transcript.turns:
        for p in turn.paragraphs:
            for sentence in split_sentences(p.text):
                assert sentence in content


def test_chunks_fit_the_model_and_long_turns_overlap():
    long_text = " ".join(f"Sentence number {i} is about video models." for i in range(60))
    t = _episode([_turn("Host", "What do you think about video?", 0, 5),
                  _turn("Guest", long_text, 5, 300)], [Chapter("One", 0.0)])
    chunks = chunk_transcript(t, words, ChunkSettings(max_tokens=60, question_context_tokens=20),
                              model_max_tokens=64)
    assert len(chunks) > 3
    assert all(words(c.text) <= 64 for c in chunks)
    guest = [c for c in chunks if "Guest" in c.speakers]
    # consecutive pieces of the long turn share a sentence (overlap)
    for a, b in zip(guest, guest[1:]):
        a_content = [s.text for s in a.sentences if not s.context]
        b_content = [s.text for s in b.sentences if not s.context]
        assert a_content[-1] == b_content[0]
    # and each piece carries the host's question as context
    assert all(c.sentences[0].context and c.sentences[0].speaker == "Host" for c in guest[1:])
    # ... yet each piece starts at its own time, not at the question's
    assert len({c.start_s for c in guest}) == len(guest)


def test_chunk_start_is_its_first_word_and_ids_are_stable():
    t = _episode([_turn("Host", "First sentence here. Second one there.", 100, 110),
                  _turn("Guest", "An answer with words.", 110, 120)], [Chapter("One", 0.0)])
    a = chunk_transcript(t, words)
    b = chunk_transcript(t, words)
    assert [c.id for c in a] == [c.id for c in b]
    assert a[0].start_s == 100.0
    assert a[0].sentences[1].start_s > 100.0  # the second sentence has its own later time
    assert a[0].text.startswith("Host: First sentence here.")
    assert "\nGuest: An answer with words." in a[0].text


def test_transcript_without_chapters_is_chunked_by_turns():
    t = _episode([_turn("A", "Hello there friend.", 0, 5, chapter=None),
                  _turn("B", "Hi, how are you?", 5, 9, chapter=None)])
    chunks = chunk_transcript(t, words)
    assert chunks and all(c.chapter is None for c in chunks)


def test_a_closing_quotation_mark_stays_with_its_sentence():
    from rag.chunking import split_sentences

    text = ('I said "We have something here. This is something we\'re gonna go do." Was there a moment? '
            "Yes (really.) Then Dr. Who came\u2026 \u201cNext,\u201d he said.\u201d And on")
    assert split_sentences(text) == ['I said "We have something here.', 'This is something we\'re gonna go do."',
                                     "Was there a moment?", "Yes (really.)", "Then Dr. Who came\u2026",
                                     "\u201cNext,\u201d he said.\u201d", "And on"]
