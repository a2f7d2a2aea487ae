"""Understanding the question itself: scope ("around the 18-minute mark", "in the part about
funding", "what did Chris ask") and follow-ups ("And why did he leave it?").

Everything here is deterministic and fast; the chat model, when configured, can do the follow-up
condensation better (see api.py), and these rules are the offline fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .timecode import parse_time

STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with about from into over after before as is
are was were be been being do does did doing have has had having i me my we our you your he him his
she her it its they them their this that these those there here what which who whom whose when where
why how all any some no not only own same than too very can will just should would could may might
must also really like kind sort thing things get got gonna wanna yeah um uh oh well okay ok lot lots
s t don didn doesn isn aren wasn weren let us say said says tell told talk talked talking think mean
part chapter around mark minute minutes episode interview podcast show guest host conversation
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def stem(word: str) -> str:
    """A crude suffix stripper: enough for 'funding'~'funded'~'fund', cheap and dependency-free."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                word += "y"
            break
    return word


def keywords(text: str) -> list[str]:
    """Lower-cased, stemmed content words."""
    words = [w.split("'")[0] for w in _WORD.findall(text.lower())]
    return [stem(w) for w in words if w not in STOPWORDS and len(w) > 1]


@dataclass(frozen=True)
class Scope:
    """What the question says about where to look, beyond its topic."""

    time_s: float | None = None      # "around the 18-minute mark"
    chapter: str | None = None       # a chapter title the question names
    speaker: str | None = None       # "what did Chris ask"
    position: str | None = None      # "start" / "end" of the episode


_MINUTE_MARK = re.compile(
    r"\b(?:around|about|near|at|by|roughly|approximately)?\s*(?:the\s+)?"
    r"(\d{1,3}(?:\.\d+)?)[\s-]*(?:minute|min)s?(?:[\s-]*(?:mark|point|in))?", re.I)
_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}(?::\d{2})?)\b")
_HALF = re.compile(r"\b(?:half(?:\s+an?)?|an?\s+half)[\s-]*hour\b", re.I)
_SPEAKER_VERBS = r"(?:ask|asked|asks|say|said|says|wonder|wondered|mention|mentioned|want|wanted|bring|brought|raise|raised|question|questioned|suggest|suggested|think|thinks|thought|open|opened|introduce|introduced|describe|described|compare|compared)"


def parse_scope(question: str, chapters: list[str], speakers: dict[str, str]) -> Scope:
    """``speakers`` maps a lower-case alias ("chris", "the host", "anastasis") to a speaker name."""
    time_s = None
    m = _CLOCK.search(question)
    if m:
        try:
            time_s = parse_time(m.group(1))
        except ValueError:
            time_s = None
    if time_s is None:
        m = _MINUTE_MARK.search(question)
        if m and re.search(r"minute|min\b", m.group(0), re.I):
            time_s = float(m.group(1)) * 60
    if time_s is None and _HALF.search(question):
        time_s = 1800.0
    position = None
    if re.search(r"\b(?:at|near|towards?|by) the (?:very )?end\b|\bwrap(?:ping)? up\b|\bclosing\b", question, re.I):
        position = "end"
    elif re.search(r"\b(?:at|near) the (?:very )?(?:start|beginning)\b|\bopening\b|\bintro\b", question, re.I):
        position = "start"
    return Scope(time_s=time_s, chapter=match_chapter(question, chapters),
                 speaker=match_speaker(question, speakers), position=position)


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
    for alias, name in sorted(speakers.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{re.escape(alias)}(?:'s)?\b\s+(?:\w+\s+){{0,2}}{_SPEAKER_VERBS}\b", q) or \
           re.search(rf"\b{_SPEAKER_VERBS}\b.{{0,40}}\bby\s+{re.escape(alias)}\b", q) or \
           re.search(rf"\bdid\s+{re.escape(alias)}\b", q) or \
           re.search(rf"\b{re.escape(alias)}'s\s+(?:question|comment|remark|point|view|take|opinion)", q):
            return name
    return None


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

_FOLLOWUP_START = re.compile(r"^\s*(?:and|but|so|also|then|what about|how about|why|how come|really|"
                             r"what else|anything else|tell me more|go on|and then)\b", re.I)
_PRONOUN = re.compile(r"\b(?:he|him|his|she|her|they|them|their|it|its|that|this|those|these|there|"
                      r"then|one|ones)\b", re.I)


def is_follow_up(question: str) -> bool:
    words = question.split()
    if len(words) <= 3:
        return True
    if _FOLLOWUP_START.search(question):
        return True
    content = keywords(question)
    return bool(_PRONOUN.search(question)) and len(content) <= 3


def condense(question: str, history: list[str]) -> str:
    """Make a follow-up standalone by carrying the previous question's topic along.

    Deterministic rule: when the new question leans on the conversation (short, starts with "and"/
    "why", or is mostly pronouns), append the previous standalone question so retrieval sees both.
    """
    question = question.strip()
    if not history or not is_follow_up(question):
        return question
    previous = history[-1].strip()
    return f"{question} (following up on: {previous})"
