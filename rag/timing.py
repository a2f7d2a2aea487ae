"""Give every paragraph a time, and every turn a chapter.

Transcripts carry sparse inline markers (one every few minutes), and transcribers' notes carry a
few more ("[unintelligible 01:00:20.10]"). Between two markers the time of a word is interpolated
linearly by word count; before the first and after the last it is extrapolated at a speaking
rate fitted to the episode. A marker that contradicts the others (earlier than the one before
it, or closer to it than its words can be said) is a typo and is dropped; a note's time is used
only where it fits between the markers around it.

Sponsor breaks are cut from transcripts, so the clock jumps across each one: the conversation
stops at the break marker and resumes at the next conversation chapter (when chapters are
known) or, failing that, at an estimate that weighs a typical break's length against
back-filling from the next marker. Talk that ends at a break ends at its marker.

Only a paragraph with a marker at its first word is timed exactly (``estimated=False``).
"""

from __future__ import annotations

import bisect
import math
import statistics

from .types import Chapter, Paragraph, Transcript, Turn, replace

# 2: markers no one could speak to are typos; notes' times; a break's return weighs a typical break
# 3: notes' times fit the speaking rate; breaks' lengths are log-normal (a long one is believed)
# 4: a minute or more of talk is never faster than SUSTAINED_WORDS_PER_S; a rate from little timed
#    talk leans on the catalog's
TIMING_VERSION = 4
# The median episode's rate over the catalog (1,843 episodes; quartiles 2.74, 3.12); used when a
# file has < 2 usable times.
DEFAULT_WORDS_PER_S = 2.9
RATE_BOUNDS = (1.0, 5.0)       # anything outside is a typo in a marker, not a speaking rate
RATE_SLACK_S = 5.0             # seconds of leeway before a fast stretch counts as a typo
# A minute or more of talk runs slower than a burst: over the catalog's 27,708 stretches of >= 60 s
# between markers, p99.9 is 3.96 words/s and the only two above 4.4 are typos (js-party-296
# [1:04:00], 1,205 words "in" 238 s after 413 in 263 s; the-changelog-613 [28:09]).
SUSTAINED_S = 60.0
SUSTAINED_WORDS_PER_S = 4.5
# What the catalog's median rate is worth, in seconds of an episode's own timed talk. Over the
# catalog, stretches of 150-300 s between markers stray 0.17 words/s from their episode's rate and
# episodes 0.27 from the catalog's, so a 225 s stretch weighs 225 x 0.17^2 / 0.27^2 = 90 s of it.
# Without it, a rate fitted on one 84 s stretch (3.4 words/s) put the-changelog-368's break at
# [47:37] four minutes long.
PRIOR_RATE_S = 90.0
# From a break's marker to the talk's return, where a marker after it tells: the median over
# 1,377 catalog breaks is 70 s (quartiles 46 and 102 s; an episode's other breaks predict it no
# better). Lengths are log-normal: ln(102/70) = 0.38 and ln(70/46) = 0.42 put the quartiles
# 0.674 sigma either side of the median, so sigma = 0.59, and a 230 s break is rare, no outlier.
TYPICAL_BREAK_S = 70.0
BREAK_LOG_SPREAD = 0.59        # sigma of ln(break length)
RATE_SPREAD = 0.05             # how far talk strays from the episode's rate, as a share of its length


class Segment:
    """A stretch of speech without a break, with its anchors: (word position, seconds)."""

    def __init__(self, first: int):
        self.first = first                   # index of its first paragraph
        self.start_word = 0
        self.end_word = 0
        self.anchors: list[tuple[int, float]] = []
        self.notes: list[tuple[int, float]] = []     # times in transcribers' notes
        self.break_s: float | None = None    # time of the break that opened it


def fit_speaking_rate(anchor_runs: list[list[tuple[int, float]]]) -> float:
    """Words per second over consecutive anchors (total words / total seconds), with the catalog's
    rate counted as ``PRIOR_RATE_S`` more seconds of talk, clamped."""
    words = seconds = 0.0
    for anchors in anchor_runs:
        for (w0, t0), (w1, t1) in zip(anchors, anchors[1:]):
            if t1 > t0 and w1 > w0 and RATE_BOUNDS[0] <= (w1 - w0) / (t1 - t0) <= RATE_BOUNDS[1]:
                words += w1 - w0
                seconds += t1 - t0
    if seconds <= 0:
        return DEFAULT_WORDS_PER_S
    rate = (words + DEFAULT_WORDS_PER_S * PRIOR_RATE_S) / (seconds + PRIOR_RATE_S)
    return min(max(rate, RATE_BOUNDS[0]), RATE_BOUNDS[1])


def plausible(a: tuple[int, float], b: tuple[int, float]) -> bool:
    """Can ``b`` follow ``a``: later in time, and its words spoken no faster than anyone talks
    (a few seconds of slack: markers are rounded, and a short span can be quick)."""
    (wa, ta), (wb, tb) = a, b
    return wa < wb and ta < tb and tb - ta >= least_time(wb - wa)


def least_time(words: int) -> float:
    """The fewest seconds anyone could speak ``words`` in: a burst at ``RATE_BOUNDS[1]`` (less
    the slack), and past a minute no faster than ``SUSTAINED_WORDS_PER_S`` (its slack makes the
    two meet at a minute, so the bound grows smoothly with the words)."""
    burst = words / RATE_BOUNDS[1] - RATE_SLACK_S
    slack = SUSTAINED_S - (SUSTAINED_S * SUSTAINED_WORDS_PER_S / RATE_BOUNDS[1] - RATE_SLACK_S)
    return max(burst, words / SUSTAINED_WORDS_PER_S - slack)


def consistent(anchors: list[tuple[int, float]],
               origin: tuple[int, float] | None = None) -> list[tuple[int, float]]:
    """The longest run of anchors that could all be right: each one ``plausible`` after the one
    before it, and none earlier than ``origin`` allows (where the stretch starts, when given).

    Hand-typed markers have typos (a wrong hour, a swapped digit: 412 words "spoken" in 23 s);
    dropping the fewest anchors that contradict the rest keeps one bad marker from discarding, or
    bending the times of, the good ones around it. Between runs of the same length, the one whose
    pace is the most even wins: of js-party-296's [1:04:00] and [1:07:58] one must go, and
    without [1:04:00] the talk runs at 3.2 words/s, without [1:07:58] at 1.6 then 4.4.
    """
    points = sorted(anchors)
    if origin is not None:             # an anchor may sit on the origin itself (a first [00:00])
        w0, t0 = origin
        points = [(w, t) for w, t in points
                  if w >= w0 and t >= t0 and t - t0 >= least_time(w - w0)]
    if len(points) < 2:
        return points
    paces = sorted((b[0] - a[0]) / (b[1] - a[1]) for a, b in zip(points, points[1:]) if plausible(a, b))
    typical = paces[len(paces) // 2] if paces else DEFAULT_WORDS_PER_S

    def uneven(a: tuple[int, float], b: tuple[int, float]) -> float:
        return (b[1] - a[1]) * math.log((b[0] - a[0]) / (b[1] - a[1]) / typical) ** 2

    best = [(1, 0.0)] * len(points)    # (length, -unevenness) of the best run ending at i (O(n^2))
    prev = [-1] * len(points)
    for i, point in enumerate(points):
        for j in range(i):
            if plausible(points[j], point):
                run = (best[j][0] + 1, best[j][1] - uneven(points[j], point))
                if run > best[i]:
                    best[i], prev[i] = run, j
    i = max(range(len(points)), key=best.__getitem__)
    chain = []
    while i >= 0:
        chain.append(points[i])
        i = prev[i]
    return chain[::-1]


def admit_notes(anchors: list[tuple[int, float]], notes: list[tuple[int, float]],
                origin: tuple[int, float], end: tuple[int, float] | None) -> list[tuple[int, float]]:
    """``anchors`` with each note's time that fits between the anchors around it (``plausible``
    after the one before, before the one after; ``origin`` and ``end`` bound the stretch).

    A note's clock is sometimes another take's (minutes off, in a handful of episodes), so a note
    never overrides a marker: it only fills the gap between two."""
    merged = list(anchors)
    for note in sorted(notes):
        i = bisect.bisect_left(merged, note)
        before = merged[i - 1] if i else None
        after = merged[i] if i < len(merged) else end
        if before is None:
            w0, t0 = origin
            fits_before = note[0] >= w0 and note[1] >= t0 and \
                note[1] - t0 >= least_time(note[0] - w0)
        else:
            fits_before = plausible(before, note)
        if fits_before and (after is None or plausible(note, after) or after == note):
            merged.insert(i, note)
    return merged


def time_in_segment(anchors: list[tuple[int, float]], word: int, rate: float, floor: float) -> float:
    """Interpolate between the anchors around ``word``; extrapolate at ``rate`` outside them."""
    if not anchors:
        return floor
    words = [w for w, _ in anchors]
    i = bisect.bisect_right(words, word)
    if i == 0:
        w, t = anchors[0]
        return max(t - (w - word) / rate, floor)
    if i == len(anchors):
        w, t = anchors[-1]
        return t + (word - w) / rate
    (w0, t0), (w1, t1) = anchors[i - 1], anchors[i]
    return t0 + (t1 - t0) * (word - w0) / (w1 - w0)


def resume_time(break_s: float | None, chapters: tuple[Chapter, ...]) -> float | None:
    """When the conversation restarts after a break: the first non-sponsor chapter after it."""
    if break_s is None or not chapters:
        return None
    after = [c for c in chapters if c.start_s > break_s]
    if not after:
        return None
    # A sponsor chapter right after the break holds the ads; the talk resumes after it.
    if after[0].sponsor:
        talk = [c for c in after if not c.sponsor]
        return talk[0].start_s if talk else None
    # No sponsor chapter listed: the break marker itself is the best guess.
    return None


def resume_estimate(break_s: float, first: tuple[int, float], start_word: int, rate: float) -> float:
    """When the talk came back after a break: the most probable break length given two things,
    how long breaks run (log-normal around ``TYPICAL_BREAK_S``) and what the first marker after
    it implies (its time less its words at the episode's rate, off by ``RATE_SPREAD`` of them).
    Near the marker the second wins; half an hour of talk later, the first, unless the marker
    says the ads ran far longer than any rate error explains.

    Never before the break, and never so late that the words before the marker can't fit."""
    talk = (first[0] - start_word) / rate
    implied = first[1] - talk - break_s              # the break's length the marker implies
    spread = max(RATE_SPREAD * talk, 1.0)
    longest = first[1] - least_time(first[0] - start_word) - break_s
    if longest <= 1.0:
        return break_s + max(longest, 0.0)
    mu = math.log(TYPICAL_BREAK_S)

    def log_posterior(x: float) -> float:          # x = ln(length); the density's 1/L is -x
        return -(x - mu) ** 2 / (2 * BREAK_LOG_SPREAD ** 2) - x \
            - (math.exp(x) - implied) ** 2 / (2 * spread ** 2)
    steps = int(math.log(longest) / 0.005)         # lengths 1 s .. longest, 0.5% apart
    best = max((i * 0.005 for i in range(steps + 1)), key=log_posterior)
    return break_s + math.exp(best)


def build_segments(paragraphs: list[Paragraph], chapters: tuple[Chapter, ...]) -> list[Segment]:
    segments: list[Segment] = []
    word = 0
    for index, para in enumerate(paragraphs):
        if index == 0 or para.break_before:
            if segments:
                segments[-1].end_word = word
            seg = Segment(index)
            seg.start_word = word
            seg.break_s = para.break_s if para.break_before else None
            segments.append(seg)
        for m in para.markers:
            (segments[-1].notes if m.note else segments[-1].anchors).append(
                (word + m.word_offset, m.seconds))
        word += para.words
    if segments:
        segments[-1].end_word = word
    return segments


def assign_times(transcript: Transcript, chapters: tuple[Chapter, ...] | None = None) -> Transcript:
    """Return ``transcript`` with start_s, end_s and estimated set on every paragraph."""
    paragraphs = [p for t in transcript.turns for p in t.paragraphs]
    if paragraphs and all(p.start_s is not None and p.end_s is not None and not p.estimated
                          for p in paragraphs):
        return transcript                    # subtitles arrive fully timed
    chapters = transcript.chapters if chapters is None else tuple(chapters)
    segments = build_segments(paragraphs, chapters)
    rate = fit_speaking_rate([consistent(s.anchors + s.notes) for s in segments])

    floor = 0.0
    seg_times: list[tuple[Segment, list[tuple[int, float]], float]] = []
    for n, seg in enumerate(segments):
        start_word = seg.start_word
        # Nothing said after a break (or the episode's start) can be timed before it.
        origin = (start_word, max(floor, seg.break_s or 0.0))
        anchors = consistent(seg.anchors, origin)
        nxt = segments[n + 1] if n + 1 < len(segments) else None
        if seg.notes:
            end = (seg.end_word, nxt.break_s) if nxt and nxt.break_s is not None else None
            anchors = admit_notes(anchors, seg.notes, origin, end)
        if n == 0 and (not anchors or anchors[0][0] > start_word):
            anchors.insert(0, (start_word, 0.0))        # episodes start at 0:00
        elif seg.break_s is not None:
            resume = resume_time(seg.break_s, chapters)
            first_real = anchors[0][1] if anchors else float("inf")
            if resume is None and anchors and anchors[0][0] > start_word:
                resume = resume_estimate(seg.break_s, anchors[0], start_word, rate)
            if resume is not None and floor <= resume < first_real and \
                    (not anchors or anchors[0][0] > start_word):
                anchors.insert(0, (start_word, resume))
        # The break that closes this segment says when its last word ended.
        if nxt and nxt.break_s is not None and anchors and nxt.break_s > anchors[-1][1] \
                and seg.end_word > anchors[-1][0]:
            anchors.append((seg.end_word, nxt.break_s))
        seg_floor = max(floor, seg.break_s or 0.0) if seg.break_s is not None else floor
        if not anchors and nxt and nxt.break_s is not None and nxt.break_s > seg_floor:
            # Between two pauses with no marker: the talk ends where the next ads begin, and
            # starts after the first ads (or earlier, if its words need the time).
            end = (seg.end_word, nxt.break_s)
            start = resume_estimate(seg_floor, end, start_word, rate) if seg.break_s is not None \
                else max(seg_floor, nxt.break_s - (seg.end_word - start_word) / rate)
            anchors = [(start_word, start), end]
        if not anchors:
            # Nothing says when the talk resumed: after the ads of a typical break.
            anchors = [(start_word, seg_floor + (TYPICAL_BREAK_S if seg.break_s is not None else 0.0))]
        seg_times.append((seg, anchors, seg_floor))
        floor = max(floor, time_in_segment(anchors, seg.end_word, rate, seg_floor))

    return _apply(transcript, seg_times, rate)


def _apply(transcript: Transcript, seg_times, rate: float) -> Transcript:
    starts = [seg.first for seg, _, _ in seg_times]
    turns: list[Turn] = []
    index = word = 0
    last = 0.0
    for turn in transcript.turns:
        new_paras = []
        for para in turn.paragraphs:
            seg, anchors, floor = seg_times[bisect.bisect_right(starts, index) - 1]
            start = max(time_in_segment(anchors, word, rate, floor), last)
            end = max(time_in_segment(anchors, word + para.words, rate, floor), start)
            # Exact only when the marker at the first word was kept as an anchor (not a typo).
            at_start = next((m.seconds for m in para.markers if m.word_offset == 0), None)
            exact = at_start is not None and (word, at_start) in anchors
            if exact:
                start, end = at_start, max(end, at_start)
            new_paras.append(replace(para, start_s=round(start, 2), end_s=round(end, 2),
                                     estimated=not exact))
            last = end
            index += 1
            word += para.words
        turns.append(replace(turn, paragraphs=tuple(new_paras)))
    return replace(transcript, turns=tuple(turns))


def estimate_error(estimated: list[float], actual: list[float]) -> dict:
    """Absolute-error summary: count, mean, median, p90 (seconds)."""
    errors = sorted(abs(e - a) for e, a in zip(estimated, actual))
    if not errors:
        return {"count": 0, "mean": 0.0, "median": 0.0, "p90": 0.0}
    p90 = errors[min(len(errors) - 1, int(round(0.9 * (len(errors) - 1))))]
    return {"count": len(errors), "mean": statistics.fmean(errors),
            "median": statistics.median(errors), "p90": p90}


# --- chapters --------------------------------------------------------------------------------

# A turn that starts this close before a chapter's marker opens that chapter: the published
# chapter times are rounded and a few seconds late (#260: the question at [30:39] opens "Other
# players in the AI arms race", marked 30:41; the one at [35:56] opens "Future of video
# generation", marked 35:57).
CHAPTER_LEAD_S = 3.0


def chapter_for(start: float, after_break: bool, chapters: tuple[Chapter, ...], lead: float = 0.0) -> int:
    """Index of the chapter a paragraph starting at ``start`` belongs to (never a sponsor one);
    ``lead``: how many seconds early it may start and still belong to the next one."""
    starts = [c.start_s for c in chapters]
    i = max(bisect.bisect_right(starts, start + lead) - 1, 0)
    if not chapters[i].sponsor:
        return i
    forward = [j for j in range(i + 1, len(chapters)) if not chapters[j].sponsor]
    backward = [j for j in range(i - 1, -1, -1) if not chapters[j].sponsor]
    if after_break and forward or not backward:
        return forward[0] if forward else i
    return backward[0]


def assign_chapters(transcript: Transcript) -> Transcript:
    """Set Turn.chapter from paragraph start times; split turns that cross a chapter start."""
    chapters = tuple(sorted(transcript.chapters, key=lambda c: c.start_s))
    if not chapters:
        return transcript
    turns: list[Turn] = []
    current = 0
    after_break = False
    for turn in transcript.turns:
        groups: list[tuple[int, list[Paragraph]]] = []
        for n, para in enumerate(turn.paragraphs):
            if para.break_before:
                after_break = True
            start = para.start_s or 0.0
            i = chapter_for(start, after_break, chapters, lead=CHAPTER_LEAD_S if n == 0 else 0.0)
            # A paragraph past the sponsor chapter is no longer "just after the break".
            if not chapters[i].sponsor and i > 0 and start >= chapters[i].start_s:
                after_break = False
            current = max(current, i)        # chapters never go backwards
            if groups and groups[-1][0] == current:
                groups[-1][1].append(para)
            else:
                groups.append((current, [para]))
        for i, paras in groups:
            turns.append(replace(turn, paragraphs=tuple(paras), chapter=chapters[i].title))
    return replace(transcript, turns=tuple(turns))
