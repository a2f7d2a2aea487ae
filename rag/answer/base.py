"""The one interface every answerer implements."""

from __future__ import annotations

from typing import Iterator, Protocol, Union, runtime_checkable

from ..types import Answer, Evidence, Question

# A stream yields text deltas (str) as they are produced, then exactly one final Answer.
AnswerStream = Iterator[Union[str, Answer]]


@runtime_checkable
class Answerer(Protocol):
    """``name`` labels its answers. An answerer that reads more passages than the question's ``k``
    (a chat model filling its token budget) says how many in an optional ``depth`` attribute;
    the assistant then asks retrieval for that many (``Question.depth``)."""

    name: str

    def stream(self, question: Question, evidence: Evidence) -> AnswerStream:
        """Yield text deltas, then the final Answer (whose text is the checked, final text).
        ``question`` carries the conversation's last turn and the deadline; ``evidence`` what
        retrieval found for it."""
        ...


def collect(stream: AnswerStream) -> Answer:
    """Drain a stream and return its final Answer."""
    final = None
    for event in stream:
        if isinstance(event, Answer):
            final = event
    if final is None:
        raise RuntimeError("answerer stream ended without an Answer")
    return final
