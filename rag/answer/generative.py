"""The ``openai`` answerer: a chat model writes the answer, the code checks every citation.

    hits --fit to token budget--> [P1]..[Pn] passages --prompts/answer.md--> chat model
         --stream deltas--> raw text --citations.check_citations--> Answer (times, quotes, notes)

Passage labels are ours: the model cites [P2], we map it back to the passage and render the time
the reader can seek to. Citations that match no passage are removed and reported in
``Answer.notes``. No hits means no model call. If the chat model fails (an error, no reply by the
deadline, a reply that is no chat completion, an empty reply) or every citation it made was
invented, and a fallback answerer was given (normally the extractive one), the fallback's answer
is returned with a note saying why. A reply that stopped before the model finished is kept and
marked truncated in the notes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable, Iterator, Sequence

from ..chat_models import ChatModel
from ..citations import check_citations
from ..errors import ChatModelError, InputError, ReplyTruncated
from ..prompts import Prompt, load_prompt
from ..timecode import format_time
from ..types import Answer, Evidence, Hit, Question
from .base import Answerer, AnswerStream

__all__ = ["ChatAnswerer", "NO_COVERAGE", "is_refusal", "format_passages", "fit_passages",
           "condense_question"]

# The exact sentence prompts/answer.md tells the model to use; is_refusal() also accepts variants.
NO_COVERAGE = "The interview doesn't cover this."
_REFUSAL_RE = re.compile(
    r"\b(?:interview|passages?|transcript)\s+(?:does\s*n[o']t|do\s*n[o']t|does not|do not)\s+"
    r"(?:cover|address|mention|discuss)", re.I)

TokenCounter = Callable[[str], int]


def _settled(parts: list[str]) -> str:
    """The raw text so far, minus a trailing citation bracket that has not closed yet."""
    raw = "".join(parts)
    open_at = raw.rfind("[")
    if open_at != -1 and "]" not in raw[open_at:] and len(raw) - open_at <= 80:
        return raw[:open_at]
    return raw


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL_RE.search(text))


def format_passage(label: int, hit: Hit) -> str:
    c = hit.chunk
    header = f"[P{label}] {format_time(c.start_s)}-{format_time(c.end_s)}"
    if c.chapter:
        header += f" | chapter: {c.chapter}"
    if c.speakers:
        header += f" | speakers: {', '.join(c.speakers)}"
    return f"{header}\n{c.text}"


def format_passages(hits: Sequence[Hit]) -> str:
    return "\n\n".join(format_passage(i, h) for i, h in enumerate(hits, 1))


def _trim_to_sentences(hit: Hit, fits: Callable[[Hit], bool]) -> Hit:
    """The passage cut back to its first whole sentences that fit (at least one sentence)."""
    sentences = hit.chunk.sentences
    for n in range(len(sentences) - 1, 0, -1):
        end_s = sentences[n].start_s  # the passage now ends where its first dropped sentence began
        trimmed = replace(hit, chunk=replace(hit.chunk, sentences=sentences[:n], end_s=end_s))
        if fits(trimmed):
            return trimmed
    return replace(hit, chunk=replace(hit.chunk, sentences=sentences[:1],
                                      end_s=sentences[1].start_s if len(sentences) > 1
                                      else hit.chunk.end_s))


def fit_passages(hits: Sequence[Hit], budget: int, count: TokenCounter) -> list[Hit]:
    """Best-ranked passages whose labelled text fits ``budget`` tokens, in rank order.

    Whole passages are dropped from the bottom of the ranking. Only when even the best passage
    is too long is it cut, and then at a sentence boundary.
    """
    ranked = sorted(hits, key=lambda h: h.rank)  # stable: equal ranks keep retrieval order
    kept: list[Hit] = []
    used = 0
    for hit in ranked:
        cost = count(format_passage(len(kept) + 1, hit) + "\n\n")
        if used + cost > budget:
            if not kept:
                kept.append(_trim_to_sentences(
                    hit, lambda h: count(format_passage(1, h) + "\n\n") <= budget))
            break
        kept.append(hit)
        used += cost
    return kept


def _counter(encoding: str | TokenCounter) -> TokenCounter:
    if callable(encoding):
        return encoding
    from ..tokens import count_tokens  # lazy: tiktoken loads on the first answer only

    return lambda text: count_tokens(text, encoding)


class ChatAnswerer:
    """Answerer protocol over a ChatModel. ``token_budget`` bounds the whole prompt."""

    name = "openai"

    def __init__(self, model: ChatModel, *, token_budget: int = 3000,
                 fallback: Answerer | None = None, encoding: str | TokenCounter = "cl100k_base",
                 max_answer_tokens: int = 400, temperature: float = 0.0,
                 prompt: Prompt | None = None, episode_labels: bool = False):
        self.model = model
        self.episode_labels = episode_labels  # cite "[practical-ai-260 13:36]": an index of several episodes
        self.token_budget = token_budget
        self.fallback = fallback
        self.max_answer_tokens = max_answer_tokens
        self.temperature = temperature
        self.prompt = prompt or load_prompt("answer")
        self._count = _counter(encoding)

    def messages(self, question: str, hits: Sequence[Hit]) -> tuple[list[dict], list[Hit]]:
        """The chat messages for a question, and the passages that made it into them."""
        empty = self.prompt.render(passages="", question=question)
        overhead = sum(self._count(m["content"]) + 4 for m in empty)  # ~4 tokens per message
        kept = fit_passages(hits, max(self.token_budget - overhead, 0), self._count)
        return self.prompt.render(passages=format_passages(kept), question=question), kept

    def stream(self, question: Question, evidence: Evidence) -> AnswerStream:
        """The chat model sees the conversation through the standalone question; the fallback gets
        the whole ``question``, so that an extractive answer to a follow-up does not repeat the
        previous one. ``question.deadline``: the answer's ``chat_models.Deadline`` (else the
        model's own)."""
        text, hits, deadline = question.standalone, evidence.hits, question.deadline
        if not text or not text.strip():
            raise InputError("the question is empty; ask something about the interview")
        if not hits:  # nothing retrieved: do not let the model answer from its own memory
            yield NO_COVERAGE
            yield Answer(question=text, text=NO_COVERAGE, backend=self.name, refused=True,
                         notes=("no passage matched the question; the chat model was not asked",))
            return
        messages, kept = self.messages(text, hits)
        parts: list[str] = []
        emitted = ""
        truncated = None
        extra = {"deadline": deadline} if deadline is not None else {}
        try:
            for delta in self.model.stream(messages, temperature=self.temperature,
                                           max_tokens=self.max_answer_tokens, **extra):
                parts.append(delta)
                # Stream the checked rendering, not the raw text: a client that joins the deltas
                # must see [MM:SS] times (never our [P2] labels) and no invented citation.
                rendered = check_citations(_settled(parts), kept, episode_labels=self.episode_labels).text
                if len(rendered) > len(emitted) and rendered.startswith(emitted):
                    yield rendered[len(emitted):]
                    emitted = rendered
        except ReplyTruncated as err:
            truncated = f"truncated: {err}"
        except ChatModelError as err:
            if self.fallback is None:
                raise
            yield from self._fall_back(question, evidence, f"chat model failed: {err}")
            return
        raw = "".join(parts)
        final = self._final(text, raw, kept, dropped=len(hits) - len(kept))
        if truncated:
            final = replace(final, notes=final.notes + (truncated,))
        fault = self._fault(raw, final)
        if fault and self.fallback is not None:
            yield from self._fall_back(question, evidence, fault,
                                       notes=tuple(n for n in final.notes if n != fault))
            return
        if fault and not final.refused:  # no fallback: refuse rather than show it as grounded
            final = replace(final, text=NO_COVERAGE, refused=True, citations=(),
                            notes=final.notes + (f"{fault}; refused",))
        if final.text.startswith(emitted) and len(final.text) > len(emitted):
            yield final.text[len(emitted):]
        yield final

    @staticmethod
    def _fault(raw: str, final: Answer) -> str | None:
        """Why the model's answer must not be shown as a grounded one, if it must not."""
        from ..citations import find_marks

        if not raw.strip():
            return "the chat model returned an empty reply"
        if not final.refused and not final.citations and find_marks(raw):
            return "every citation in the chat model's answer matched no retrieved passage (invented)"
        return None

    def _final(self, question: str, raw: str, kept: list[Hit], dropped: int) -> Answer:
        notes: list[str] = []
        if dropped:
            notes.append(f"{dropped} lower-ranked passage(s) left out to fit the token budget")
        if not raw.strip():
            notes.append("the chat model returned an empty reply")
            return Answer(question=question, text=NO_COVERAGE, backend=self.name,
                          hits=tuple(kept), refused=True, notes=tuple(notes))
        checked = check_citations(raw, kept, episode_labels=self.episode_labels)
        notes.extend(checked.notes)
        refused = is_refusal(checked.text)
        if not refused and not checked.citations:
            notes.append("the answer cites no retrieved passage")
        return Answer(question=question, text=checked.text, backend=self.name,
                      citations=() if refused else checked.citations, hits=tuple(kept),
                      refused=refused, notes=tuple(notes))

    def _fall_back(self, question: Question, evidence: Evidence, why: str,
                   notes: tuple[str, ...] = ()) -> Iterator[str | Answer]:
        assert self.fallback is not None
        notes = notes + (f"{why}; showing the extractive answer",)
        events = self.fallback.stream(question, evidence)
        for event in events:
            if isinstance(event, Answer):
                yield replace(event, notes=event.notes + notes)
            else:
                yield event


def condense_question(model: ChatModel, history: Sequence[tuple[str, str]], question: str,
                      *, prompt: Prompt | None = None, deadline=None) -> str:
    """Rewrite a follow-up into a standalone question, given (question, answer) turns so far."""
    if not history:
        return question
    prompt = prompt or load_prompt("condense")
    transcript = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history)
    extra = {"deadline": deadline} if deadline is not None else {}
    reply = model.complete(prompt.render(history=transcript, question=question),
                           temperature=0.0, max_tokens=100, **extra)
    line = next((l.strip().strip('"') for l in reply.splitlines() if l.strip()), "")
    return line or question


_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|query\s*\d*:)\s*", re.I)


def rewrite_queries(model: ChatModel, question: str, *, limit: int = 3,
                    prompt: Prompt | None = None, deadline=None) -> list[str]:
    """Up to ``limit`` search queries in the words a speaker would use (``prompts/rewrite.md``).

    The model's reply is read leniently (numbering, bullets and quotes are stripped); lines that
    repeat the question or each other are dropped. Raises ChatModelError when the model fails.
    """
    prompt = prompt or load_prompt("rewrite")
    extra = {"deadline": deadline} if deadline is not None else {}
    reply = model.complete(prompt.render(question=question), temperature=0.0, max_tokens=120,
                           **extra)
    queries: list[str] = []
    for line in reply.splitlines():
        q = _LIST_MARK.sub("", line).strip().strip('"\'').strip()
        if q and len(q) <= 300 and q.lower() != question.strip().lower() and q not in queries:
            queries.append(q)
    return queries[:limit]
