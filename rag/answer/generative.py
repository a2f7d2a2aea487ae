"""The ``openai`` answerer: a chat model writes the answer, the code checks every citation.

    hits --context.context: fill the token budget, merge, order--> [P1]..[Pn] blocks
         --prompts/answer.md--> chat model --stream deltas--> raw text
         --citations.check_citations (labels, quotations)--> Answer (times, quotes, notes, usage)

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
from typing import Iterator, Sequence

from ..chat_models import ChatModel
from ..citations import QUOTE_OPENERS, check_citations
from ..config import CONTEXT_TOKENS
from ..errors import ChatModelError, InputError, ReplyTruncated
from ..prompts import Prompt, load_prompt
from ..retrieval import ACROSS_PASSAGES
from ..types import Answer, Citation, Evidence, Hit, Question, Usage
from .base import Answerer, AnswerStream
from .context import Passage, TokenCounter, context, fill, format_passage, format_passages, source_of

__all__ = ["ChatAnswerer", "NO_COVERAGE", "is_refusal", "format_passages", "format_passage", "fill",
           "condense_question", "depth_for"]

# The exact sentence prompts/answer.md tells the model to use; is_refusal() also accepts variants.
NO_COVERAGE = "The interview doesn't cover this."
_REFUSAL_RE = re.compile(
    r"\b(?:interview|passages?|transcript)\s+(?:does\s*n[o']t|do\s*n[o']t|does not|do not)\s+"
    r"(?:cover|address|mention|discuss)", re.I)

# Passages a chat model's budget asks retrieval for: enough to fill it (a passage is ~250 tokens
# with its label; some are skipped or merged), never fewer than the question's k.
TOKENS_PER_PASSAGE = 200


def depth_for(budget: int, k: int = 5) -> int:
    return min(max(k, budget // TOKENS_PER_PASSAGE + 5), 100)


def _settled(parts: list[str]) -> str:
    """The raw text so far, minus what may still change: a citation bracket that has not closed
    yet, and a quotation not yet followed by its citation (it is checked against that passage)."""
    raw = "".join(parts)
    open_at = raw.rfind("[")
    if open_at != -1 and "]" not in raw[open_at:] and len(raw) - open_at <= 80:
        raw = raw[:open_at]
    after = raw.rfind("]") + 1
    quoted = [at for at in (raw.find(q, after) for q in QUOTE_OPENERS) if at != -1]
    return raw[:min(quoted)] if quoted else raw


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL_RE.search(text))


# A reply that opens by saying the passages do not give what was asked ("The passages don't give an
# exact parameter count; Daniel only says ...") declines the question, with the nearest things they
# do say: what prompts/answer.md asks for a question the evidence answers only around its edges.
_DECLINE_RE = re.compile(
    r"^\W*(?:the\s+)?(?:interview|passages?|transcript|episode|conversation)s?\s+(?:does|do|did)\s*(?:n[o']t|not)\s+"
    r"(?:say|give|state|list|specify|name|include|provide|explain|reveal|describe|tell)\b", re.I)


def declines(text: str) -> bool:
    """Whether the answer's first sentence says the passages do not give what was asked."""
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return bool(_DECLINE_RE.match(first))


def _counter(encoding: str | TokenCounter) -> TokenCounter:
    if callable(encoding):
        return encoding
    from ..tokens import count_tokens  # lazy: tiktoken loads on the first answer only

    return lambda text: count_tokens(text, encoding)


class ChatAnswerer:
    """Answerer protocol over a ChatModel. ``token_budget`` bounds the whole prompt; the passages
    fill what the instructions and question leave (``context.context``). ``passages``: read at
    most this many retrieved passages (the old "top 5" way; None: as many as the budget takes).
    ``depth``: how many passages it asks retrieval for (``Question.depth``)."""

    name = "openai"

    def __init__(self, model: ChatModel, *, token_budget: int = CONTEXT_TOKENS, passages: int | None = None,
                 fallback: Answerer | None = None, encoding: str | TokenCounter = "cl100k_base",
                 max_answer_tokens: int = 400, temperature: float = 0.0,
                 prompt: Prompt | None = None, episode_labels: bool = False):
        self.model = model
        self.episode_labels = episode_labels  # cite "[practical-ai-260 13:36]": an index of several episodes
        self.token_budget = token_budget
        self.passages = passages
        self.depth = passages or depth_for(token_budget)
        self.fallback = fallback
        self.max_answer_tokens = max_answer_tokens
        self.temperature = temperature
        self.prompt = prompt or load_prompt("answer")
        self._count = _counter(encoding)

    def messages(self, question: str, hits: Sequence[Hit]) -> tuple[list[dict], list[Passage]]:
        """The chat messages for a question, and the blocks of passages that made it into them."""
        empty = self.prompt.render(passages="", question=question)
        overhead = sum(self._count(m["content"]) + 4 for m in empty)  # ~4 tokens per message
        blocks = context(hits, max(self.token_budget - overhead, 0), self._count, limit=self.passages)
        return self.prompt.render(passages=format_passages([b.hit for b in blocks]), question=question), blocks

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
        messages, blocks = self.messages(text, hits)
        kept = [b.hit for b in blocks]
        parts: list[str] = []
        emitted = ""
        truncated = None
        extra = {"deadline": deadline} if deadline is not None else {}
        try:
            for delta in self.model.stream(messages, temperature=self.temperature,
                                           max_tokens=self.max_answer_tokens, **extra):
                parts.append(delta)
                # Stream the checked rendering, not the raw text: a client that joins the deltas
                # must see [MM:SS] times (never our [P2] labels), no invented citation and no
                # quotation the passage does not hold.
                rendered = check_citations(_settled(parts), kept, episode_labels=self.episode_labels,
                                           quotes=True).text
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
        final = self._final(text, raw, blocks, dropped=len(hits) - sum(len(b.sources) for b in blocks))
        final = replace(final, usage=Usage(prompt_tokens=sum(self._count(m["content"]) + 4 for m in messages),
                                           completion_tokens=self._count(raw) if raw else 0,
                                           passages=sum(len(b.sources) for b in blocks)))
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

    def _final(self, question: str, raw: str, blocks: list[Passage], dropped: int) -> Answer:
        notes: list[str] = []
        if dropped > 0:
            notes.append(f"{dropped} lower-ranked passage(s) left out to fit the token budget")
        # The answer lists the retrieved passages the model read, best first; a citation names
        # the one of its block that holds the cited moment.
        sent = tuple(sorted((h for b in blocks for h in b.sources), key=lambda h: h.rank))
        if not raw.strip():
            notes.append("the chat model returned an empty reply")
            return Answer(question=question, text=NO_COVERAGE, backend=self.name,
                          hits=sent, refused=True, notes=tuple(notes))
        checked = check_citations(raw, [b.hit for b in blocks], episode_labels=self.episode_labels,
                                  quotes=True)
        notes.extend(checked.notes)
        refused = is_refusal(checked.text)
        declined = not refused and declines(checked.text)
        if declined:
            notes.append("the answer opens by saying the passages do not give what was asked: "
                         "marked refused, with what they do say cited")
        elif not refused and not checked.citations:
            notes.append("the answer cites no retrieved passage")
        citations = tuple(_from_source(c, blocks) for c in checked.citations)
        return Answer(question=question, text=checked.text, backend=self.name,
                      citations=() if refused else citations, hits=sent,
                      refused=refused or declined, notes=tuple(notes))

    def _fall_back(self, question: Question, evidence: Evidence, why: str,
                   notes: tuple[str, ...] = ()) -> Iterator[str | Answer]:
        """The fallback's answer, on the question's own ``k`` passages (not the chat model's depth)."""
        assert self.fallback is not None
        notes = notes + (f"{why}; showing the extractive answer",)
        if question.depth:
            question = replace(question, depth=0)
            keep = max(question.k, ACROSS_PASSAGES if question.across else 0)
            evidence = Evidence(question, evidence.hits[:keep], evidence.measure)
        events = self.fallback.stream(question, evidence)
        for event in events:
            if isinstance(event, Answer):
                yield replace(event, notes=event.notes + notes)
            else:
                yield event


def _from_source(citation: Citation, blocks: list[Passage]) -> Citation:
    """A citation of a merged block, naming the retrieved passage that holds its moment."""
    for block in blocks:
        if block.hit.chunk.id == citation.passage_id and len(block.sources) > 1:
            return replace(citation, passage_id=source_of(block, citation.start_s).chunk.id)
    return citation


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
