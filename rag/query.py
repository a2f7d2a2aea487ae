"""Understanding the question itself: scope ("around the 18-minute mark", "in the part about
funding", "what did Chris ask") and follow-ups ("And why did he leave it?").

Everything here is deterministic and fast; the chat model, when configured, can do the follow-up
condensation better (see api.py), and these rules are the offline fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .timecode import format_time, parse_time

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .types import Answer, Chapter, Exchange, Question

STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with about from into over after before as is
are was were be been being do does did doing have has had having i me my we our you your he him his
she her it its they them their this that these those there here what which who whom whose when where
why how all any some no not only own same than too very can will just should would could may might
must also really like kind sort thing things get got gonna wanna yeah um uh oh well okay ok lot lots
s t don didn doesn isn aren wasn weren let us say said says tell told talk talked talking think mean
part chapter around mark minute minutes episode interview podcast show guest host conversation
discuss discussed discussing discussion topic topics
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


# What a question that is not about the episode is told (no passage is searched for it).
NOT_A_QUESTION = ("That doesn't look like a question about the episode. Ask about something said in "
                  "it, e.g. \u201cWhat does the guest work on?\u201d")
OTHER_LANGUAGE = ("The episode, its transcript and the model that searches it are in English: please "
                  "ask in English.")


def past_the_end(asked_s: float, end_s: float, episodes: int = 1) -> str:
    """What a question that names a time after the last words is told ("an hour in", of a
    41-minute episode): where the talk ends, not a quote from its start."""
    ends = "The episode ends" if episodes == 1 else f"All {episodes} episodes searched end"
    return (f"{ends} at about {format_time(end_s)}, so nothing is said at {format_time(asked_s)}. "
            "Ask about a time before the end.")


_INTERROGATIVE = frozenset("what who whom whose why how when where which tell explain describe summarize "
                           "summarise list name give is are was were do does did can could would should "
                           "will has have".split())
_SMALL_TALK = frozenset("hi hello hey thanks thank cheers bye goodbye please yes no sure ok okay hmm".split())
# Words that are common in French, Spanish, German, Italian or Portuguese questions and are not
# English words (so "die" or "was" are not among them).
_FOREIGN = frozenset("""
qu'est-ce est-ce qu'est quoi pourquoi comment quel quelle quels quelles les des une est sont avec dans
pour sur qui que c'est qué cómo cuál cuáles por los las una del porque dónde quién quiénes cuándo sobre
para con es wie warum wer der das und ist ein eine nicht über mit für sind welche welcher wann wo
che cosa perché come della sono gli quale quali dove chi não você são uma quem onde quando qual
""".split())


def not_a_question(text: str, standalone: str | None = None) -> str | None:
    """What to tell an input that is no question about the episode ("the", "-", "and so", an emoji,
    a greeting) or is asked in another language; None for a question (however terse: "guest launch
    date" is one). ``standalone``: a follow-up's searched form, which counts where the input goes on
    from the last answer ("And so?"); "thanks!" or a question in French after a turn is judged on
    its own words, not on the last question's."""
    if standalone and _GOES_ON.search(without_filler(text)):
        text = standalone
    lowered = text.lower()
    letters = [c for c in lowered if c.isalpha()]
    if not letters:
        return NOT_A_QUESTION
    if sum(c.isascii() or c in "àâäçéèêëîïôöùûüÿñáíóúãõœß" for c in letters) < len(letters) / 2:
        return OTHER_LANGUAGE            # another script: Cyrillic, Greek, CJK, Arabic...
    tokens = re.findall(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*", lowered)
    foreign = sum(t.replace("\u2019", "'") in _FOREIGN for t in tokens)
    english = sum(t in STOPWORDS or t in _INTERROGATIVE for t in tokens)
    accented = any(not c.isascii() for c in letters)
    if foreign >= 2 and foreign > english or foreign and accented and not english:
        return OTHER_LANGUAGE
    content = [t for t in tokens if t not in STOPWORDS and t not in _SMALL_TALK and len(t) > 1]
    if not content and not any(t in _INTERROGATIVE for t in tokens):
        return NOT_A_QUESTION
    return None


def stem(word: str) -> str:
    """A crude suffix stripper: enough for 'funding'~'funded'~'fund', cheap and dependency-free.

    The Snowball (Porter 2) stemmer was tried in its place and measured no better on the dev split
    (hit@5 0.862 vs 0.879, budget@1200 0.931 vs 0.914: a difference of one item either way).
    """
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                word += "y"
            break
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased content words, as written (no stopwords, no single letters)."""
    words = [w.split("'")[0] for w in _WORD.findall(text.lower())]
    return [w for w in words if w not in STOPWORDS and len(w) > 1]


# How text becomes the words BM25 indexes (``index_words``): an index built under other rules is
# rebuilt (``config.ChunkSettings.to_json``). 2: numbered names are words too.
WORDS_VERSION = 2

# A numbered name: "Gen-2", "GPT-3.5", "covid-19", or capitalised with a space, "Llama 2", "Vue 3".
# Its word and number are one word too ("gen2"), or "Gen-1" and "Gen-4" would read as "gen", the
# same as "Gen-2". Not a count of something ("Minute 25", "Version 2", "Top 10").
_NUMBERED = re.compile(r"\b([A-Za-z]{2,})(-| )(\d{1,2})(?![\d:])")
_COUNTED = frozenset("hour hours second seconds min mins sec secs day days week weeks month months year years "
                     "number version step page level season round phase top".split())


def numbered_names(text: str) -> list[str]:
    """The numbered names a text uses, each as one word: "Is Gen-2 better than Llama 2?" ->
    ["gen2", "llama2"]. Only what BM25 indexes and searches holds them: a question's coverage
    counts "Gen-2" once, as "gen"."""
    if not any(c.isdigit() for c in text):
        return []
    return [m.group(1).lower() + m.group(3) for m in _NUMBERED.finditer(text)
            if (m.group(2) == "-" or m.group(1)[0].isupper()) and m.group(1).lower() not in STOPWORDS
            and m.group(1).lower() not in _COUNTED]


def index_words(text: str) -> list[str]:
    """What BM25 indexes and searches for: the stemmed content words, then the numbered names."""
    return keywords(text) + numbered_names(text)


# A name as a question writes it: capitalised words in a run ("Stable Diffusion", "Fly.io",
# "Gen-1"), not a sentence's first word nor a small word ("I", "Is"); a possessive ends the run
# ("OpenAI's Sora": two).
_CAPITALISED = re.compile(r"(?<![\w.'\u2019-])[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
# Capitalised without naming a thing the speakers would say: peoples, languages, directions.
_NOT_NAMES = frozenset("""
american americans european europeans asian african english french german spanish italian portuguese
dutch polish norwegian swedish danish finnish russian chinese japanese korean indian latin greek
british canadian australian mexican brazilian north south east west northeast northwest southeast
southwest western eastern northern southern
""".split())


def names(text: str) -> list[str]:
    """The names a question uses, as written: "What does he think of OpenAI's Sora?" -> ["OpenAI",
    "Sora"]. Not acronyms of up to four letters ("AWS", "LLMs": speakers spell them out), nor
    words for peoples and languages ("French", "Southeast Asian"). None in a question Written In
    Title Case (of four words or more), where a capital tells nothing; its first word and acronyms
    do not count toward that ("How are AI startups like Hugging Face using Docker?" names two)."""
    words = re.findall(r"[^\W\d_]+", text)
    counted = [w for w in words[1:] if not re.fullmatch(r"[A-Z]{2,4}s?", w)]
    if len(words) >= 4 and sum(w[0].isupper() for w in counted) > len(counted) / 2:
        return []   # three words are too few to tell: "What about Sora?" names Sora
    runs: list[list[str]] = []
    end = -1
    for match in _CAPITALISED.finditer(text):
        word, before = match.group(0), text[:match.start()].rstrip()
        if word.lower() in STOPWORDS or word.lower() in _INTERROGATIVE:
            end = -1
            continue
        if not before or before[-1] in ".?!:;\"\u201c(":   # a sentence's first word
            end = -1
            continue
        if match.start() == end + 1 and text[end] == " ":
            runs[-1].append(word)
        else:
            runs.append([word])
        end = match.end()
    found = []
    for run in runs:
        name = " ".join(run)
        if all(w.lower() in _NOT_NAMES for w in run) or re.fullmatch(r"[A-Z]{2,4}s?", name):
            continue
        found.append(name)
    return found


def keywords(text: str) -> list[str]:
    """Lower-cased, stemmed content words."""
    return [stem(w) for w in content_words(text)]


@dataclass(frozen=True)
class Scope:
    """What the question says about where to look, beyond its topic."""

    time_s: float | None = None      # "around the 18-minute mark"
    chapter: str | None = None       # a chapter title the question names
    speaker: str | None = None       # "what did Chris ask"
    position: str | None = None      # "start" / "end" of the episode


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_NUMBER_WORDS.update(_TENS)
_UNITS = "one two three four five six seven eight nine"


def spelled_digits(text: str) -> str:
    """Number words up to ninety-nine as digits: "twenty-five minutes in" -> "25 minutes in"
    (spoken questions spell small numbers out)."""
    def tens(m):
        return str(_TENS[m[1].lower()] + (_NUMBER_WORDS[m[2].lower()] if m[2] else 0))
    text = re.sub(r"\b(%s)(?:[\s-]+(%s))?\b" % ("|".join(_TENS), _UNITS.replace(" ", "|")), tens, text, flags=re.I)
    return re.sub(r"\b(%s)\b" % "|".join(_NUMBER_WORDS), lambda m: str(_NUMBER_WORDS[m[1].lower()]), text,
                  flags=re.I)


# The ways a question names a point in the episode (on its text with numbers as digits), each with
# how to read it in seconds. A number of minutes alone is a length as often as a time ("it renders
# in 5 minutes", "they spent 20 minutes on it"), so it is a time only with a word that places it:
# "at/around/about/... N minutes", "N minutes in/into", "the N-minute mark".
_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}(?::\d{2})?)\b")
_MIN = r"(?:minutes?|mins?)\b"
_AN_HOUR = r"(?:an?|1)[\s-]+hours?"
_PLACED = r"(?:(?:at|around|about|near|by|roughly|approximately|past|after|until|till)\s+(?:the\s+)?)"
_INTO = r"(?:\s+(?:in|into)\b|[\s-]+(?:mark|point)\b)"
_NOT_LENGTH = r"(?![\s-]*(?:long|later|ago|earlier|each|per|or\b|of\b))"   # "an hour-long talk", "5 minutes later"
# ... nor after a verb of length: "does a render take about 5 minutes", "they spent an hour".
_LENGTH_BEFORE = re.compile(r"\b(?:takes?|took|taking|lasts?|lasted|spen[dt]s?|spending|for|within|under|over|only|"
                            r"just|every|each|waited|wait)\s+(?:about|around|roughly|approximately|nearly|almost|"
                            r"over|under|just|only|the\s+)?\s*$", re.I)
_SPOKEN_TIMES = (
    (re.compile(rf"\b(?:{_AN_HOUR}|(\d)[\s-]*hours?)(?:,?\s+and)?\s+(\d{{1,2}})[\s-]*{_MIN}", re.I),
     lambda m: int(m[1] or 1) * 3600 + int(m[2]) * 60),                   # an hour and ten minutes in
    (re.compile(r"\b(\d)h\s*(\d{1,2})(?:m|min)?\b", re.I),
     lambda m: int(m[1]) * 3600 + int(m[2]) * 60),                        # 1h05
    (re.compile(rf"\b{_AN_HOUR}\s+and\s+a\s+half\b", re.I), lambda m: 5400.0),
    (re.compile(r"\bminute\s+(\d{1,3})\b", re.I), lambda m: int(m[1]) * 60),          # minute 32
    (re.compile(rf"\b(\d{{1,3}})(?:st|nd|rd|th)\s+{_MIN}", re.I), lambda m: int(m[1]) * 60),  # the 30th minute
    (re.compile(rf"\b{_PLACED}?(\d{{1,3}}(?:\.\d+)?)[\s-]*{_MIN}{_INTO}", re.I),     # 25 minutes in, the 25-minute mark
     lambda m: float(m[1]) * 60),
    (re.compile(rf"\b{_PLACED}(\d{{1,3}}(?:\.\d+)?)[\s-]*{_MIN}{_NOT_LENGTH}", re.I),
     lambda m: float(m[1]) * 60),                        # around 25 minutes
    (re.compile(rf"\b(?:half(?:\s+an?)?|an?\s+half)[\s-]*hours?{_INTO}|\b{_PLACED}(?:half(?:\s+an?)?|an?\s+half)"
                rf"[\s-]*hours?\b{_NOT_LENGTH}", re.I), lambda m: 1800.0),              # half an hour in
    (re.compile(rf"\b(?:{_AN_HOUR}|(\d)[\s-]*hours?){_INTO}|\b{_PLACED}(?:{_AN_HOUR}|(\d)[\s-]*hours?)\b{_NOT_LENGTH}",
                re.I),
     lambda m: int(m[1] or m[2] or 1) * 3600.0),                          # an hour in, around the one hour mark
)
# "in the first ten minutes", "the last few minutes": the start or the end, not a minute.
_OPENING_MINUTES = re.compile(r"\b(?:first|opening)\s+(?:\d+\s+|few\s+|couple(?:\s+of)?\s+)?" + _MIN, re.I)
_CLOSING_MINUTES = re.compile(r"\b(?:last|final|closing)\s+(?:\d+\s+|few\s+|couple(?:\s+of)?\s+)?" + _MIN, re.I)


def time_asked(question: str) -> float | None:
    """The point in the episode a question names, in seconds: "at 12:30", "around minute 32", "about
    25 minutes in", "the 20-minute mark", "an hour and four minutes in", "half an hour in"; None for
    none, and for a length ("did it take 5 minutes?") or a stretch ("in the last ten minutes",
    which ``position_asked`` reads)."""
    m = _CLOCK.search(question)
    if m:
        try:
            return parse_time(m.group(1))
        except ValueError:
            pass
    text = spelled_digits(question)
    if _OPENING_MINUTES.search(text) or _CLOSING_MINUTES.search(text):
        return None
    for pattern, seconds in _SPOKEN_TIMES:
        for m in pattern.finditer(text):
            if not _LENGTH_BEFORE.search(text[:m.start()]):
                return float(seconds(m))
    return None


def position_asked(question: str) -> str | None:
    """"start" or "end" when the question places itself at either end of the episode."""
    text = spelled_digits(question)
    if re.search(r"\b(?:at|near|towards?|by) the (?:very )?end\b|\bwrap(?:ping)? up\b|\bclosing\b", text, re.I) \
            or _CLOSING_MINUTES.search(text):
        return "end"
    if re.search(r"\b(?:at|near) the (?:very )?(?:start|beginning)\b|\bopening\b|\bintro\b", text, re.I) \
            or _OPENING_MINUTES.search(text):
        return "start"
    return None


_SPEAKER_VERBS = r"(?:ask|asked|asks|say|said|says|wonder|wondered|mention|mentioned|want|wanted|bring|brought|raise|raised|question|questioned|suggest|suggested|think|thinks|thought|open|opened|introduce|introduced|describe|described|compare|compared)"


# "Who is the guest?", "Who's Jerod's guest this week?", "Who are the two guests on this one?",
# "Who's on the show?": asked where a guest is introduced, not wherever the guest speaks.
_WHO_IS_ON = re.compile(r"\bwho(?:['\u2019]s|s| is| are| was| were)\s+(?:(?:the|this|this week['\u2019]s|today['\u2019]s|our|[a-z]+['\u2019]s)\s+)?"
                        r"(?:(?:main|special|returning|two|three|other|new|featured|first)\s+)*(?:[\w-]+\s+)?guests?\b"
                        r"(?!['\u2019]s|-|\s+hosts?\b)|"
                        r"\bwho(?:['\u2019]s|s| is| are| was| were)\s+on\s+(?:the\s+show|this\s+(?:episode|one|show|week))\b|"
                        r"^\W*(?:the\s+)?guests?\s+on\s+this\b", re.I)


# "Who is Cameron Seay?", "What does Anastasis do?", "What's Arfon's role at his employer?", "Where
# does Divya work?": who someone is, asked in so many words, and nothing more.
_WHO_SOMEONE_IS = re.compile(
    r"^\W*(?:(?:so|and|ok(?:ay)?)[\s,]+)*(?:"
    r"what\s+does\s+(?P<does>.+?)\s+do(?:\s+for\s+(?:a\s+living|work)|\s+(?:now|these\s+days|today))?"
    r"|what(?:['\u2019]s|s|\s+is|\s+was)\s+(?P<role>.+?)['\u2019]s?\s+(?:current\s+|day\s+)?"
    r"(?:role|job|title|position|occupation)(?:\s+(?:at|with)\s+.+?)?"
    r"|who(?:['\u2019]s|s|\s+is|\s+was)\s+(?P<who>.+?)"
    r"|where\s+does\s+(?P<works>.+?)\s+work(?:\s+now)?)\W*$", re.I)
_A_GUEST = frozenset({"the guest", "our guest", "this guest", "your guest", "the first guest", "the second guest"})


def guest_names(guests: Iterable[str], hosts: Iterable[str] = ()) -> frozenset[str]:
    """What a question may call a guest by, lower-cased: full, first or last name (of three letters
    or more), unless a host goes by it too."""
    def called(names):
        return {w.lower() for name in names for w in (name, *name.split()) if len(w) >= 3}
    return frozenset(called(guests) - called(hosts))


def who_is_asked(question: str, guests: frozenset[str]) -> str | None:
    """The guest a question asks who he is or what he does, as named ("What does Anastasis do?" ->
    "Anastasis", "What's the guest's role?" -> "the guest"); None for anyone else, or anything more
    ("What does Anastasis do when a model fails?"). ``guests`` as ``guest_names`` gives them."""
    m = _WHO_SOMEONE_IS.search(question)
    who = next((g for g in m.groups() if g), "").strip() if m else ""
    return who if who.lower() in _A_GUEST or who.lower() in guests else None


def searched_as(question: Question, guests: frozenset[str]) -> str:
    """What a question is searched as: its standalone form, and "Who is Anastasis?" for "What does
    Anastasis do?" asked of a guest (``who_is_asked``), as that finds where the host introduces him."""
    who = None if question.follows_up else who_is_asked(question.text, guests)
    return f"Who is {who}?" if who else question.standalone


def asks_who_is_on(question: str, guests: frozenset[str] = frozenset()) -> bool:
    """"Who is the guest?", and "What does Anastasis do?" of a guest (``guests``, as
    ``guest_names`` gives them): answered where the guest is introduced (the episode's opening)."""
    return bool(_WHO_IS_ON.search(question)) or who_is_asked(question, guests) is not None


# "What's this episode about?", "What's the topic of this week's show?", "...and what's the
# subject?": the host says so at the start ("Today we're talking about reflection in Go").
_ABOUT_THE_EPISODE = re.compile(
    r"\bwhat(?:['\u2019]s|s| is| was)\s+(?:this|the|today['\u2019]s|this week['\u2019]s)\s+(?:[\w-]+\s+){0,2}(?:episode|show)\s+about\b|"
    r"\b(?:topic|subject)\s+of\s+(?:this|today['\u2019]s|this week['\u2019]s|the)\s+(?:[\w-]+\s+)?(?:episode|show)\b|"
    r"\bwhat(?:['\u2019]s|s| is| was)\s+the\s+(?:main\s+)?(?:topic|subject)\b(?!\s+of\s+(?!this\b|today|the\s+(?:episode|show)))",
    re.I)


def asks_about_the_episode(question: str, guests: frozenset[str] = frozenset()) -> bool:
    """"Who is the guest?", "What's this episode about?": asked of the episode's opening, where the
    host says who is on and what about."""
    return asks_who_is_on(question, guests) or bool(_ABOUT_THE_EPISODE.search(question))


# "Summarize the episode", "tl;dr?", "What are the main topics?": asked of the whole episode, which
# no quote answers. The extractive answer says so and lists the chapters (``outline``).
_SUMMARY = re.compile(r"\b(?:summar(?:y|ies|ize|ise|izing|ising)|tl;?\s?dr|recap|overview|outline|gist|"
                      r"(?:main|key|big) (?:topics?|points?|takeaways?|themes?|ideas?))\b", re.I)
_SUMMARY_WORDS = frozenset(stem(w) for w in (
    "summary summaries summarize summarise summarizing summarising tl dr recap overview outline gist main "
    "key big topic topics point points takeaway takeaways theme themes idea ideas episode show interview "
    "podcast conversation discussion talk give brief quick short whole entire please cover covered"
    ).split())


def asks_for_a_summary(question: str) -> bool:
    """"Summarize the episode", "What are the main topics?"; not "Summarize what he said about
    Gen-2" (a topic: answered like any question), nor "What's the main idea of it?" (of what the
    last answer was about)."""
    of_the_episode = re.sub(r"\bthis (?:episode|show|interview|podcast|conversation|one)\b", " ", question, flags=re.I)
    return bool(_SUMMARY.search(question)) and not set(keywords(of_the_episode)) - _SUMMARY_WORDS \
        and not _PRONOUN.search(of_the_episode)


def outline(chapters: Sequence[Chapter]) -> str:
    """What a request for a summary is told by the extractive answer: it quotes, and where to look."""
    told = "I quote the episode rather than summarize it."
    parts = [c for c in chapters if not c.sponsor]
    if not parts:
        return told + " Ask about a topic, a speaker or a moment (\u201cWhat did they discuss 20 minutes in?\u201d)."
    listed = "; ".join(f"[{format_time(c.start_s)}] {c.title}" for c in parts)
    return f"{told} Its chapters: {listed}. Ask about any of them."


def parse_scope(question: str, chapters: list[str], speakers: dict[str, str], asked: str | None = None,
                guests: frozenset[str] = frozenset()) -> Scope:
    """``speakers`` maps a lower-case alias ("chris", "the host", "anastasis") to a speaker name;
    ``guests``: the guests' names, as ``guest_names`` gives them.
    "Who is the guest?" and "What's this episode about?" look at the start, in anyone's words: the
    host says so. ``asked``: a follow-up's own words, which alone say that ("What does his company
    do?" after "Who is the guest?" is searched with both, and asks about the company)."""
    time_s = time_asked(question)
    opening = asks_about_the_episode(question if asked is None else asked, guests)
    return Scope(time_s=time_s, chapter=match_chapter(question, chapters),
                 speaker=None if opening else match_speaker(question, speakers),
                 position=position_asked(question) or ("start" if opening and time_s is None else None))


_SPEAKER_VERB_STEMS = frozenset(stem(w) for w in re.findall(r"[a-z]+", _SPEAKER_VERBS))
_POSITION_WORDS = frozenset(stem(w) for w in "end start beginning begin opening intro closing wrap "
                            "wrapping very near toward towards".split())


# Saying that something was said, not what: "What came up near the end?", "Did they mention Rust?",
# "What did Natalie bring up?" ("come up with" is inventing, and stays). "Discuss", "talk" and "say"
# are stop words already.
_DISCUSSING = re.compile(r"\b(?:(?:came|come|comes|coming)\s+up\b(?!\s+with)|(?:brought|bring|brings|bringing)"
                         r"\s+up\b|(?:touched|touch|touches|touching)\s+(?:on|upon)\b|mention(?:s|ed|ing)?\b)", re.I)


def topic_words(question: str, scope: Scope) -> list[str]:
    """The question's content words once its scope and its verbs of discussing are taken out:
    "What do they talk about at the end?" has none, so only the scope can say where to look."""
    question = _DISCUSSING.sub(" ", question)
    if scope.position:  # "in the first ten minutes": where, not what
        question = _CLOSING_MINUTES.sub(" ", _OPENING_MINUTES.sub(" ", spelled_digits(question)))
    words = keywords(question)
    if scope.speaker:  # "what did Chris ask about X": the name and the verb say who, not what
        who = set(keywords(scope.speaker)) | _SPEAKER_VERB_STEMS
        words = [w for w in words if w not in who]
    if scope.position:
        words = [w for w in words if w not in _POSITION_WORDS]
    if scope.time_s is not None:
        words = [w for w in words if not re.fullmatch(r"\d+(?:st|nd|rd|th|h|m)?", w) and w not in _NUMBER_WORDS
                 and w not in ("half", "hour", "min")]
    return words


def only_scope(question: str, scope: Scope) -> bool:
    """The question says where to look (a time, an end of the episode, a chapter, a speaker) and
    nothing of what: "What did they discuss near the end?", "What did Chris say?"."""
    named = scope.time_s is not None or scope.chapter or scope.speaker or scope.position
    return bool(named) and not topic_words(question, scope)


def search_words(question: str, scope: Scope) -> list[str]:
    """What BM25 searches for: the topic words, then the numbered names ("Gen-2": gen, gen2)."""
    return topic_words(question, scope) + numbered_names(question)


def match_chapter(question: str, chapters: list[str]) -> str | None:
    """A chapter the question refers to by name ("in the part about funding...")."""
    q = question.lower()
    if not re.search(r"\b(?:part|section|chapter|segment|discussion|bit|portion|when (?:they|he|you) "
                     r"(?:talk|discuss)|while discussing|talking about)\b", q):
        return None
    qwords = set(keywords(question))
    best, best_score = None, 0.0
    for title in chapters:
        twords = set(keywords(title))
        if not twords:
            continue
        score = len(qwords & twords) / len(twords)
        if score > best_score:
            best, best_score = title, score
    return best if best_score >= 0.34 else None


def match_speaker(question: str, speakers: dict[str, str]) -> str | None:
    """The speaker a question is about when it asks what someone said or asked."""
    q = question.lower()
    # Only aliases the question contains are tried: an index of many episodes knows hundreds of
    # names, and four patterns each, compiled afresh past re's cache, cost seconds per question.
    named = [(a, n) for a, n in speakers.items() if a in q and re.search(rf"\b{re.escape(a)}\b", q)]
    for alias, name in sorted(named, key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{re.escape(alias)}(?:'s)?\b\s+(?:\w+\s+){{0,2}}{_SPEAKER_VERBS}\b", q) or \
           re.search(rf"\b{_SPEAKER_VERBS}\b.{{0,40}}\bby\s+{re.escape(alias)}\b", q) or \
           re.search(rf"\bdid\s+{re.escape(alias)}\b", q) or \
           re.search(rf"\b{re.escape(alias)}'s\s+(?:question|comment|remark|point|view|take|opinion)", q):
            return name
    return None


def named_speaker(question: str, speakers: dict[str, str]) -> str | None:
    """The one speaker a question names, whatever its verb ("Does Natalie go along with that?",
    "And what's Ryan doing about it?"); None when it names none, or several. Names as ``names``
    reads them: capitalised, not a sentence's first word ("Will that last?" names no Will)."""
    found = {speakers[n.lower()] for n in names(question) if n.lower() in speakers}
    return found.pop() if len(found) == 1 else None


def without_speaker(question: str, speaker: str, aliases: dict[str, str]) -> str:
    """The question with the scoped speaker's names and role taken out ("What did Chris ask about
    rivals?" -> "What did ask about rivals?"): they say who, and embedded they pull toward every
    sentence that mentions Chris (or "my co-host") instead of the ones Chris said."""
    names = sorted((a for a, name in aliases.items() if name == speaker), key=len, reverse=True)
    if not names:
        return question
    pattern = re.compile(r"\b(?:%s)(?:'s)?\b" % "|".join(map(re.escape, names)), re.I)
    return re.sub(r"\s+", " ", pattern.sub(" ", question)).strip()


def speaker_aliases(hosts: list[str], guests: list[str]) -> dict[str, str]:
    """"chris", "chris benson", "the host" -> "Chris Benson"; same for guests."""
    aliases: dict[str, str] = {}
    for names, role in ((hosts, "host"), (guests, "guest")):
        for name in names:
            low = name.lower()
            aliases[low] = name
            aliases[low.split()[0]] = name
            if len(low.split()) > 1:
                aliases[low.split()[-1]] = name
            if len(names) == 1:
                aliases[f"the {role}"] = name
                aliases[role] = name
    return aliases


# --- follow-ups ------------------------------------------------------------------------------

# "ok and why?", "Oh, what about Gen-1?", "hmm, but who pays for it": what a chat reply opens with
# says nothing of whether it follows up; the words after it do. A "so" after it is one more filler:
# "ok so ..." opens new questions as often as follow-ups (in the listeners' corpus, four of five).
_FILLER = re.compile(r"^\s*(?:(?:ok(?:ay)?|oh|ah|hmm+|huh|yeah|yes|right|cool|great|nice|interesting|wow|"
                     r"i see|got it|sure|alright|all right|thanks|thank you)\b[\s,.!:;-]*)+(?:so\b[\s,]*)?(?=\w)",
                     re.I)


def without_filler(question: str) -> str:
    """The question without the interjections a chat reply opens with ("Okay, and why?" -> "and why?",
    "ok so who pays?" -> "who pays?")."""
    return _FILLER.sub("", question, count=1)


_FOLLOWUP_START = re.compile(r"^\s*(?:and|but|so|also|then|what about|how about|really|"
                             r"what else|anything else|tell me more|go on|and then)\b", re.I)
# "Why" opens follow-ups ("Why is that?", "Why does Jerod think that one did so well?") and new
# questions alike ("Why did Matt start a podcast just for people inside Grafana?"): it leans on
# the last turn only when it is short or points back with a pronoun.
_WHY_START = re.compile(r"^\s*(?:why|how come)\b", re.I)
# Spoken questions open with "so", new ones often with "why": one that names this many things of its
# own stands alone ("so what's the ad jerod keeps getting that makes zero sense for where he lives").
# Of the listeners' train and validation questions read as follow-ups that open so, 385 of 441 asked
# alone have six keywords or more, and 3 of 78 later turns of conversations; opening why, 331 of 420
# and 1 of 61 (docs/experiments.md).
OWN_TOPIC_WORDS = 6
_OWN_START = re.compile(r"^\s*(?:so|why|how come)\b", re.I)
# A follow-up that starts so goes on from the last answer, whatever it names ("And what's the
# equivalent for video?", "Anything else?"); "what about X" may change the subject.
_GOES_ON = re.compile(r"^\s*(?:and|but|so|also|then|why|how come|really|what else|anything else|"
                      r"tell me more|go on)\b", re.I)
_PRONOUN = re.compile(r"\b(?:he|him|his|she|her|they|them|their|it|its|that|this|those|these|there|"
                      r"then|one|ones)\b", re.I)

# "What did they say about testing?", "How does he see the future of film?": the pronoun is whoever
# speaks in the episode and the question names its topic, so it stands alone; "What did he say about that?"
# points back (its topic is a pronoun). None of the 670 second turns of the listeners' train and
# validation conversations has this shape; 30 of their 8,192 other questions do.
_SAYS_ABOUT = re.compile(r"\b(?:he|she|they)\s+(?:\w+\s+)?(?:(?:say|says|said|think|thinks|thought|talk|talks|"
                         r"talked|feel|feels|felt|discuss|discussed|believe|believes)\s+(?:about|of|on)|"
                         r"(?:see|sees|view|views|mention|mentions|mentioned|recommend|recommends|recommended|"
                         r"suggest|suggests|suggested)(?:\s+(?:about|of|on))?)\s+(?P<topic>[^?.!]+)", re.I)

# "Can you say more?", "Could you elaborate?", "More on that, please": asks to go on, names no topic.
_GO_ON = re.compile(r"\b(?:say|tell (?:me|us)|talk|explain|hear|know|go into|dig into)\b.{0,20}\bmore\b"
                    r"(?=\s*(?:[?.!,]|$|about (?:that|this|it)\b|on (?:that|this|it)\b|detail|please))|"
                    r"\bmore (?:about|on) (?:that|this|it)\b|\belaborate\b|\bexpand on\b|"
                    r"^\s*(?:please\s+)?(?:keep going|carry on|continue|go on)\b", re.I)


# "What have guests said about X?", "What has been said about Y?", "across episodes": a question
# answered in several places, which an answer across a catalog quotes from each.
_SPANS = re.compile(r"\b(?:what|how) (?:have|has|do|did) (?:[\w-]+ ){0,4}?(?:guests|hosts|people|speakers|"
                    r"maintainers|developers|engineers|founders|folks|everyone|anyone)\b(?: and \w+)? "
                    r"(?:said|say|talked|think|thought|discussed|described)\b|"
                    r"\bwhat (?:has|have) been (?:said|discussed)\b|\bacross (?:the )?(?:episodes|shows|catalog)\b|"
                    r"\b(?:which|what) episodes\b", re.I)


def spans_episodes(question: str) -> bool:
    """"What have guests said about pgvector?": asked of many episodes at once, not of one."""
    return bool(_SPANS.search(question))


def asks_to_go_on(question: str) -> bool:
    """"Can you say more?": a request to continue the last answer (read on the question as asked)."""
    return bool(_GO_ON.search(without_filler(question)))


# "What else about Gen-2?", "Any other examples?": something the last answer did not say.
_SOMETHING_ELSE = re.compile(r"\b(?:else|other|others|another|besides)\b", re.I)


def asks_for_something_new(question: str) -> bool:
    """"Can you say more?", "What else about Gen-2?": the last answer's sentences are no answer."""
    return asks_to_go_on(question) or bool(_SOMETHING_ELSE.search(question))


def is_follow_up(question: str) -> bool:
    """Does ``question`` lean on the last turn: three words or fewer ("When?") unless they name things
    of their own ("Who founded Runway?": ``_stands_alone``), an opening that goes
    on ("and", "so", "what about"), a request to go on, a "why" that is short or points back with a
    pronoun, or a pronoun among at most three keywords ("What did he mean by that?") unless it is only
    the one who speaks of a topic the question names (``_SAYS_ABOUT``). A "so" or "why" question
    with ``OWN_TOPIC_WORDS`` keywords or more stands alone. An opening "ok", "oh" or "hmm" is
    read past (``without_filler``)."""
    question = without_filler(question)
    words = question.split()
    content = keywords(question)
    if len(words) <= 3:
        return not _stands_alone(question, content)
    if _OWN_START.search(question) and len(content) >= OWN_TOPIC_WORDS and not _GO_ON.search(question):
        return False
    if _FOLLOWUP_START.search(question) or _GO_ON.search(question):
        return True
    said = _SAYS_ABOUT.search(question)
    if said and keywords(said.group("topic")) and not _PRONOUN.search(said.group("topic")):
        pronoun = bool(_PRONOUN.search(question[:said.start()]))   # the speaker's pronoun points nowhere
    else:
        pronoun = bool(_PRONOUN.search(question))
    if _WHY_START.search(question):
        return pronoun or len(content) <= 3
    return pronoun and len(content) <= 3


# "Does Brian agree?", "Same for Go?": a short question that names things of its own but points back.
_POINTS_BACK = re.compile(r"\b(?:agree|agrees|disagree|disagrees|same|too|either|instead|else|other|another|"
                          r"again|also|more)\b", re.I)


def _stands_alone(question: str, content: list[str]) -> bool:
    """A question of three words or fewer that names two things or more of its own, with no pronoun,
    no opening that goes on and nothing that points back, is asked for itself: "Who founded Runway?",
    "elena employer", "rust mascot animal". Read as follow-ups after an unrelated turn, the listeners'
    train questions of this kind were found in the top 5 passages 0.76 of the time, against 0.97
    alone (docs/experiments.md)."""
    return (len(content) >= 2 and not _PRONOUN.search(question) and not _FOLLOWUP_START.search(question)
            and not _WHY_START.search(question) and not _GO_ON.search(question)
            and not _POINTS_BACK.search(question))


def condense(question: str, previous: "Exchange | None") -> str:
    """Make a follow-up standalone by carrying the previous question's topic along.

    Deterministic rule: when the new question leans on the conversation (short, starts with "and"/
    "why", or is mostly pronouns), the previous question rides along (``carried``), so retrieval
    sees both. Where the last answer was (its cited times) travels in ``Question.previous``, not here."""
    question = question.strip()
    if previous is None or not is_follow_up(question):
        return question
    return f"{question} (following up on: {carried(previous)})"


def carried(previous: "Exchange") -> str:
    """What a follow-up carries of the last turn: its question as asked, not all the turns that
    question carried in turn (a chat of follow-ups searched "... (following up on: ... (following
    up on: ...))" with every topic since its start); where that question names no topic of its own
    ("When?", "Why is that?"), the question it followed up on too, which says what it was about.
    (Also carrying that one after a question that points back at a thing, "How did it work?", was
    tried on the three-turn conversations and left out: docs/evaluation.md.)"""
    asked = previous.question.strip()
    if previous.before and not keywords(asked):
        return f"{asked} (following up on: {previous.before})"
    return asked


def leaned_on(question: str, before: "Exchange | None") -> str:
    """The question ``question`` followed up on, as asked: ``before``'s when it was a follow-up
    (``is_follow_up``), else "" (it stood alone)."""
    return before.question.strip() if before is not None and is_follow_up(question.strip()) else ""


# "What about on Apple?", "And Gen-1?": a follow-up that asks nothing in words of its own.
_BORROWED = re.compile(r"^\W*(?:(?:and|but|so)\s+)?(?:(?:what|how)\s+about\b)?")
_WH = re.compile(r"\b(?:what|who|whom|whose|when|where|why|how|which)\b", re.I)


def asked_for(question: "Question") -> str:
    """The words that say what a question asks for (an amount, a date, a name...): its own, so "What
    is Gen-2?" after "When was it founded?" wants no date; a follow-up with no question word of its
    own borrows the last question's: "What about on Apple?" after "How fast did it appear on
    Spotify?" asks how fast."""
    if question.follows_up and not _WH.search(_BORROWED.sub("", without_filler(question.text).lower(), count=1)):
        return question.standalone
    return question.text


_AND_WHAT_ABOUT = re.compile(r"^\s*(?:and|but|so)\s+(?=(?:what|how)\s+about\b)", re.I)


def new_topic(question: "Question", scope: Scope | None = None) -> bool:
    """A follow-up that names a topic of its own, holds no pronoun and does not go on from the last
    answer with "and", "so"... ("What about Gen-1?" after Gen-2, not "And what's the equivalent for
    video?"): it keeps the last question's context, but not the last answer's place in the episode."""
    text = _AND_WHAT_ABOUT.sub("", without_filler(question.text), count=1)   # "And what about Gen-1?" too
    return (question.follows_up and bool(topic_words(text, scope or Scope()))
            and not _PRONOUN.search(text) and not _GOES_ON.search(text) and not _GO_ON.search(text))


def leans_on_last_answer(question: "Question", scope: Scope | None = None) -> bool:
    """A follow-up about what the last answer said ("Why?", "What sets them apart?", "Can you say
    more?"): it is answered near that answer."""
    return question.follows_up and not new_topic(question, scope)


def own_words(question: "Question", scope: Scope) -> str:
    """What a question's coverage is judged on: a follow-up's own words when it names a new topic
    ("What about music?" asks about music, whatever the earlier question covered), else what is
    searched ("What sets them apart?" is about whoever "them" was)."""
    return question.text if new_topic(question, scope) else question.standalone


_CITED = re.compile(r"\[(?:([\w.-]+) )?(\d{1,2}:\d{2}(?::\d{2})?)\]")  # [13:36], [practical-ai-260 13:36]


def cited_times(text: str) -> list[float]:
    """The ``[MM:SS]`` times an answer cites, in seconds, in order of appearance, without repeats."""
    return list(_cited(text)[0])


def _cited(text: str) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The times an answer cites and the episodes its labels name (``[practical-ai-260 13:36]``),
    each in order of appearance, without repeats, in one pass over its text."""
    times: dict[float, None] = {}
    episodes: dict[str, None] = {}
    for m in _CITED.finditer(text or ""):
        try:
            times[parse_time(m.group(2))] = None
        except ValueError:
            continue
        if m.group(1):
            episodes[m.group(1)] = None
    return tuple(times), tuple(episodes)


# An answer that says the interview does not cover the question cites nothing, whatever times it
# lists after that (the extractive refusal shows the nearest passages with theirs).
_REFUSED = re.compile(r"^\W*the interview does(?:n['\u2019]t| not) cover\b", re.I)


def last_turn(history: "Sequence[tuple[str, str]]") -> "Exchange | None":
    """The last (question, answer) of a conversation that a follow-up can lean on: "thanks!" or
    "ok" after an answer is no turn of its own (``not_a_question``), so "And why?" after it asks
    about the answer before."""
    asked = [(q, a) for q, a in history if not_a_question(q) is None]
    if not asked:
        return None
    last = exchange(*asked[-1])
    return replace(last, before=leaned_on(last.question, exchange(*asked[-2]) if len(asked) > 1 else None))


def chat_turn(answers: "Sequence[Answer]") -> "Exchange | None":
    """``last_turn`` for a chat that kept its answers (``ChatSession``): what they cited says where
    they were, without reading their text."""
    from .types import Exchange

    asked = [a for a in answers if not_a_question(a.question) is None]   # not "thanks!"
    if not asked:
        return None
    before = Exchange.of(asked[-2]) if len(asked) > 1 else None
    return Exchange.of(asked[-1], before=leaned_on(asked[-1].question, before))


def exchange(question: str, answer: str) -> "Exchange":
    """An earlier turn known only by its text (a client's ``messages``, an API caller's ``history``):
    the times its answer cited, and in an index of several episodes the episodes its labels name
    (``[practical-ai-260 13:36]``), are read from it, once, where it comes in. A refusal cited none,
    as ``Exchange.of`` says of the same answer in a ``ChatSession``."""
    from .types import Exchange

    if _REFUSED.match(answer or ""):
        return Exchange(question=question, answer=answer)
    times, episodes = _cited(answer)
    return Exchange(question=question, answer=answer, times=times, episodes=episodes)
