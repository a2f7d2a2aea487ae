"""The offline answerer: the transcript's own sentences, each attributed and cited with its time.

It never writes a word that is not in the transcript, apart from speaker names, times and the
fixed framing. When the best evidence is too weak it says the interview does not cover the
question and lists the nearest passages instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Sequence

import numpy as np

from ..query import (asks_about_the_episode, asks_for_something_new, asks_to_go_on, asks_who_is_on, guest_names,
                     keywords, leans_on_last_answer, numbered_names)
from ..retrieval import ACROSS_PASSAGES
from ..timecode import format_time
from ..types import Answer, Citation, Evidence, Hit, Question, Sentence
from .base import AnswerStream
from .refusal import MINILM_POLICY, RefusalPolicy, confidence

NOT_COVERED = "The interview doesn't cover that."
# In an index of several episodes, a second stretch from another episode is quoted when it scores
# within this of the best: the lowest margin reaching the most dev answers (the dev split of
# eval/catalog_questions.jsonl) that cite two gold episodes of a question across episodes, 0 -> 2 of
# 3 (0.1: 0, 0.15: 1, 0.3: 2), with single-episode answers citing another episode 1 of 11 either
# way (0.3: 2). On test: 1 of 3, and 0 of 11.
OTHER_EPISODE_MARGIN = 0.2
# A question asked of many episodes (``Question.across``) reads the top ACROSS_PASSAGES passages
# (``retrieval.py``) and quotes the best stretch of each of up to ACROSS_EPISODES episodes that
# score within ACROSS_MARGIN of the best.
ACROSS_EPISODES = 3
ACROSS_MARGIN = 0.2
# With a reranker (``reranking.py``): how many of the best stretches it reads, and how much its
# score (divided by CROSS_SCALE, about a cosine's range) counts against the first stage's.
RERANK_DEPTH = 6
RERANK_WEIGHT = 1.0
CROSS_SCALE = 20.0
# A follow-up about the last answer ("Why would that help?", "And after that?") is most often
# answered soon after it: in the listeners' train conversations the second turn's gold quote starts
# within six sentences after the first turn's in two of three. A stretch that starts up to
# FOLLOW_ON_S after a time the last answer cited scores up to FOLLOW_ON more, falling off linearly;
# chosen on the train conversations (the plateau runs from 90 to 240 s and 0.1 to 0.2). It replaces
# a bonus for the sentence right after the last quote alone. Figures: docs/experiments.md.
FOLLOW_ON = 0.1
FOLLOW_ON_S = 120.0
# The last answer's sentences are not quoted again where others answer nearly as well: a stretch
# scores SAID_AGAIN less per share of its sentences the last answer quoted (all of them: 0.12 off;
# a follow-up's best stretch leads its fifth by 0.08 in the median). One listeners' validation
# follow-up in nine is answered by a sentence the first answer had quoted; shutting them all out
# quoted the answer in 0.357 of the second turns, 0.1-0.15 off in 0.414-0.429 (0.08: 0.457, but
# one answer in 14 then repeated the last one whole). Figures: docs/experiments.md.
SAID_AGAIN = 0.12
# A question that names only where to look ("What did they discuss near the end?", "What did
# Chris say?": ``Signals.only_scope``) says nothing that tells an answer from a remark: #260's end
# was answered with the host's "Appreciate your perspective..." and "Thanks for coming on...", and
# without them with "That was fantastic guidance.". Its answer is a stretch of at least
# SUBSTANCE_WORDS words with no thanks or goodbye in it (a sentence that opens with one: THANKS).
# Any other question is left to its words: leaving thanks out of every answer changed nothing on
# listeners' validation and lost one test follow-up whose answer opens "So thank you all for
# bearing with me on this one, and I'm excited to have Chris back...".
SUBSTANCE_WORDS = 12
THANKS = re.compile(r"^(?:(?:well|and|so|okay|ok|yeah|oh|again|but)\W+)*(?:[A-Z][a-z]+\W+)?"
                    r"(?:thanks\b(?! to)|thank you\b|(?:i |we )?(?:really |truly |definitely )?appreciate"
                    r"(?: (?:it|you|your|that|having|the (?:time|opportunity|invite|invitation|chance))\b|\W*$)"
                    r"|(?:it was|it's been|this (?:was|has been)) (?:great|fun|a (?:pleasure|blast)|awesome)\b"
                    r"|(?:good|great|nice) (?:to (?:have|see|talk)|having|talking)\b|hope you (?:all )?have a"
                    r"|take care\b|bye\b|see you\b)", re.I)
# Every other answer is a stretch of at least MIN_WORDS words: "What was Joe's non-tech hot take?"
# was answered "It sounds really hot." (and a second stretch, "Like, take on React."). Chosen on
# listeners' validation (answers quoting the gold, 1,061 singles / 70 second turns: none 0.461 /
# 0.429, 6 words 0.464 / 0.429, 9 words 0.465 / 0.414, 12 words 0.469 / 0.400: longer stretches
# hold the gold more often only by quoting more), checked on train (5,574 / 375: none 0.451 /
# 0.349, 6 words 0.453 / 0.357, 8 words 0.454 / 0.360).
MIN_WORDS = 6
# A numbered name is a name of its own: asked "What about Gen-1?", the stretch that says "Gen-1"
# (once, 20:44) lost to the one that defines Gen-2 (0.347 against 0.465: the model reads the two
# alike, and the word overlap counts "gen" in both). A stretch that says a numbered name the
# question uses (``query.numbered_names``) scores this much more. Few questions name one (42 of the
# corpus's 11,031); on listeners' validation it moves one single question to quoting the answer
# (0.460 -> 0.461; 0.1 and 0.2 alike) and no second turn.
NUMBERED = 0.15
# "Who is the guest?" is answered where the guest is introduced: retrieval looks at the opening
# (``query.asks_who_is_on``), a host's lead-in may be quoted (not his question), a stretch that
# opens with a guest's name scores ``INTRODUCED`` more, and such a stretch is an answer whatever the
# refusal says. #260 answered "Thanks so much for having me." The listeners' 61 such train and
# validation questions quoted the gold 0.33 / 0.30 before; 0.43 / 0.60 at 0.05, 0.53 / 0.60 at
# 0.1, 0.57 / 0.70 at 0.2, 0.61 / 0.70 at 0.3, 0.63 / 0.70 from 0.5 on (always the first such stretch).
INTRODUCED = 0.5
# Two stretches of an answer starting this close (or in one passage) are read in the order said;
# farther apart, the best comes first (``reading_order``).
NEAR_S = 60.0


@dataclass(frozen=True)
class _Asked:
    """What a stretch is scored against: the question's stemmed words and numbered names, the
    hosts whose sentences it may not quote, whether it names only where to look, and the fewest
    words a stretch may have, and the guests' names when it asks who they are."""

    words: frozenset[str]
    numbered: frozenset[str]
    hosts: frozenset[str]
    only_scope: bool = False
    fewest: int = MIN_WORDS
    introduced: re.Pattern | None = None
    opening: bool = False            # it asks who is on or what about: a host's lead-in may answer


# The sentence selector: which stretch of the retrieved passages the answer quotes. A stretch is up
# to ``max_sentences`` consecutive sentences of one speaker; its score is a weighted sum of the
# features below (``span_features``). The default weights are the hand-tuned rule it started as
# (the mean of the best and the average sentence similarity, 0.15 per share of the question's
# words, 0.02 off per passage rank); ``rag train --readers`` fits them on listeners' questions with
# the gold quotes as labels and writes them beside the adapter (``answering.json``).
SPAN_FEATURES = ("best", "mean", "overlap", "rank", "sentences", "words", "turn_start",
                 "after_question", "position", "passage")


@dataclass(frozen=True)
class SpanSelector:
    weights: tuple[tuple[str, float], ...] = (("best", 0.5), ("mean", 0.5), ("overlap", 0.15),
                                              ("rank", -0.02))

    def score(self, features: dict[str, float]) -> float:
        return sum(w * features[name] for name, w in self.weights)

    @classmethod
    def from_json(cls, weights: dict[str, float]) -> "SpanSelector":
        unknown = set(weights) - set(SPAN_FEATURES)
        if unknown:
            raise ValueError(f"unknown selector features: {', '.join(sorted(unknown))}")
        return cls(tuple((k, float(v)) for k, v in weights.items()))

    def to_json(self) -> dict[str, float]:
        return dict(self.weights)


DEFAULT_SELECTOR = SpanSelector()


def span_features(sims: Sequence[float], overlap: float, rank: int, span: Sequence[Sentence],
                  lo: int, sentences: Sequence[Sentence], passage: float) -> dict[str, float]:
    """What the selector reads of one stretch ``sentences[lo:lo + len(span)]`` of a passage."""
    before = sentences[lo - 1] if lo else None
    return {"best": max(sims), "mean": sum(sims) / len(sims), "overlap": overlap, "rank": float(rank),
            "sentences": len(span) / 3.0, "words": min(sum(len(s.text.split()) for s in span), 150) / 50.0,
            "turn_start": float(before is None or before.speaker != span[0].speaker),
            "after_question": float(before is not None and before.speaker != span[0].speaker
                                    and before.text.rstrip().endswith("?")),
            "position": lo / max(len(sentences), 1), "passage": passage}


ANSWERING_FILE = "answering.json"   # beside an adapter: its fitted selector and refusal policy


@dataclass(frozen=True)
class Fitted:
    """What ``rag train --readers`` fits for one adapter (``answering.json`` beside it); None where
    nothing was fitted: the sentence selector, the one-episode refusal policy, the hybrid's signal
    weights (``retrieval.Weights`` fields)."""

    selector: SpanSelector | None = None
    policy: RefusalPolicy | None = None
    fusion: dict | None = None


def answering_for(adapter) -> Fitted:
    """The models fitted for this adapter, read from ``answering.json`` beside it."""
    import json
    from pathlib import Path

    if adapter is None:
        return Fitted()
    path = Path(adapter).parent / ANSWERING_FILE
    if not path.is_file():
        return Fitted()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fusion = {k: float(v) for k, v in (data.get("fusion") or {}).items()}
        if set(fusion) - {"dense", "sentence", "bm25", "sentence_bm25"}:
            raise ValueError(f"unknown fusion signals {sorted(fusion)}")
        return Fitted(selector=SpanSelector.from_json(data["selector"]) if data.get("selector") else None,
                      policy=RefusalPolicy(**data["policy"]) if data.get("policy") else None,
                      fusion=fusion or None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        from ..errors import ModelError

        raise ModelError(f"{path} is damaged ({err}); run `rag train --readers` again or remove it")


class ExtractiveAnswerer:
    name = "extractive"
    depth = 0   # it reads the question's k passages

    # An answer is a span of up to ``max_sentences`` consecutive sentences of one speaker from the
    # top ``passages``, and a second span that shares no sentence with it when it scores within
    # ``margin`` of it (see ``_pick``; 5 passages and 3 sentences tuned on dev). A second span
    # quotes the answer more often and makes answers longer. On listeners' train questions, the
    # share of answers that quote a gold quote / the answers' median words: a second within 0.03
    # of another passage only (until 2026-12-07) 0.456 / 58, within 0.06 of another passage
    # 0.482 / 68, four sentences 0.488 / 72, five 0.506 / 81, a second within 0.05 or 0.06
    # anywhere 0.492 / 69 and 0.503 / 72 (second turns 0.352 -> 0.405): the most quoted answers
    # for the words added.
    # Figures and commands: docs/experiments.md.
    #
    # ``hosts``: the hosts' names. A host's questions and the lead-ins to them echo the user's
    # question ("we have a lot of young artists listening...") without answering it, so they are
    # never quoted unless the question names a host or says "host" ("what did Chris ask...", "what
    # did the host ask..."): see ``handing_over``. What a host says that hands over nothing is
    # quoted like anyone's: on panel shows the regulars answer (a third of the listeners' gold
    # answers are spoken by a show's regular voice, all of Brain Science's).
    def __init__(self, max_sentences: int = 3, passages: int = 5, margin: float = 0.06,
                 policy: RefusalPolicy = MINILM_POLICY, hosts: Sequence[str] = (), guests: Sequence[str] = (),
                 episode_labels: bool = False, reranker=None, rerank_depth: int = RERANK_DEPTH,
                 rerank_weight: float = RERANK_WEIGHT, selector: SpanSelector = DEFAULT_SELECTOR):
        self.max_sentences = max_sentences
        self.selector = selector
        self.reranker = reranker  # reranking.Reranker: reads the question with each stretch (or None)
        self.rerank_depth = rerank_depth
        self.rerank_weight = rerank_weight
        self.episode_labels = episode_labels  # cite "[practical-ai-260 13:36]": an index of several episodes
        self.passages = passages
        self.margin = margin
        self.policy = policy
        self.hosts = frozenset(hosts)
        # A question about a host: any host's full, first or last name, or the role itself.
        words = {w for name in hosts for w in (name, *name.split())} | {"host", "hosts"}
        self._about_host = re.compile(r"\b(?:%s)\b" % "|".join(map(re.escape, sorted(words, key=len, reverse=True))),
                                      re.I)
        self.guests = tuple(guests)

    @cached_property
    def _guest_named(self) -> re.Pattern | None:
        """A guest's full, first or last name (of at least three letters), as an introduction says
        it; compiled when first asked for (a catalog's thousands of names take ~0.1 s)."""
        named = {w for name in self.guests for w in (name, *name.split()) if len(w) >= 3}
        return re.compile(r"\b(?:%s)\b" % "|".join(map(re.escape, sorted(named, key=len, reverse=True)))) \
            if named else None

    @cached_property
    def _guest_names(self) -> frozenset[str]:
        return guest_names(self.guests, self.hosts)

    def stream(self, question: Question, evidence: Evidence) -> AnswerStream:
        answer = self.answer(question, evidence)
        yield answer.text
        yield answer

    def answer(self, question: Question, evidence: Evidence) -> Answer:
        """A follow-up gets new sentences rather than the ones the last answer quoted, unless one of
        those answers it clearly better (``SAID_AGAIN``); one that asks to go on gets what comes
        right after them."""
        text, hits = question.standalone, tuple(evidence.hits)
        if not hits:
            return self._refuse(text, hits)
        said = (question.previous.answer,) if question.previous is not None else ()
        # What comes right after the last answer takes first place when the question only asks to
        # go on; what comes soon after it scores a little more for a follow-up about that answer
        # (``FOLLOW_ON``), and nothing for one on a new topic.
        go_on = bool(said) and asks_to_go_on(question.text)
        after = question.previous.times if not go_on and leans_on_last_answer(question) else ()
        if evidence.signals.absent:
            # A name no passage uses ("What do they think of Sora?"). Chosen on listeners' train
            # questions; `bench/retrievers.py`: listeners' validation refusal recall 0.356 -> 0.429
            # (false refusals 0.026 -> 0.034), #260 dev 0.531 -> 0.594 (0.010 both).
            return self._refuse(text, hits, evidence.signals.absent)
        spans, answer_prob = self._scored(text, hits, said, ACROSS_PASSAGES if question.across else self.passages,
                                          go_on=go_on, after=after,
                                          again=bool(said) and not asks_for_something_new(question.text),
                                          only_scope=evidence.signals.only_scope,
                                          own=question.text)
        # "Who is the guest?" is covered wherever a guest is introduced, however little its words match.
        introduced = bool(spans) and asks_who_is_on(question.text, self._guest_names) \
            and self._guest_named is not None and bool(self._guest_named.search(spans[0][2][0].text))
        if not introduced and confidence(evidence, self.policy, answer_prob) < self.policy.threshold:
            return self._refuse(text, hits)
        stretches = self._pick_across(spans) if question.across else self._pick(spans)
        if not stretches:
            return self._refuse(text, hits)
        if said:
            stretches += something_new(stretches, spans, said[0])
        picked = reading_order(stretches)
        citations = []
        lines: list[str] = []
        last_speaker = None
        for hit, sentence in picked:
            citation = Citation(passage_id=hit.chunk.id, start_s=sentence.start_s, chapter=hit.chunk.chapter,
                                speaker=sentence.speaker, quote=sentence.text,
                                episode=hit.chunk.episode if self.episode_labels else "",
                                estimated=sentence.estimated)
            citations.append(citation)
            cite = citation.mark + citation.label
            if sentence.speaker != last_speaker:
                lines.append(f"{sentence.speaker} {cite}: \u201c{sentence.text}\u201d")
                last_speaker = sentence.speaker
            else:
                lines[-1] += f" {cite}: \u201c{sentence.text}\u201d"
        return Answer(question=text, text="\n".join(lines), backend=self.name,
                      citations=tuple(citations), hits=hits)

    def _scored(self, question: str, hits: tuple[Hit, ...], said: Sequence[str] = (),
                passages: int | None = None, go_on: bool = False, after: Sequence[float] = (),
                again: bool = False, only_scope: bool = False, own: str | None = None):
        """Every candidate stretch of the top passages with its score, best first, and the
        reranker's probability that the best one answers (None without a reranker).

        A stretch is up to ``max_sentences`` consecutive sentences of one speaker in one passage:
        an answer reads as one stretch of the reply, not as sentences picked across the interview.
        Its first-stage score is the selector's (``SpanSelector``: a weighted sum of its sentence
        similarities, the share of the question's words it uses, its passage's rank...). With a
        reranker, the best ``rerank_depth`` of them are
        read together with the question and rescored (see ``RERANK_WEIGHT``); the rest drop out.
        """
        asked = self._asked(question, only_scope, own)
        # ``go_on``: what comes right after the last answer (``said``) comes first; ``after``: the
        # times the last answer cited, soon after which a stretch scores a little more; ``again``:
        # its sentences may be quoted again, for less (``SAID_AGAIN``); ``only_scope``: the question
        # names only where to look (``SUBSTANCE_WORDS``); ``own``: a follow-up's words as typed.
        hits = hits[: passages or self.passages]
        spans = self._spans(asked, hits, said, go_on, after)
        if again:   # a question about the last answer may be answered by a sentence it quoted
            spans += self._said_again(asked, hits, said, after, spans)
        # Nothing left (every sentence said, or none of substance): any stretch, as if asked plainly.
        spans = spans or self._spans(replace(asked, only_scope=False, fewest=0), hits)
        spans.sort(key=lambda s: -s[0])
        if self.reranker is None or not spans:
            return spans, None
        top = spans[: self.rerank_depth]
        cross = self.reranker.score(question, [" ".join(x.text for x in sentences) for _, _, sentences in top])
        scale = CROSS_SCALE
        rescored = [(first + self.rerank_weight * float(c) / scale, hit, sentences)
                    for (first, hit, sentences), c in zip(top, cross)]
        rescored.sort(key=lambda s: -s[0])
        return rescored, self.reranker.probability(float(np.max(cross)))

    def _asked(self, question: str, only_scope: bool = False, own: str | None = None) -> _Asked:
        """``own``: a follow-up's words as typed, whose numbered names are the ones it asks about
        ("What about Gen-1?" after "What is Gen-2?" is searched with both)."""
        introduced = self._guest_named if asks_who_is_on(own or question, self._guest_names) else None
        opening = asks_about_the_episode(own or question, self._guest_names)
        hosts = frozenset() if opening or self._about_host.search(question) else self.hosts
        numbered = frozenset(numbered_names(own or question))
        return _Asked(frozenset(keywords(question)), numbered, hosts, only_scope,
                      SUBSTANCE_WORDS if only_scope else MIN_WORDS, introduced, opening)

    def _said_again(self, asked: _Asked, hits: tuple[Hit, ...], said: Sequence[str], after: Sequence[float],
                    fresh: list) -> list:
        """The stretches that hold sentences the last answer quoted, each scored ``SAID_AGAIN`` less
        per share of them (the ones ``fresh`` already holds left out): "What's his objection to it?"
        is often answered by a sentence the answer about his book quoted. A follow-up that asks for
        more or for something else (``asks_for_something_new``) never gets one again."""
        seen = {(hit.chunk.id, span[0].start_s, len(span)) for _, hit, span in fresh}
        out = []
        for score, hit, span in self._spans(asked, hits, (), False, after):
            repeated = sum(any(s.text in text for text in said) for s in span)
            if repeated and (hit.chunk.id, span[0].start_s, len(span)) not in seen:
                out.append((score - SAID_AGAIN * repeated / len(span), hit, span))
        return out

    def candidates(self, question: str, hits: Sequence[Hit]) -> list[tuple[dict, Hit, list]]:
        """Every stretch of the top passages the answer could quote, with the selector's features
        (what ``rag train --readers`` fits the selector on)."""
        found = self._spans(self._asked(question), tuple(hits)[: self.passages], with_features=True)
        return [(features, hit, span) for _, hit, span, features in found]

    def _pick(self, spans):
        """The best stretch, then the next best that shares no sentence with it when it scores
        within ``margin``: where two stretches answer about equally well, both are quoted (a
        question with two parts is often answered in two places, and the answer to one is often
        the stretch right after the one that matches it best)."""
        if not spans:
            return []
        spans.sort(key=lambda s: -s[0])
        best = spans[0]
        picked = [best]
        quoted = set(best[2])
        second = next((s for s in spans[1:] if quoted.isdisjoint(s[2])), None)
        if self.episode_labels:
            # Across a catalog, "what have guests said about X" is answered in several episodes:
            # a stretch from another episode that scores nearly as well is the second one.
            other = next((s for s in spans[1:] if s[1].chunk.episode != best[1].chunk.episode), None)
            if other is not None and other[0] >= best[0] - OTHER_EPISODE_MARGIN:
                second = other
        across = self.episode_labels and second is not None and second[1].chunk.episode != best[1].chunk.episode
        if second is not None and second[0] >= best[0] - (OTHER_EPISODE_MARGIN if across else self.margin):
            picked.append(second)
        return [[(hit, sentence) for sentence in sentences] for _, hit, sentences in picked]

    def _pick_across(self, spans):
        """The best stretch of each of up to ``ACROSS_EPISODES`` episodes, the best first, while
        each scores within ``ACROSS_MARGIN`` of the best of all."""
        if not spans:
            return []
        spans.sort(key=lambda s: -s[0])
        picked = {}
        for span in spans:
            episode = span[1].chunk.episode
            if episode not in picked and span[0] >= spans[0][0] - ACROSS_MARGIN:
                picked[episode] = span
            if len(picked) == ACROSS_EPISODES:
                break
        return [[(hit, sentence) for sentence in sentences] for _, hit, sentences in picked.values()]

    def _spans(self, asked: _Asked, hits: tuple[Hit, ...], said: Sequence[str] = (), go_on: bool = False,
               after: Sequence[float] = (), with_features: bool = False):
        """(score, hit, sentences) for every span of the top passages; a sentence an earlier
        answer quoted (``said``) or a host's (they ask and introduce; they do not answer) breaks it,
        and for a question that names only where to look so do thanks (``THANKS``); a span of
        fewer than ``asked.fewest`` words is left out (``MIN_WORDS``, ``SUBSTANCE_WORDS``); one that
        says a numbered name the question uses scores ``NUMBERED`` more.
        ``go_on``: a span that goes on from a quoted sentence comes first; ``after``: a span that
        starts soon after one of these times scores up to ``FOLLOW_ON`` more (in an index of several
        episodes, only in an episode whose passages here hold a sentence the last answer quoted:
        its times say nothing of another episode's)."""
        out = []
        said_in = {hit.chunk.id: [any(s.text in text for text in said) for s in hit.chunk.sentences] for hit in hits}
        quoted_in = {hit.chunk.episode for hit in hits if any(said_in[hit.chunk.id])}
        for rank, hit in enumerate(hits):
            scores = {int(si): sim for si, sim in hit.scores.get("sentence_scores", {}).items()}
            sentences = hit.chunk.sentences
            quoted = said_in[hit.chunk.id]
            near = after if not self.episode_labels or hit.chunk.episode in quoted_in else ()
            # Saying who is on and what about, a host's question is left out but not the lead-in to it.
            asks = handing_over(sentences, asked.hosts) if not asked.opening else \
                [s.speaker in self.hosts and s.text.rstrip().endswith("?") for s in sentences]
            usable = [si in scores and not s.context and not asks[si] and not quoted[si]
                      and not (asked.only_scope and THANKS.match(s.text)) for si, s in enumerate(sentences)]
            for lo in range(len(sentences)):
                # "Yeah." or "Right." opens many replies: a span starts and ends on sentences that say something.
                if len(sentences[lo].text.split()) < 4:
                    continue
                hi = lo
                while (hi < len(sentences) and hi - lo < self.max_sentences and usable[hi]
                       and sentences[hi].speaker == sentences[lo].speaker):
                    hi += 1
                # Only the full-width spans, and the shorter ones that cannot grow (a turn's end).
                if hi == lo or (hi - lo < self.max_sentences and hi < len(sentences) and usable[hi]
                                and sentences[hi].speaker == sentences[lo].speaker):
                    continue
                while len(sentences[hi - 1].text.split()) < 4:
                    hi -= 1
                span = sentences[lo:hi]
                if sum(len(s.text.split()) for s in span) < asked.fewest:
                    continue
                sims = [scores[i] for i in range(lo, hi)]
                words = {w for s in span for w in keywords(s.text)}
                overlap = len(asked.words & words) / len(asked.words) if asked.words else 0.0
                features = span_features(sims, overlap, rank, span, lo, sentences,
                                         float(hit.scores.get("dense", 0.0)))
                score = self.selector.score(features)
                if asked.numbered and asked.numbered & {n for s in span for n in numbered_names(s.text)}:
                    score += NUMBERED
                if asked.introduced and asked.introduced.search(span[0].text):
                    score += INTRODUCED
                if go_on and lo and quoted[lo - 1] and sentences[lo - 1].speaker == span[0].speaker:
                    score += 1.0
                score += follow_on(span[0].start_s, near)
                out.append((score, hit, span) if not with_features else (score, hit, span, features))
        return out

    def _refuse(self, question: str, hits: tuple[Hit, ...], absent: Sequence[str] = ()) -> Answer:
        lines = [NOT_COVERED]
        if absent:
            named = ", ".join(absent[:-1]) + " or " + absent[-1] if len(absent) > 1 else absent[0]
            lines[0] += f" It never mentions {named}."
        if hits:
            lines.append("The nearest passages are:")
            for h in hits[:3]:
                shown = _nearest_sentence(h)
                words = shown.text.split()
                snippet = " ".join(words[:16]) + ("\u2026" if len(words) > 16 else "")
                where = f"{h.chunk.chapter} " if h.chunk.chapter else ""
                lines.append(f"- [{format_time(shown.start_s)}] {where}({shown.speaker}): {snippet}")
        return Answer(question=question, text="\n".join(lines), backend=self.name, hits=hits,
                      refused=True)


def something_new(stretches: list[list[tuple[Hit, Sentence]]], spans: list, said: str) -> list:
    """A follow-up is not answered with nothing but what the last answer quoted: "What was the sign
    supposed to tell people?" got the sentences about the sign again, word for word, in 9 of the 185
    answered second turns of the listeners' train conversations. Where every sentence picked was
    quoted before, the best stretch that says something new joins them (``spans``: best first);
    none where nothing else is left."""
    if any(sentence.text not in said for stretch in stretches for _, sentence in stretch):
        return []
    fresh = next(((hit, sentences) for _, hit, sentences in spans
                  if all(s.text not in said for s in sentences)), None)
    return [[(fresh[0], sentence) for sentence in fresh[1]]] if fresh is not None else []


def reading_order(stretches: list[list[tuple[Hit, Sentence]]]) -> list[tuple[Hit, Sentence]]:
    """The sentences of the answer's stretches (best first) in the order they are read. Stretches
    near each other (one passage, or starting within ``NEAR_S``) are read in the order they were
    said: an answer that jumps back a few seconds is confusing. Stretches far apart keep the best
    first: "Who are Runway's customers?" opened with the guest's background [01:36] before the
    film studios adopting Runway [29:24]. Across episodes, the best-matching episode's first."""
    def near(a, b) -> bool:
        (hit_a, first_a), (hit_b, first_b) = a[0], b[0]
        return hit_a.chunk.episode == hit_b.chunk.episode and (
            hit_a.chunk.id == hit_b.chunk.id or abs(first_a.start_s - first_b.start_s) <= NEAR_S)

    groups: list[list] = []
    for stretch in stretches:
        home = next((g for g in groups if near(g[0], stretch)), None)
        if home is None:
            groups.append([stretch])
        else:
            home.append(stretch)
    return [p for group in groups for stretch in sorted(group, key=lambda s: s[0][1].start_s) for p in stretch]


def handing_over(sentences: Sequence[Sentence], hosts: frozenset[str]) -> list[bool]:
    """Which sentences are a host handing over: each run of one host's consecutive sentences that
    holds a question (the lead-in with it)."""
    out = [False] * len(sentences)
    start = 0
    while start < len(sentences):
        end = start
        while end < len(sentences) and sentences[end].speaker == sentences[start].speaker:
            end += 1
        if sentences[start].speaker in hosts and any(s.text.rstrip().endswith("?") for s in sentences[start:end]):
            out[start:end] = [True] * (end - start)
        start = end
    return out


def follow_on(start_s: float, after: Sequence[float]) -> float:
    """A stretch's bonus for starting soon after the nearest earlier of these times."""
    gaps = [start_s - t for t in after if start_s > t]
    return FOLLOW_ON * max(0.0, 1.0 - min(gaps) / FOLLOW_ON_S) if gaps else 0.0


def _nearest_sentence(hit: Hit) -> Sentence:
    """What a refusal shows of a near passage: its best-matching sentence that says something
    (a passage's first sentence is often "Yeah."; thanks say nothing of it), else its first own
    sentence."""
    own = [i for i, s in enumerate(hit.chunk.sentences) if not s.context]
    for i in list(hit.matched) + own:
        text = hit.chunk.sentences[i].text
        if i in own and len(text.split()) >= 4 and not THANKS.match(text):
            return hit.chunk.sentences[i]
    return hit.chunk.sentences[own[0] if own else 0]
