"""One small exception tree. Every error says what is wrong and what to do about it.

    RagError
    ├── InputError            bad input from the caller (empty question, bad flag value)
    ├── TranscriptError       a transcript file that cannot be read or parsed (carries path and line)
    ├── IndexError_           an index that is missing, stale, corrupt or does not match
    │   ├── IndexNotFound
    │   ├── StaleIndex
    │   └── StoreUnavailable  the database that holds the index cannot be reached in time
    └── ModelError            an embedding or chat model that cannot be loaded or reached
        └── ChatModelError    the chat server failed after bounded retries, or sent garbage
            └── ReplyTruncated  a streamed reply ended without a finish reason (or at the limit)

The CLI turns these into one line on stderr and a non-zero exit; the HTTP server turns them into
JSON errors with a 4xx/5xx status. Library code raises them and never prints.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class. ``str(err)`` is a complete, user-facing message."""

    exit_code = 1


class InputError(RagError, ValueError):
    exit_code = 2


class TranscriptError(RagError):
    exit_code = 3

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)
        self.reason = message
        self.path = path
        self.line = line


class IndexError_(RagError):  # trailing underscore: do not shadow the builtin IndexError
    exit_code = 4


class IndexNotFound(IndexError_):
    pass


class StaleIndex(IndexError_):
    pass


class StoreUnavailable(IndexError_):
    """The database is down, unreachable or out of free connections: retry later (HTTP 503)."""


class ModelError(RagError):
    exit_code = 5


class ChatModelError(ModelError):
    pass


class ReplyTruncated(ChatModelError):
    """The text streamed so far is all there is: the reply stopped before the model finished."""
