"""Timing: exact marker times, interpolation, breaks, chapters, and the shipped episode."""

from __future__ import annotations

import pytest

from rag.parsers import load_default_episode, parse_markdown
from rag.timing import (DEFAULT_WORDS_PER_S, assign_chapters, assign_times, consistent, estimate_error,
                        fit_speaking_rate)
from rag.types import Chapter, Marker, Paragraph, Transcript, Turn, replace


def words(n: int) -> str:
    return " ".join(["word"] * n)


def paragraphs(transcript):
    return [p for t in transcript.turns for p in t.paragraphs]


def make(*paras: Paragraph, chapters=()) -> Transcript:
    from rag.types import Episode
    return Transcript(Episode("t"), chapters=tuple(chapters),
                      turns=tuple(Turn(f"S{i % 2}", (p,)) for i, p in enumerate(paras)))


@pytest.fixture(scope="module")
def episode():
    return load_default_episode()


def test_fit_speaking_rate():
    # An hour of timed talk speaks for itself; a minute and a half leans on the catalog's rate
    # (the-changelog-368: one 84 s stretch at 3.4 words/s made its last break 4 minutes long).
    assert fit_speaking_rate([[(0, 0.0), (3600, 1800.0), (7200, 3600.0)]]) == pytest.approx(2.0, abs=0.03)
    short = fit_speaking_rate([[(2151, 838.0), (2438, 922.0)]])
    assert DEFAULT_WORDS_PER_S < short < 3.2
    assert fit_speaking_rate([[(0, 10.0)]]) == DEFAULT_WORDS_PER_S
    # A typo'd marker implying 50 words/s is ignored rather than trusted.
    assert fit_speaking_rate([[(0, 0.0), (500, 10.0), (800, 110.0)]]) == \
        fit_speaking_rate([[(500, 10.0), (800, 110.0)]])


def test_a_marker_that_swings_the_pace_is_the_typo_not_its_neighbour():
    """js-party-296: 413 words in the 263 s to [1:04:00], then 1,205 "in" the 238 s to [1:07:58]
    (5.1 words/s for four minutes: no one talks that fast for long; the catalog's fastest minute
    is 4.4). Dropping [1:04:00] leaves 3.2 words/s throughout; dropping [1:07:58], 1.6 then 4.4."""
    anchors = [(0, 3577.0), (413, 3840.0), (1618, 4078.0), (2074, 4217.0), (2424, 4329.0)]
    assert consistent(anchors) == [a for a in anchors if a != (413, 3840.0)]
    # A quick exchange may still run at 5 words/s for a few seconds.
    assert consistent([(0, 0.0), (50, 10.0), (100, 30.0)]) == [(0, 0.0), (50, 10.0), (100, 30.0)]


def test_interpolates_between_markers_and_extrapolates_after():
    tr = assign_times(make(
        Paragraph(words(100), markers=(Marker(0, 10.0),)),
        Paragraph(words(100)),
        Paragraph(words(100), markers=(Marker(50, 110.0),)),
        Paragraph(words(30)),
    ))
    p = paragraphs(tr)
    assert (p[0].start_s, p[0].estimated) == (10.0, False)
    assert p[1].start_s == pytest.approx(50.0) and p[1].estimated
    assert p[2].time_at(50) == pytest.approx(110.0)          # mid-paragraph marker is honoured
    rate = fit_speaking_rate([[(0, 10.0), (250, 110.0)]])    # fitted from the two markers
    assert p[3].start_s == pytest.approx(110.0 + 50 / rate, abs=0.01)           # times are kept to 0.01 s
    assert p[3].end_s == pytest.approx(p[3].start_s + 30 / rate, abs=0.01)
    assert all(a.end_s == b.start_s for a, b in zip(p, p[1:]))


def test_first_paragraph_starts_at_zero_without_a_marker():
    tr = assign_times(make(Paragraph(words(29)), Paragraph(words(29))))
    p = paragraphs(tr)
    assert p[0].start_s == 0.0 and p[1].start_s == pytest.approx(10.0)   # default 2.9 words/s


def test_break_resumes_at_next_conversation_chapter():
    chapters = [Chapter("Intro", 0.0, 1), Chapter("Sponsor: X", 105.0, 2, sponsor=True),
                Chapter("Main", 180.0, 3), Chapter("End", 400.0, 4)]
    tr = make(
        Paragraph(words(260), markers=(Marker(0, 0.0),)),
        Paragraph(words(10), markers=(Marker(0, 100.0),)),
        Paragraph(words(52), break_before=True, break_s=104.0),
        Paragraph(words(100), markers=(Marker(0, 220.0),)),
        chapters=chapters,
    )
    timed = assign_chapters(assign_times(tr))
    p = paragraphs(timed)
    assert p[1].end_s == pytest.approx(104.0)                 # speech stops at the break marker
    assert p[2].start_s == 180.0 and p[2].estimated           # resumes with "Main", not exact
    assert [t.chapter for t in timed.turns] == ["Intro", "Intro", "Main", "Main"]


def test_break_without_chapters_backfills_from_next_marker():
    tr = assign_times(make(
        Paragraph(words(100), markers=(Marker(0, 0.0),)),
        Paragraph(words(100), markers=(Marker(0, 40.0),)),
        Paragraph(words(50), break_before=True, break_s=80.0),
        Paragraph(words(10), markers=(Marker(0, 200.0),)),
    ))
    p = paragraphs(tr)
    rate = fit_speaking_rate([[(0, 0.0), (100, 40.0)]])
    assert p[2].start_s == pytest.approx(200.0 - 50 / rate, abs=0.5)   # 20 s of talk: trusted
    assert p[2].start_s >= 80.0


def test_far_from_the_next_marker_a_break_lasts_a_typical_break():
    # 30 minutes of talk between a break and the next marker: a 5% error in the speaking rate
    # is 90 s, so the talk's return leans on a typical break's length (70 s) instead.
    tr = assign_times(make(
        Paragraph(words(250), markers=(Marker(0, 0.0),)),
        Paragraph(words(250), markers=(Marker(0, 100.0),)),
        Paragraph(words(4500), break_before=True, break_s=200.0),
        Paragraph(words(10), markers=(Marker(0, 2200.0),)),
    ))
    p = paragraphs(tr)
    backfilled, typical = 2200.0 - 4500 / fit_speaking_rate([[(0, 0.0), (250, 100.0)]]), 200.0 + 70.0
    assert typical < p[2].start_s < backfilled
    assert p[2].start_s - typical < backfilled - p[2].start_s   # nearer the typical break


def test_a_break_far_longer_than_the_rate_can_explain_is_believed():
    # the-changelog-591: ads of ~230 s at [25:07], the next marker half an hour of talk later.
    # A 5% rate error there is 90 s; a marker implying a 600 s break is more than that, so the
    # talk resumes late (a break's length is log-normal: long ones happen), not at 70 s.
    tr = assign_times(make(
        Paragraph(words(250), markers=(Marker(0, 0.0),)),
        Paragraph(words(250), markers=(Marker(0, 100.0),)),
        Paragraph(words(4500), break_before=True, break_s=200.0),
        Paragraph(words(10), markers=(Marker(0, 2600.0),)),
    ))
    p = paragraphs(tr)
    implied = 2600.0 - 4500 / fit_speaking_rate([[(0, 0.0), (250, 100.0)]])   # a ~700 s break
    assert implied - 120 < p[2].start_s <= implied


def test_the_times_in_notes_fit_the_speaking_rate():
    # the-changelog-591 has one marker and a dozen notes' times: its rate comes from the notes
    # (3 words a second), not the default.
    tr = assign_times(make(
        Paragraph(words(300), markers=(Marker(0, 0.0, note=True),)),
        Paragraph(words(300), markers=(Marker(0, 100.0, note=True),)),
        Paragraph(words(30)),
    ))
    p = paragraphs(tr)
    rate = fit_speaking_rate([[(0, 0.0), (300, 100.0)]])       # 3 words/s, leaning on the catalog's
    assert rate == pytest.approx(3.0, abs=0.1)
    assert p[2].start_s == pytest.approx(100.0 + 300 / rate, abs=0.01)
    assert p[2].end_s == pytest.approx(p[2].start_s + 30 / rate, abs=0.01)


def test_times_never_go_backwards_with_bad_markers():
    tr = assign_times(make(
        Paragraph(words(50), markers=(Marker(0, 300.0),)),
        Paragraph(words(50), markers=(Marker(0, 100.0),)),    # typo: earlier than the first
        Paragraph(words(50), markers=(Marker(0, 340.0),)),
    ))
    starts = [p.start_s for p in paragraphs(tr)]
    assert starts == sorted(starts)


def test_a_marker_no_one_could_speak_to_is_a_typo():
    # the-changelog-613: 412 words between a break at 27:46 and a marker at [28:09] (18 words a
    # second); that marker is a typo, and trusting it put [38:19] five minutes early.
    tr = assign_times(make(
        Paragraph(words(300), markers=(Marker(0, 1366.0),)),
        Paragraph(words(412), break_before=True, break_s=1666.0),
        Paragraph(words(394), markers=(Marker(0, 1689.0),)),       # the typo ([28:09])
        Paragraph(words(687), markers=(Marker(0, 2299.0),)),       # [38:19]
        Paragraph(words(30), markers=(Marker(0, 2519.0),)),        # [41:59]
    ))
    p = paragraphs(tr)
    assert p[2].estimated                                      # not trusted as exact
    rate = 687 / 220.0
    assert p[2].start_s == pytest.approx(2299.0 - 394 / rate, abs=20.0)   # not 1689 (28:09)
    assert p[1].start_s >= 1666.0                              # nothing before the break


def test_talk_between_two_breaks_runs_up_to_the_second():
    # Ads take up the slack after a break: with no marker until the next break, the talk ends
    # where the next ads begin (changelog--friends-31: the talk resumed 5 minutes after 57:34).
    tr = assign_times(make(
        Paragraph(words(250), markers=(Marker(0, 0.0),)),
        Paragraph(words(250), markers=(Marker(0, 100.0),)),
        Paragraph(words(250), break_before=True, break_s=200.0),
        Paragraph(words(100), break_before=True, break_s=600.0),
        Paragraph(words(100), markers=(Marker(0, 700.0),)),
    ))
    p = paragraphs(tr)
    assert p[2].end_s == pytest.approx(600.0)
    rate = fit_speaking_rate([[(0, 0.0), (250, 100.0)]])
    assert p[2].start_s == pytest.approx(600.0 - 250 / rate, abs=5.0)   # not 200 (the first break)


def test_a_notes_time_fills_a_gap_but_never_overrides_a_marker():
    note = Marker(0, 150.0, note=True)
    far = Marker(0, 2000.0, note=True)                         # another take's clock
    tr = assign_times(make(
        Paragraph(words(100), markers=(Marker(0, 0.0),)),
        Paragraph(words(50)),
        Paragraph(words(50), markers=(note,)),
        Paragraph(words(100), markers=(far,)),
        Paragraph(words(100), markers=(Marker(0, 300.0),)),
    ))
    p = paragraphs(tr)
    assert p[2].start_s == 150.0 and not p[2].estimated        # the note's time is kept
    assert p[1].start_s == pytest.approx(100.0)                # interpolated up to the note
    assert 150.0 < p[3].start_s < 300.0                        # the far note is ignored
    assert p[4].start_s == 300.0


def test_turn_crossing_a_chapter_is_split():
    chapters = [Chapter("One", 0.0, 1), Chapter("Two", 30.0, 2)]
    turn = Turn("Ann", (Paragraph(words(26), markers=(Marker(0, 0.0),)),
                        Paragraph(words(26), markers=(Marker(0, 20.0),)),
                        Paragraph(words(26), markers=(Marker(0, 40.0),))))
    from rag.types import Episode
    timed = assign_chapters(assign_times(Transcript(Episode("t"), tuple(chapters), (turn,))))
    assert [(t.speaker, t.chapter, len(t.paragraphs)) for t in timed.turns] == [
        ("Ann", "One", 2), ("Ann", "Two", 1)]


def test_no_chapters_leaves_chapter_none():
    tr = assign_chapters(assign_times(parse_markdown("**A:** hi there\n\n**B:** hello")))
    assert all(t.chapter is None for t in tr.turns)


def test_estimate_error_summary():
    s = estimate_error([10, 20, 30, 40], [11, 18, 30, 50])
    assert s["count"] == 4 and s["mean"] == pytest.approx(3.25) and s["median"] == 1.5


# --- the shipped episode ---------------------------------------------------------------------

def test_every_paragraph_timed_and_monotone(episode):
    p = paragraphs(episode)
    assert all(x.start_s is not None and x.end_s is not None for x in p)
    assert all(a.start_s <= a.end_s <= b.start_s + 1e-6 for a, b in zip(p, p[1:]))
    assert p[-1].end_s < 41 * 60 + 30                         # ends near the "Outro" chapter


def test_break_at_12_16_resumes_at_13_36(episode):
    p = paragraphs(episode)
    after = [x for x in p if x.break_before]
    assert [x.break_s for x in after] == [12 * 60 + 16, 26 * 60 + 2]
    first = after[0]
    assert first.start_s == 13 * 60 + 36 and first.estimated  # no marker stands there
    assert p[p.index(first) - 1].end_s == 12 * 60 + 16
    assert after[1].start_s == 28 * 60 + 6                    # "Runway today"


def test_marker_paragraphs_are_exact(episode):
    exact = {x.start_s: x for x in paragraphs(episode) if not x.estimated}
    assert sorted(exact) == [361.0, 607.0, 1065.0, 1323.0, 1920.0, 2156.0]
    assert exact[22 * 60 + 3].text.startswith("From the very beginning")


def test_chapters_assigned_and_sponsors_empty(episode):
    used = [t.chapter for t in episode.turns]
    sponsors = {c.title for c in episode.chapters if c.sponsor}
    assert sponsors == {"Sponsor: Neo4j", "Sponsor: Changelog News"}
    assert not sponsors & set(used)
    order = [c.title for c in episode.chapters]
    assert [order.index(c) for c in used] == sorted(order.index(c) for c in used)
    assert used[0] == "Welcome to Practical AI"
    by_text = {p.text[:30]: t.chapter for t in episode.turns for p in t.paragraphs}
    assert by_text["So you arrived at art school f"] == "Becoming an entrepreneur"
    assert by_text["From the very beginning, a big"] == "Early adoption of gen AI"
    # Every turn lies inside its chapter's time span (split turns included).
    starts = {c.title: c.start_s for c in episode.chapters}
    for turn in episode.turns:
        assert turn.start_s >= starts[turn.chapter] - 60


def test_held_out_marker_estimate_is_close(episode):
    """Remove the [17:45] marker and estimate it from the others: within 30 s."""
    p = paragraphs(episode)
    target = next(x for x in p if x.markers and x.markers[0].seconds == 1065.0)
    stripped = replace(episode, turns=tuple(
        replace(t, paragraphs=tuple(replace(x, markers=()) if x is target else x
                                    for x in t.paragraphs)) for t in episode.turns))
    retimed = [x for t in assign_times(stripped).turns for x in t.paragraphs]
    estimate = retimed[p.index(target)].start_s
    assert abs(estimate - 1065.0) < 30


def test_a_turn_starting_just_before_a_chapter_marker_opens_that_chapter():
    """#260: the question at [30:39] opens "Other players in the AI arms race" (marked 30:41) and the
    one at [35:56] "Future of video generation" (35:57); a turn well before a marker does not."""
    from rag.parsers import load_default_episode

    first = {round(t.paragraphs[0].start_s): t.chapter for t in load_default_episode().turns}
    assert first[1839] == "Other players in the AI arms race"
    assert first[2156] == "Future of video generation"
    assert first[1724] == "Runway today"   # the turn before, well before 30:41


def test_a_marker_late_after_a_break_bounds_the_estimates_around_it():
    # js-party-250 (issue 26): a break at [42:10], then [48:13] 720 words later (a long break, or
    # slow talk: not a typo), [52:14] and [56:27]. With [52:14] left out, its paragraph lies
    # between the two markers kept around it, not minutes before the first (38:35).
    tr = assign_times(make(
        Paragraph(words(600), markers=(Marker(0, 2300.0),)),
        Paragraph(words(720), break_before=True, break_s=2530.0),
        Paragraph(words(792), markers=(Marker(0, 2893.0),)),       # [48:13]
        Paragraph(words(834)),                                     # [52:14], left out
        Paragraph(words(30), markers=(Marker(0, 3387.0),)),        # [56:27]
    ))
    p = paragraphs(tr)
    assert not p[2].estimated and p[2].start_s == 2893.0
    assert 2893.0 < p[3].start_s < 3387.0
    assert abs(p[3].start_s - 3134.0) < 30.0                   # [52:14] by its words
    assert 2530.0 <= p[1].start_s < 2893.0                     # the talk after the break



@pytest.fixture(scope="module")
def bench():
    """bench/timestamp_accuracy.py: the bench's own leave-out and scoring, not a copy of them."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "timestamp_accuracy", Path(__file__).resolve().parent.parent / "bench" / "timestamp_accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_bench_does_not_score_a_marker_too_soon_after_a_break(bench):
    # the-changelog-613 [28:09]: 412 words after a break that began 23 s before it. No estimate can
    # match a typo, and the one the bench scored was its worst error (489 s).
    tr = make(
        Paragraph(words(300), markers=(Marker(0, 0.0),)),
        Paragraph(words(300), markers=(Marker(0, 120.0),)),
        Paragraph(words(412), break_before=True, break_s=1446.0),
        Paragraph(words(300), markers=(Marker(0, 1469.0),)),    # typo: 412 words in 23 s
        Paragraph(words(300), markers=(Marker(0, 2000.0),)),
        Paragraph(words(10), markers=(Marker(0, 2100.0),)),
    )
    markers = bench.all_markers(tr)
    scored = bench.trustworthy(tr, markers)
    assert [m[2] for m in markers if m not in scored] == [1469.0]


@pytest.mark.parametrize("episode_id", ["js-party-250", "the-changelog-500"])
def test_both_halves_of_the_leave_out_stay_within_90_s_on_the_episodes_of_issue_26(catalog, bench, episode_id):
    """Every other marker left out, once the odd ones and once the even ones: each estimate within
    90 s of the marker (js-party-250's [52:14] was 819 s off, the-changelog-500's [58:00] 572 s)."""
    from rag.evaluation.readers import transcripts

    all_markers, estimate_held_out, trustworthy = bench.all_markers, bench.estimate_held_out, bench.trustworthy

    ((_, text),) = list(transcripts([episode_id], catalog))
    transcript = parse_markdown(text, episode_id)
    markers = all_markers(transcript)
    scored = trustworthy(transcript, markers)
    for half in (1, 0):
        held = [m for i, m in enumerate(markers) if i % 2 == half and i and m in scored]
        assert held
        for (_, _, real), estimate in zip(held, estimate_held_out(transcript, held, set(markers) - scored)):
            assert abs(estimate - real) <= 90.0, (episode_id, half, real, estimate)
