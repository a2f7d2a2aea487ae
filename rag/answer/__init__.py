"""Answerers: turn a question and retrieved Hits into an Answer with Citations.

``extractive`` (offline default) quotes the transcript; ``openai`` asks a chat model and then checks
every citation it made against the retrieved passages.
"""

from .base import Answerer, AnswerStream, collect

__all__ = ["Answerer", "AnswerStream", "collect"]
