"""How much of a question the transcript covers, read from its words: the refusal signals that
``Retriever.search`` measures for the answerer (``types.Signals``).

A question the interview does not answer tends to find its topic words in the transcript but not
its specifics ("How much did the Series C raise?"): ``coverage`` is the IDF-weighted share of the
question's words that the transcript (or only its best passages) uses, ``semantic_coverage`` lets a
word the speakers put otherwise ("cash" for "money") keep the credit its nearest transcript word
earns, and ``absent_names`` lists the names no passage says ("Sora").
"""

from __future__ import annotations

import math

import numpy as np

from .embedding import Embedder
from .query import Scope, content_words, keywords, names, numbered_names, stem, topic_words
from .types import Chunk, Question

NEIGHBOURS = 3  # transcript words kept for each question word the transcript never uses


class Coverage:
    """One index's words: how many passages use each (``doc_freq``), and the vocabulary's vectors,
    to find what the speakers said instead of a word they never use."""

    def __init__(self, passages: int, doc_freq: dict, vocabulary, vocabulary_vecs: np.ndarray, embedder: Embedder):
        self.passages = passages
        self.doc_freq = doc_freq
        self.vocabulary = vocabulary
        self.vocabulary_vecs = vocabulary_vecs
        self.embedder = embedder
        self._neighbours: dict[str, tuple[tuple[str, float], ...]] = {}

    def unseen_words(self, query: str, scope: Scope) -> list[str]:
        """The question's topic words (as written) that no passage uses, even in another form."""
        topic = set(topic_words(query, scope))
        return [w for w in dict.fromkeys(content_words(query))
                if not w.isdigit() and stem(w) in topic and stem(w) not in self.doc_freq]

    def absent_names(self, question: Question, scope: Scope) -> tuple[str, ...]:
        """The names the question uses that no passage does ("What do they think of Sora?"): a
        transcript that never says a name says nothing about it. Only the names typed in this turn
        (not those of the earlier question a follow-up is searched with), and only among its topic
        words (not a chapter or speaker it is scoped to). A numbered name is judged with its number
        ("Gen-4" is not said where "Gen-2" is: ``query.numbered_names``)."""
        topic = set(topic_words(question.text, scope))
        unseen = {stem(w) for w in self.unseen_words(question.text, scope)}
        return tuple(name for name in names(question.text)
                     if (parts := {stem(w) for w in content_words(name) if not w.isdigit()}) and parts <= topic
                     and (parts & unseen or any(n not in self.doc_freq for n in numbered_names(name))))

    def neighbours(self, word: str) -> tuple[tuple[str, float], ...]:
        """The transcript words whose vectors are nearest this word's: what the speakers may have
        said instead ("money" -> "funding"). Cached: questions repeat their words."""
        found = self._neighbours.get(word)
        if found is None:
            if not len(self.vocabulary):
                return ()
            sims = self.vocabulary_vecs @ self.embedder.embed_query(word).astype(np.float32)
            top = np.argsort(-sims)[:NEIGHBOURS]
            found = tuple((self.vocabulary[i], float(sims[i])) for i in top)
            if len(self._neighbours) > 4096:  # a server's threads share it: bounded, never read twice
                self._neighbours.clear()
            self._neighbours[word] = found
        return found

    def semantic_coverage(self, query: str, scope: Scope | None = None) -> float:
        """``coverage`` where a word the transcript never uses still counts by how close the nearest
        transcript word comes to it: a paraphrase ("staff" for "employees") keeps most of its
        credit, a specific the interview never touches ("Sora", "headquarters") keeps little."""
        scope = scope or Scope()
        words = [w for w in dict.fromkeys(topic_words(query, scope)) if not w.isdigit()]
        if not words:
            return 1.0
        weight = self._idf(words)
        credit = {w: 1.0 for w in words if w in self.doc_freq}
        for word in self.unseen_words(query, scope):
            near = self.neighbours(word)
            credit[stem(word)] = max(0.0, near[0][1]) if near else 0.0
        return sum(weight[w] * credit.get(w, 0.0) for w in words) / sum(weight.values())

    def coverage(self, query: str, passages: list[Chunk] | None = None,
                 scope: Scope | None = None) -> float:
        """IDF-weighted share of the question's content words that occur in the index, or only in
        ``passages`` (the top ones: an on-topic question the interview does not answer tends to
        find its topic words there but not its specifics). Scope words ("near the end") don't count."""
        words = keywords(query) if scope is None else topic_words(query, scope)
        words = [w for w in dict.fromkeys(words) if not w.isdigit()]
        if not words:
            return 1.0
        present = (set(self.doc_freq) if passages is None
                   else {w for c in passages for w in keywords(c.text)})
        weight = self._idf(words)
        return sum(weight[w] for w in words if w in present) / sum(weight.values())

    def _idf(self, words: list[str]) -> dict[str, float]:
        """Each word's weight: rare words say more about what a question asks."""
        return {w: math.log(1 + self.passages / (1 + self.doc_freq.get(w, 0))) for w in words}
