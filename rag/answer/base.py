"""The one interface every answerer implements."""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence, Union, runtime_checkable

from ..types import Answer, Hit

# A stream yields text deltas (str) as they are produced, then exactly one final Answer.
AnswerStream = Iterator[Union[str, Answer]]


@runtime_checkable
class Answerer(Protocol):
    name: str

    def stream(self, question: str, hits: Sequence[Hit]) -> AnswerStream:
        """Yield text deltas, then the final Answer (whose text is the checked, final text)."""
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
