"""Parsers: Markdown, episode page, subtitles, merge, format detection, and the shipped episode."""

from __future__ import annotations

import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from rag.errors import TranscriptError
from rag.parsers import (default_sources, load_default_episode, load_transcript, merge, parse_text,
                         parse_file, parse_markdown, parse_page, parse_srt, parse_vtt)
from rag.timing import assign_times
from rag.types import Marker

DATA = Path(__file__).resolve().parent.parent / "rag" / "data" / "practical-ai-260"

MARKDOWN = """# A tiny show

**Ada Host:** Welcome to the show. What do you build?

**Bob Guest:** I build \\[01:02\\] compilers. They are *fun* and **fast**.

More about [my project](https://example.com) here.

**Break**: \\[02:00\\]

**Jingle**: La la la.

**Ada Host:** \\[03:30\\] We're back. Tell me more? See [05:00] later.
"""


def paragraphs(transcript):
    return [p for t in transcript.turns for p in t.paragraphs]


def test_markdown_turns_markers_and_markup():
    tr = parse_markdown(MARKDOWN, "shows/tiny-show-7.md")
    assert tr.episode.id == "tiny-show-7" and tr.episode.number == "7"
    assert tr.episode.title == "A tiny show"
    assert tr.episode.hosts == ("Ada Host",) and tr.episode.guests == ("Bob Guest",)
    assert [t.speaker for t in tr.turns] == ["Ada Host", "Bob Guest", "Jingle", "Ada Host"]
    bob = tr.turns[1]
    assert len(bob.paragraphs) == 2                      # the unlabelled paragraph continues Bob
    assert bob.paragraphs[0].text == "I build compilers. They are fun and fast."
    assert bob.paragraphs[0].markers == (Marker(2, 62.0),)
    assert bob.paragraphs[1].text == "More about my project here."
    jingle = tr.turns[2].paragraphs[0]
    assert jingle.break_before and jingle.break_s == 120.0
    last = tr.turns[3].paragraphs[0]
    assert last.markers == (Marker(0, 210.0), Marker(6, 300.0))   # unescaped [05:00] too
    assert "[" not in last.text and "\\" not in last.text


def test_a_speakers_label_on_the_next_line_starts_a_turn_without_a_blank_line():
    # the-changelog-651: Sugu's answer follows Adam's question on the next line; it was read as
    # Adam's words. The corpus validator reads paragraphs the same way.
    from rag.evaluation.readers import parse_transcript

    text = ("**Ada Host:** Welcome, Bob. Where does the database world go from here?\n"
            "**Bob Guest:** Yeah, going back to why I started this project, there is no answer yet.\n"
            "So we keep building.\n\n"
            "**Ada Host:** Thanks, Bob.\n")
    tr = parse_markdown(text, "tiny-show-8.md")
    assert [t.speaker for t in tr.turns] == ["Ada Host", "Bob Guest", "Ada Host"]
    assert tr.turns[1].paragraphs[0].text == ("Yeah, going back to why I started this project, there is no "
                                              "answer yet. So we keep building.")
    assert [p.speaker for p in parse_transcript(text).paragraphs] == ["Ada Host", "Bob Guest", "Ada Host"]


def test_markdown_odd_timestamps():
    text = "**A:** \\[00:44:03:20\\] frames. \\[1:03:50\\] hours. \\[00:06:01.01\\] fraction."
    markers = parse_markdown(text).turns[0].paragraphs[0].markers
    assert [round(m.seconds, 2) for m in markers] == [2643.67, 3830.0, 361.01]


def test_markdown_without_paragraphs_is_an_error():
    with pytest.raises(TranscriptError, match="no transcript paragraphs"):
        parse_markdown("# Only a title\n\n**Break**: \\[01:00\\]\n", "x.md")


def test_page_header_chapters_and_footer():
    page = parse_page((DATA / "episode-page.txt").read_text(), "episode-page.txt")
    ep = page.episode
    assert ep.id == "practical-ai-260" and ep.show == "Practical AI" and ep.number == "260"
    assert ep.title == "Generating the future of art & entertainment"
    assert ep.hosts == ("Chris Benson",) and ep.guests == ("Anastasis Germanidis",)
    assert ep.summary.startswith("Runway is an applied AI research company")
    assert len(page.chapters) == 19
    assert [c.title for c in page.chapters if c.sponsor] == ["Sponsor: Neo4j",
                                                             "Sponsor: Changelog News"]
    assert page.chapter("Becoming an entrepreneur").start_s == 13 * 60 + 36
    texts = [p.text for p in paragraphs(page)]
    assert texts[0].startswith("Welcome to another episode")
    assert texts[-1] == "Thank you, Chris."                   # footer and player text dropped
    assert all(t.speaker_inferred for t in page.turns)
    assert sum(p.break_before for p in paragraphs(page)) == 2


def test_page_speaker_inference_matches_markdown():
    """The page has no labels; compare the inferred speakers with the Markdown's real ones.

    Measured: 62/62 paragraphs (100%) on this episode, which the heuristic was developed on.
    It does not generalise well: on the 113 two-speaker Practical AI episodes of the catalog
    (many are host + co-host banter, not interviews) it gets 58% of paragraphs right, against
    51% for strict alternation and 57% for "everything is the majority speaker".
    """
    page = parse_page((DATA / "episode-page.txt").read_text())
    md = parse_markdown((DATA / "transcript.md").read_text())
    inferred = [t.speaker for t in page.turns for _ in t.paragraphs]
    real = [t.speaker for t in md.turns for _ in t.paragraphs]
    assert len(inferred) == len(real) == 62
    accuracy = sum(a == b for a, b in zip(inferred, real)) / len(real)
    assert accuracy >= 0.95


def test_page_without_transcript_is_an_error():
    with pytest.raises(TranscriptError, match="no 'Transcript' line"):
        parse_page("Some show – Episode #1\n\nTitle\n")


def test_merge_takes_episode_from_page_and_turns_from_markdown():
    page = parse_page((DATA / "episode-page.txt").read_text(), "page.txt")
    md = parse_markdown((DATA / "transcript.md").read_text(), "practical-ai-260.md")
    merged = merge(page, md)
    assert merged.format == "merged" and merged.chapters == page.chapters
    assert merged.turns == md.turns and merged.episode.summary == page.episode.summary
    assert merged.episode.id == "practical-ai-260"


VTT = """WEBVTT

NOTE a comment

1
00:00:01.000 --> 00:00:04.000
<v Ada Host>Hello there.</v>

00:04.000 --> 00:00:06.500 align:start
<v Ada Host>How are you?

00:00:07.000 --> 00:00:09.000
<v Bob Guest>Fine, <i>thanks</i>.

00:00:10.000 --> 00:00:11.000
Nobody speaks here.
"""

SRT = """1
00:00:01,000 --> 00:00:04,000
Ada Host: Hello there.

2
00:00:05,000 --> 00:00:08,000
Bob Guest: Hi Ada.
Glad to be here.
"""


def test_vtt_voices_merge_into_turns():
    tr = parse_vtt(VTT, "ep.vtt")
    assert [t.speaker for t in tr.turns] == ["Ada Host", "Bob Guest", "Speaker"]
    ada = tr.turns[0]
    assert [p.text for p in ada.paragraphs] == ["Hello there.", "How are you?"]
    assert (ada.paragraphs[1].start_s, ada.paragraphs[1].end_s) == (4.0, 6.5)
    assert not any(p.estimated for p in paragraphs(tr))
    assert tr.turns[1].paragraphs[0].text == "Fine, thanks."
    assert tr.turns[2].speaker_inferred and not tr.turns[0].speaker_inferred


def test_srt_speaker_prefixes(tmp_path):
    path = tmp_path / "ep.srt"
    path.write_text(SRT)
    tr = load_transcript(path)
    assert tr.format == "srt"
    assert [(t.speaker, t.paragraphs[0].text) for t in tr.turns] == [
        ("Ada Host", "Hello there."), ("Bob Guest", "Hi Ada. Glad to be here.")]
    assert tr.turns[1].paragraphs[0].start_s == 5.0


def test_malformed_srt_timing_names_the_line():
    bad = SRT.replace("00:00:05,000 --> 00:00:08,000", "00:00:05 -> 00:00:08")
    with pytest.raises(TranscriptError) as err:
        parse_srt(bad, "bad.srt")
    assert err.value.line == 6 and "bad.srt:6" in str(err.value) and "timing" in str(err.value)
    with pytest.raises(TranscriptError, match=r"bad\.vtt:3: malformed cue timing"):
        parse_vtt("WEBVTT\n\n00:01.000 --> 00:0x.000\nHi\n", "bad.vtt")


def test_load_transcript_errors(tmp_path):
    with pytest.raises(TranscriptError, match="file not found"):
        load_transcript(tmp_path / "missing.md")
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    with pytest.raises(TranscriptError, match="empty"):
        load_transcript(empty)
    latin1 = tmp_path / "latin1.md"
    latin1.write_bytes("**Chris:** caf\xe9".encode("latin-1"))
    with pytest.raises(TranscriptError, match="not UTF-8"):
        load_transcript(latin1)
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"**Chris:** hi\n%PDF\x00\x01")
    with pytest.raises(TranscriptError, match=r"binary\.md:2: .*binary data"):
        load_transcript(binary)


def test_format_sniffing_for_unknown_extensions(tmp_path):
    for name, text, fmt in [("a.data", VTT, "vtt"), ("b.data", SRT, "srt"),
                            ("c.data", MARKDOWN, "markdown"), ("d.txt", MARKDOWN, "markdown")]:
        path = tmp_path / name
        path.write_text(text)
        assert parse_file(path).format == fmt
    page = tmp_path / "page.data"
    page.write_text((DATA / "episode-page.txt").read_text())
    assert parse_file(page).format == "page"


def test_default_episode_is_merged_and_light():
    tr = load_default_episode()
    assert tr.episode.id == "practical-ai-260" and tr.format == "merged"
    assert len(tr.chapters) == 19
    assert {t.speaker for t in tr.turns} == {"Chris Benson", "Anastasis Germanidis"}
    assert not any(t.speaker_inferred for t in tr.turns)
    assert all(p.exists() for p in default_sources())
    assert (DATA / "ATTRIBUTION.md").read_text().count("CC BY-SA 4.0") == 1


def test_importing_parsers_stays_light():
    import subprocess
    code = ("import sys, rag.parsers; heavy = {'torch', 'sentence_transformers', 'faiss', "
            "'openai', 'numpy'}; print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_catalog_sample_parses(tmp_path, catalog):
    # One streaming pass over the .tar.gz (picking members by name would re-read it each time);
    # a hash of the name picks a stable ~1% sample across all shows.
    sample = []
    with tarfile.open(catalog, "r|gz") as tar:
        for member in tar:
            name = member.name
            if name.endswith(".md") and not name.endswith("ABOUT.md") and \
                    zlib.crc32(name.encode()) % 100 == 0:
                path = tmp_path / Path(name).name
                path.write_bytes(tar.extractfile(member).read())
                sample.append(path)
    assert len(sample) >= 10
    for path in sample:
        tr = load_transcript(path)
        assert tr.turns and all(p.start_s is not None for t in tr.turns for p in t.paragraphs)


def test_a_co_host_named_in_the_opening_is_a_host():
    opening = ("**Daniel Whitenack:** Welcome to Practical AI. I'm joined as always by my co-host, "
               "Chris Benson. How are you doing, Chris?\n\n"
               "**Chris Benson:** Doing well, Daniel.\n\n"
               "**Timo Möller:** Thanks for having me.\n")
    ep = parse_markdown(opening, "practical-ai-84.md").episode
    assert ep.hosts == ("Daniel Whitenack", "Chris Benson") and ep.guests == ("Timo Möller",)
    # a guest the host merely greets stays a guest
    guest = opening.replace("my co-host, Chris Benson", "our guest, Chris Benson")
    assert parse_markdown(guest, "x.md").episode.hosts == ("Daniel Whitenack",)


def test_times_standing_without_words_still_time_the_talk():
    # The catalog's interludes: a bare time before the next words, a jingle with its range, an
    # outro after the last words (changelog--friends-74 lost 21 of its 30 markers to these).
    text = """**Ada Host:** Welcome. What do you build?

\\[01:00\\]

**Bob Guest:** Compilers, mostly.

**Jingle:** \\[02:00\\] to \\[02:30\\]

**Ada Host:** \\[02:31\\] Back again. And after that?

**Bob Guest:** More compilers.

**Song:** \\[03:00\\] - \\[03:45\\]

**Ada Host:** Thanks for coming.

**Outro:** \\[04:10\\]
"""
    paras = paragraphs(parse_markdown(text, "x.md"))
    assert [p.text for p in paras] == ["Welcome. What do you build?", "Compilers, mostly.",
                                       "Back again. And after that?", "More compilers.",
                                       "Thanks for coming."]
    assert paras[1].markers == (Marker(0, 60.0),)                 # the bare time opens it
    assert paras[2].break_before and paras[2].break_s == 120.0    # the jingle pauses the talk
    assert paras[2].markers == (Marker(0, 151.0),)                # its own time beats 02:30
    assert paras[4].break_before and paras[4].break_s == 180.0
    assert paras[4].markers == (Marker(0, 225.0), Marker(3, 250.0))   # resumes; the outro ends it
    timed = paragraphs(assign_times(parse_markdown(text, "x.md")))
    assert timed[1].start_s == 60.0 and not timed[1].estimated
    assert timed[4].start_s == 225.0 and timed[4].end_s == 250.0


def test_labels_without_bold_a_jingle_after_a_break_and_times_in_notes():
    # go-time-226 writes "Break: \[36:49\]" without the bold; js-party-248 plays a jingle after
    # its break; 8,973 catalog notes carry a time ("\[unintelligible 01:00:20.10\]").
    text = """**Ada Host:** Welcome. What do you build?

Break: \\[01:00\\] to \\[01:30\\]

**Bob Guest:** Compilers, mostly.

**Break:** \\[02:00\\]

**Jingle:** \\[03:10\\]

**Ada Host:** Back again. Any \\[unintelligible 00:03:20.50\\] plans?
"""
    paras = paragraphs(parse_markdown(text, "x.md"))
    assert [p.text for p in paras] == ["Welcome. What do you build?", "Compilers, mostly.",
                                       "Back again. Any [unintelligible 00:03:20.50] plans?"]
    assert paras[1].break_before and paras[1].break_s == 60.0
    assert paras[1].markers == (Marker(0, 90.0),)
    assert paras[2].break_before and paras[2].break_s == 120.0    # the talk stopped at the break
    assert paras[2].markers == (Marker(0, 190.0), Marker(3, 200.5, note=True))


# What transcription services export, and what people type: before these were read, each was
# refused with "this does not look like a transcript".
OTTER = """Jane Doe  0:00
Welcome to the show. Today we talk about compilers with John.

John Smith  0:12
Thanks for having me. I started writing compilers in 2009 at a small startup in Berlin.

And then I moved to Lisbon.

Jane Doe  1:05
Why did you pick Rust for the new backend?

John Smith  1:10
Mostly for memory safety. Python: it was never an option for us.
"""
REV = """Jane Doe (00:00:00):
Welcome to the show. Today we talk about compilers with John.

John Smith (00:00:12):
Thanks for having me. I started writing compilers in 2009 at a small startup in Berlin.
And then I moved to Lisbon.

Jane Doe (00:01:05):
Why did you pick Rust for the new backend?

John Smith (00:01:10):
Mostly for memory safety. Python: it was never an option for us.
"""
DESCRIPT = """[00:00:00] Jane Doe: Welcome to the show. Today we talk about compilers with John.
[00:00:12] John Smith: Thanks for having me. I started writing compilers in 2009 at a small startup in Berlin. And then I moved to Lisbon.
[00:01:05] Jane Doe: Why did you pick Rust for the new backend?
[00:01:10] John Smith: Mostly for memory safety. Python: it was never an option for us.
"""


@pytest.mark.parametrize("name,text", [("otter.txt", OTTER), ("rev.txt", REV), ("descript.txt", DESCRIPT),
                                       ("descript.md", DESCRIPT), ("rev", REV)])
def test_speaker_labelled_exports_are_read_with_the_times_their_labels_give(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    transcript = load_transcript(path)
    assert transcript.format == "plain"
    assert [t.speaker for t in transcript.turns] == ["Jane Doe", "John Smith", "Jane Doe", "John Smith"]
    assert [t.paragraphs[0].start_s for t in transcript.turns] == [0.0, 12.0, 65.0, 70.0]
    assert not any(t.paragraphs[0].estimated for t in transcript.turns)
    said = " ".join(p.text for t in transcript.turns for p in t.paragraphs)
    assert "Lisbon" in said and "Python: it was never an option for us." in said  # words, not a speaker
    assert transcript.episode.hosts == ("Jane Doe",) and transcript.episode.guests == ("John Smith",)


def test_a_script_without_times_takes_names_that_label_two_lines_and_its_heading_as_title(tmp_path):
    path = tmp_path / "script.md"
    path.write_text("# Compilers with John\n\nJANE: Welcome. What do you build?\n\nJOHN: Compilers.\n"
                    "Note: mostly in Rust.\n\nJANE: Why Rust?\n\nJOHN: Memory safety.\n")
    transcript = load_transcript(path)
    assert transcript.episode.title == "Compilers with John"
    assert [t.speaker for t in transcript.turns] == ["JANE", "JOHN", "JANE", "JOHN"]
    assert transcript.turns[1].paragraphs[0].text == "Compilers. Note: mostly in Rust."
    assert all(p.estimated for t in transcript.turns for p in t.paragraphs)   # no time was given


def test_prose_with_a_label_or_two_is_still_not_a_transcript(tmp_path):
    path = tmp_path / "post.txt"
    path.write_text("A blog post about compilers.\n\nNote: it is not a transcript.\n\n"
                    "Update: we wrote it in 2020.\n\nAnother paragraph with more words.\n")
    with pytest.raises(TranscriptError, match="does not look like a transcript.*'Jane Doe: \\.\\.\\.'"):
        parse_file(path)


# yt-dlp --write-auto-subs: each cue opens with a line of spaces, word timings in tags, and every
# line shown again at the top of the next cue (and alone for 10 ms).
YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.500 align:start position:0%
 
welcome<00:00:00.480><c> to</c><00:00:00.640><c> the</c><00:00:00.800><c> show</c>

00:00:02.500 --> 00:00:02.510 align:start position:0%
welcome to the show
 

00:00:02.510 --> 00:00:05.000 align:start position:0%
welcome to the show
today<00:00:03.000><c> we</c><00:00:03.200><c> talk</c><00:00:03.400><c> about</c><00:00:03.600><c> compilers</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
today we talk about compilers
 

00:00:05.010 --> 00:00:08.000 align:start position:0%
today we talk about compilers
i<00:00:05.500><c> picked</c><00:00:05.700><c> rust</c>
"""


def test_youtube_captions_are_read_once_each_from_their_first_cue():
    """Before: the first cue's words were lost (its line of spaces ended it) and every later line
    was read two or three times."""
    transcript = parse_vtt(YOUTUBE_VTT, "talk.vtt")
    said = [(p.start_s, p.text) for p in paragraphs(transcript)]
    assert said == [(0.0, "welcome to the show"), (2.51, "today we talk about compilers"),
                    (5.01, "i picked rust")]


def test_whisper_lines_are_paragraphs_of_one_voice_until_a_diarized_name_changes():
    plain = parse_text("[00:00.000 --> 00:02.500]  Welcome to the show.\n"
                       "[00:02.500 --> 00:06.000]  I picked Rust for memory safety.\n", "talk.txt")
    assert [(t.speaker, t.speaker_inferred, [p.markers[0].seconds for p in t.paragraphs])
            for t in plain.turns] == [("Unknown", True, [0.0, 2.5])]
    diarized = parse_text("[00:00.000 --> 00:02.500] SPEAKER_00: Welcome to the show.\n"
                          "[00:02.500 --> 00:06.000] SPEAKER_01: I picked Rust for memory safety.\n"
                          "[00:06.000 --> 00:09.000] SPEAKER_01: And we shipped faster.\n", "talk.txt")
    assert [(t.speaker, len(t.paragraphs)) for t in diarized.turns] == [("SPEAKER_00", 1), ("SPEAKER_01", 2)]


def test_a_dialogue_with_long_hard_wrapped_turns_is_a_transcript():
    turn = "\n".join(["and a line of words wrapped at a fixed width, as editors save them"] * 8)
    text = f"Ada: Hello.\n{turn}\n\nBob: Hi.\n{turn}\n\nAda: So?\n{turn}\n\nBob: Yes.\n{turn}\n"
    transcript = parse_text(text, "chat.txt")
    assert transcript.format == "plain" and [t.speaker for t in transcript.turns] == ["Ada", "Bob", "Ada", "Bob"]


def test_two_voices_saying_the_same_words_in_turn_are_both_kept():
    vtt = ("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ada>Yes.\n\n00:02.000 --> 00:03.000\n<v Bob>Yes.\n\n"
           "00:03.000 --> 00:04.000\n<v Bob>Yes.\n")
    assert [(t.speaker, len(t.paragraphs)) for t in parse_vtt(vtt, "x.vtt").turns] == [("Ada", 1), ("Bob", 1)]
