"""The offline answerer: the transcript's own sentences, each attributed and cited with its time.

It never writes a word that is not in the transcript, apart from speaker names, times and the
fixed framing. When the best evidence is too weak it says the interview does not cover the
question and lists the nearest passages instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..query import keywords
from ..timecode import format_time
from ..types import Answer, Citation, Hit
from .base import AnswerStream

NOT_COVERED = "The interview doesn't cover that."


@dataclass(frozen=True)
class RefusalPolicy:
    """Calibrated on the dev split (see eval/calibrate and the eval report's trade-off table).

    ``confidence`` combines the best sentence similarity, the best passage similarity and how much
    of the question's vocabulary the best passage contains; below ``threshold`` we refuse.
    """

    threshold: float = 0.42
    sentence_weight: float = 0.5
    dense_weight: float = 0.3
    overlap_weight: float = 0.2


def confidence(question: str, hits: Sequence[Hit], policy: RefusalPolicy = RefusalPolicy()) -> float:
    if not hits:
        return 0.0
    best_sentence = max(h.scores.get("sentence", 0.0) for h in hits[:5])
    best_dense = max(h.scores.get("dense", 0.0) for h in hits[:5])
    qwords = set(keywords(question))
    overlap = 0.0
    if qwords:
        overlap = max(len(qwords & set(keywords(h.chunk.text))) / len(qwords) for h in hits[:3])
    return (policy.sentence_weight * best_sentence + policy.dense_weight * best_dense
            + policy.overlap_weight * overlap)


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, max_sentences: int = 3, passages: int = 3, margin: float = 0.12,
                 policy: RefusalPolicy = RefusalPolicy()):
        self.max_sentences = max_sentences
        self.passages = passages
        self.margin = margin
        self.policy = policy

    def stream(self, question: str, hits: Sequence[Hit]) -> AnswerStream:
        answer = self.answer(question, hits)
        yield answer.text
        yield answer

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        hits = tuple(hits)
        if not hits or confidence(question, hits, self.policy) < self.policy.threshold:
            return self._refuse(question, hits)
        picked = self._pick(question, hits)
        if not picked:
            return self._refuse(question, hits)
        # Read them in the order they were said: an answer that jumps back in time is confusing.
        picked.sort(key=lambda p: p[1].start_s)
        citations = []
        lines: list[str] = []
        last_speaker = None
        for hit, sentence in picked:
            citations.append(Citation(passage_id=hit.chunk.id, start_s=sentence.start_s,
                                      chapter=hit.chunk.chapter, speaker=sentence.speaker,
                                      quote=sentence.text))
            cite = f"[{format_time(sentence.start_s)}]"
            if sentence.speaker != last_speaker:
                lines.append(f"{sentence.speaker} {cite}: \u201c{sentence.text}\u201d")
                last_speaker = sentence.speaker
            else:
                lines[-1] += f" {cite}: \u201c{sentence.text}\u201d"
        return Answer(question=question, text="\n".join(lines), backend=self.name,
                      citations=tuple(citations), hits=hits)

    def _pick(self, question: str, hits: tuple[Hit, ...]):
        qwords = set(keywords(question))
        candidates = []
        seen = set()
        for rank, hit in enumerate(hits[: self.passages]):
            for si, sim in hit.scores.get("sentence_scores", {}).items():
                sentence = hit.chunk.sentences[int(si)]
                key = (sentence.text, sentence.start_s)
                if sentence.context or key in seen or len(sentence.text.split()) < 4:
                    continue
                seen.add(key)
                overlap = len(qwords & set(keywords(sentence.text))) / len(qwords) if qwords else 0.0
                score = sim + 0.15 * overlap - 0.02 * rank
                candidates.append((score, hit, sentence))
        if not candidates:
            return []
        candidates.sort(key=lambda c: -c[0])
        best = candidates[0][0]
        return [(h, s) for score, h, s in candidates[: self.max_sentences] if score >= best - self.margin]

    def _refuse(self, question: str, hits: tuple[Hit, ...]) -> Answer:
        lines = [NOT_COVERED]
        if hits:
            lines.append("The nearest passages are:")
            for h in hits[:3]:
                first = h.chunk.sentences[0]
                snippet = " ".join(first.text.split()[:16])
                lines.append(f"- [{h.chunk.start}] {h.chunk.chapter or ''} ({first.speaker}): {snippet}\u2026")
        return Answer(question=question, text="\n".join(lines), backend=self.name, hits=hits,
                      refused=True)
