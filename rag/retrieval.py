"""Hybrid retrieval: dense chunks + dense sentences (small-to-big) + BM25 over chunks and over
sentence windows, fused as z-scores, nudged by the scope the question states, diversified with MMR.

Why each signal: all-MiniLM-L6-v2 over whole chunks misses paraphrased questions whose answer is
one sentence inside a long passage; matching sentences finds that sentence and returns its passage;
BM25 catches names and rare words the small model blurs; z-score fusion combines them without
calibrating their scales against each other (``fusion.py``: why not reciprocal rank fusion).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from functools import lru_cache
from typing import Sequence

import numpy as np

from .adapters import question_prior_for, sentence_head_for
from .coverage import Coverage
from .embedding import Embedder
from .fusion import Weights, fuse
from .query import (Scope, guest_names, leans_on_last_answer, named_speaker, new_topic, only_scope, own_words,
                    parse_scope, search_words, searched_as, speaker_aliases, without_speaker)
from .stores import Store
from .stores.files import ANN_MIN, ANN_CANDIDATES
from .shows import same_show
from .types import Evidence, Exchange, Filters, Hit, Question, Signals

EXACT_SENTENCES = 50_000    # up to this many sentence windows, a question scores every one
SENTENCE_CANDIDATES = 300   # past it, the windows of each signal's top passages (see Retriever._dense)
SPEAKER_BONUS = 0.08        # "What did Chris ask about X": that speaker's sentences about X beat the other's
EPISODE_POOL = 400  # a search capped per episode picks its candidates from this many of the best passages
FOLLOW_AFTER_S, FOLLOW_BEFORE_S = 300.0, 60.0  # a follow-up's pull after / before a cited time (``_after``)


def _tops(signals: Sequence[np.ndarray], n: int | None = None) -> list[np.ndarray]:
    """The ``n`` (default ``SENTENCE_CANDIDATES``) best of each signal, unordered."""
    n = SENTENCE_CANDIDATES if n is None else n
    out = []
    for signal in signals:
        rows = np.flatnonzero(signal)  # BM25 is zero for most passages: rank only the others
        if len(rows) > len(signal) // 2:
            rows = np.argpartition(-signal, n)[:n] if len(signal) > n else np.arange(len(signal))
        elif len(rows) > n:
            rows = rows[np.argpartition(-signal[rows], n)[:n]]
        out.append(rows)
    return out


# A question that names a time searches within this many seconds of it, then within the next width
# when nothing there is about its topic (see ``Retriever._near_time``).
TIME_WINDOWS = (180.0, 480.0)
# A time named this far past the last words is past the end (``Retriever.past_end``): the audio runs on
# a little after them (goodbyes, outro music), and estimated times may be a minute off.
PAST_END_S = 120.0


# A question asked of many episodes ("what have guests said about X", ``query.spans_episodes``)
# gets at least ACROSS_PASSAGES passages, at most ACROSS_PER_EPISODE of any one episode, unless the
# caller sets ``per_episode``; the answer quotes the best of several of them (``answer/extractive.py``).
ACROSS_PASSAGES = 10
ACROSS_PER_EPISODE = 2
NOTHING = Signals(coverage=0.0, local_coverage=0.0, semantic_coverage=0.0, answer=None)

# The passage reranker reorders this many of the hybrid's best candidates unless its file says.
PASSAGE_RERANK_DEPTH = 10

class Retriever:
    def __init__(self, index: Store, embedder: Embedder, weights: Weights = Weights(), reranker=None):
        """``reranker``: a ``reranking.Reranker`` that reorders the hybrid's best passages (the
        passage reranker, ``training/passages.py``; its file's settings say how many and how much)."""
        from .minilm import one_blas_thread

        # A question's matrix products are small (a few thousand rows): a threaded BLAS only spins
        # against concurrent requests. Over the catalog, HTTP /search with 2 clients: 29.5 req/s
        # with two BLAS threads, 45.8 with one (python bench/load.py --index catalog).
        one_blas_thread()
        self.index = index
        self.embedder = embedder
        self.weights = weights
        self.reranker = reranker
        self.chunks = index.chunks
        # The vectors of the passages whose similarities estimate the population's mean and spread
        # (when not every passage is scored), kept in memory: read from the file, 2 ms a question.
        self._sample = None if index.scans else index.sample_vectors()
        self.sent_rows = index.sentence_rows
        # The sentence windows are stored passage by passage: passage c owns rows sent_start[c]:sent_start[c + 1].
        self.sent_start = np.searchsorted(self.sent_rows[:, 0], np.arange(len(self.chunks) + 1)) \
            if len(self.sent_rows) else np.zeros(len(self.chunks) + 1, dtype=np.int64)
        self._has_windows = self.sent_start[:-1] < self.sent_start[1:]
        cols = index.columns
        self.columns = cols
        self.lexical = index.lexical
        self.chapters = [c["title"] for t in index.transcripts for c in t.get("chapters", [])
                         if not c.get("sponsor")]
        hosts = [h for t in index.transcripts for h in t["episode"].get("hosts", [])]
        guests = [g for t in index.transcripts for g in t["episode"].get("guests", [])]
        if not hosts and not guests:
            speakers = cols.speakers.tolist()
            hosts, guests = speakers[:1], speakers[1:2]
        self.aliases = speaker_aliases(hosts, guests)
        self.hosts = tuple(dict.fromkeys(hosts))
        self.guests = tuple(dict.fromkeys(g for g in guests if g not in self.hosts))
        self.guest_names = guest_names(self.guests, self.hosts)
        self.duration = float(cols.end_s.max()) if len(cols.end_s) else 0.0
        self.chunk_episodes = np.char.lower(cols.episodes)[cols.episode] if len(cols.episode) else cols.episodes
        self.chunk_shows = cols.shows[cols.show] if len(cols.show) else cols.shows
        self.starts, self.ends = cols.start_s, cols.end_s
        self.words = Coverage(len(self.chunks), self.lexical.doc_freq, index.vocabulary,
                              index.vocabulary_vectors, embedder)
        adapter = getattr(embedder, "adapter", None)
        self.answer_head = (adapter.meta.get("answer_head") or None) if adapter is not None else None
        self.sentence_head, self.question_prior = sentence_head_for(adapter), question_prior_for(adapter)
        # A question's vector is asked for several times a search (passages, sentences, refusal): encoded once.
        self.query_vector = lru_cache(maxsize=256)(self._encode)

    def _encode(self, text: str) -> np.ndarray:
        q = self.embedder.embed_query(text).astype(np.float32)
        q.flags.writeable = False
        return q

    def scope(self, query: str, asked: str | None = None) -> Scope:
        return parse_scope(query, self.chapters, self.aliases, asked, self.guest_names)

    def scope_of(self, question: Question) -> Scope:
        """Where ``question`` asks to look, as searched: whom a follow-up names is whom it asks
        about, not whom the last question named ("Does Natalie go along with that?" after "What
        does Michael wish existed?")."""
        scope = self.scope(question.standalone, question.text)
        if question.follows_up:
            scope = replace(scope, speaker=named_speaker(question.text, self.aliases) or scope.speaker)
        return scope

    def past_end(self, question: Question) -> tuple[float, float, int] | None:
        """(the time named, the end of the last words, the episodes) when the question names a
        time after the last words of every episode it may search ("an hour in", of a 41-minute
        episode); None otherwise. Estimated times and the outro leave a margin (``PAST_END_S``)."""
        t = self.scope(question.standalone).time_s
        if t is None or not self.chunks:
            return None
        allowed = self._allowed(question.filters)
        if not allowed.any():
            return None
        end = float(self.ends[allowed].max())
        episodes = len(np.unique(self.columns.episode[allowed])) if len(self.columns.episode) else 1
        return (t, end, episodes) if t > end + PAST_END_S else None

    def search(self, question: Question, candidates: int = 40) -> Evidence:
        """The question's passages, best first: ``question.k`` of them (``question.depth`` for an
        answerer that reads more; at least ``ACROSS_PASSAGES`` for a question across episodes; at
        most ``per_episode`` of any one episode), and the signals its refusal reads, computed when
        first read (a semantic coverage costs a query-encoder pass per unseen word, ~3 ms). A
        follow-up is searched by its standalone form; one about the last answer favours the passages
        soon after the times it cited (``_after``); one that names a new topic does not, and has
        its coverage judged on its own words (``query.new_topic``)."""
        k = max(question.k, question.depth, ACROSS_PASSAGES if question.across else 0)
        candidates = max(candidates, k)
        per_episode = question.per_episode or (ACROSS_PER_EPISODE if question.across else None)
        if not self.chunks:
            return Evidence(question, (), lambda: NOTHING)
        query = searched_as(question, self.guest_names)
        scope = self.scope_of(question)
        allowed = self._allowed(question.filters)
        if not allowed.any():
            return Evidence(question, (), lambda: NOTHING)
        if scope.time_s is not None:
            allowed = self._near_time(query, scope, allowed)
        after = self._after(question.previous) if leans_on_last_answer(question, scope) else None
        with self.index.reading():
            picked, (fused, dense, _, sent_best, bm25) = self._rank(
                query, scope, after, allowed, k, candidates, question.variants, per_episode)
            own, new = (question.text if question.follows_up else None), new_topic(question, scope)
            hits = tuple(self._hits(query, scope, picked, fused, dense, sent_best, bm25, own=own, new=new))

        def measure() -> Signals:
            asked, prior = own_words(question, scope), self.question_prior is not None
            best = [self.chunks[i] for i in picked[:3]]
            # A follow-up on a new topic is judged on its own words, as if asked alone: "What about
            # music?" after a question on Sora is searched with both but is about music alone.
            own = None if asked == query else self._similarities(asked, scope, allowed)
            return Signals(coverage=self.words.coverage(asked, scope=scope),
                           local_coverage=self.words.coverage(asked, best, scope=scope),
                           semantic_coverage=self.words.semantic_coverage(asked, scope=scope),
                           answer=self.answer_probability(dense if own is None else own[0], allowed),
                           dense=None if own is None else float(own[0][allowed].max()),
                           sentence=None if own is None else float(own[2][allowed].max()),
                           distrust=self.question_prior.distrust(self.query_vector(asked)) if prior else 0.0,
                           absent=self.words.absent_names(question, scope),
                           only_scope=only_scope(asked, scope))

        return Evidence(question, hits, measure)

    def _hits(self, query, scope, picked, fused, dense, sent_best, bm25, own=None, new=False) -> list[Hit]:
        """The picked passages as hits, each with its sentences scored for how well they answer.

        Which sentences answer is judged on what is asked, not on all that is searched
        (docs/experiments.md has the figures):
        - A speaker's name is left out: with it, "What did Chris ask about rivals?" preferred a
          sentence that mentions Chris. The ranking keeps it.
        - A follow-up (``own``: its words as asked) is searched with the last question, which finds
          the topic but draws the answer back to what was already said ("How long does it run?"
          after a question on a contest quoted the contest again): its sentences are judged on the
          mean of both.
        - Through the adapter's sentence head, where there is one (``adapters.SentenceHead``)."""
        answer_sims = self._answer_sims(self.answer_texts(query, scope, own, new), scope, picked)
        hits = []
        shown = np.inf
        for rank, i in enumerate(picked, 1):
            chunk = self.chunks[i]
            matched = self._sentence_order(i, answer_sims)
            # The rank is the contract: MMR and part interleaving may place a passage above a
            # higher-scored one, so the score shown never exceeds the one ranked above it.
            shown = min(shown, float(fused[i]))
            hits.append(Hit(chunk=chunk, score=shown, rank=rank, matched=matched, scores={
                "dense": float(dense[i]), "sentence": float(sent_best[i]), "bm25": float(bm25[i]),
                "bm25_max": float(bm25.max()) if len(bm25) else 0.0,
                "dense_rank": int((dense > dense[i]).sum()) + 1,
                "bm25_rank": int((bm25 > bm25[i]).sum()) + 1,
                "sentence_scores": {int(si): float(s) for si, s in self._sentence_scores(i, answer_sims)}}))
        return hits

    def answer_texts(self, query: str, scope: Scope, own: str | None = None, new: bool = False) -> list[str]:
        """What a sentence's answer score is measured against (``_hits`` says why): the question as
        searched without the speaker it is scoped to, and a follow-up's own words; those alone for a
        follow-up on a new topic (``new``: "What about Gen-1?" after Gen-2 quoted Gen-2's passage)."""
        texts = [own] if own and new else [query, own] if own else [query]
        return [without_speaker(t, scope.speaker, self.aliases) if scope.speaker else t for t in texts]

    def _answer_sims(self, texts: list[str], scope: Scope, picked: Sequence[int]) -> dict[int, float]:
        """How well each sentence window of the ``picked`` passages answers (window row -> score):
        its similarity to each of ``texts`` (averaged), the question's vector mapped by the adapter's
        sentence head where there is one (``adapters.SentenceHead``), plus the scoped speaker's bonus."""
        rows = self.window_rows(picked)
        if not len(rows):
            return {}
        head = self.sentence_head or (lambda q: q)
        queries = np.stack([head(self.query_vector(t)) for t in texts])
        with self.index.reading():
            sims = (self.index.window_vectors(rows) @ queries.T).mean(axis=1) + self.speaker_bonus(scope, rows)
        return dict(zip(rows.tolist(), sims.tolist()))

    def speaker_bonus(self, scope: Scope, rows=slice(None)) -> np.ndarray:
        """What each window (of ``rows``) adds to its similarity for being the scoped speaker's: "What
        did Chris ask about X": his sentences about X beat the other's. Zeros without a speaker."""
        speakers = self.columns.sentence_speaker[rows]
        ours = speakers == self._speaker_code(scope.speaker) if scope.speaker else np.zeros(len(speakers), bool)
        return (SPEAKER_BONUS * ours).astype(np.float32)

    def window_rows(self, passages: Sequence[int]) -> np.ndarray:
        """The rows of the sentence windows of ``passages`` (chunk numbers), in their order."""
        if not len(passages):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self.sent_start[i], self.sent_start[i + 1]) for i in passages])

    def _similarities(self, text: str, scope: Scope, allowed: np.ndarray):
        """``_dense`` for other words than were searched: the passages', the sentence windows' and
        each passage's best window's similarities to ``text``."""
        with self.index.reading():
            return self._dense(self.query_vector(text), text, scope, allowed=allowed)

    def _allowed(self, filters: Filters) -> np.ndarray:
        """The passages the filters admit (show and episode, a catalog's usual filters, first)."""
        allowed = np.ones(len(self.chunks), dtype=bool)
        if filters == Filters():
            return allowed
        if filters.episode:
            allowed &= self.chunk_episodes == filters.episode.lower()
        if filters.show:
            allowed &= np.isin(self.chunk_shows, [s for s in set(self.chunk_shows.tolist())
                                                  if same_show(filters.show, s)])
        if filters.chapter:
            want = filters.chapter.lower()
            names = np.char.lower(self.columns.chapters)
            allowed &= np.isin(self.columns.chapter, np.flatnonzero((names == want) | (np.char.find(names, want) >= 0)))
        if filters.speaker:
            allowed &= self._spoken_by(np.flatnonzero(np.char.find(np.char.lower(self.columns.speakers),
                                                                  filters.speaker.lower()) >= 0))
        if filters.start_s is not None:
            allowed &= self.ends >= filters.start_s
        if filters.end_s is not None:
            allowed &= self.starts <= filters.end_s
        return allowed

    def _near_time(self, query: str, scope: Scope, allowed: np.ndarray) -> np.ndarray:
        """A question that names a time ("around the 25-minute mark") searches the passages within
        ``TIME_WINDOWS[0]`` seconds of it, its topic ranking them; the window widens only when no
        passage in it uses one of the topic's words, and past the last width the time is a boost."""
        words = search_words(query, scope)
        bm25 = self.lexical.passage_scores(words) if words else None
        t = scope.time_s
        spans = (self.starts <= t) & (self.ends >= t)            # a long passage said across it
        for width in TIME_WINDOWS:
            near = allowed & (spans | (np.abs(self.starts - t) <= width))
            if near.any() and (bm25 is None or (bm25[near] > 0).any()):
                return near
        return allowed

    def _spoken_by(self, speakers: np.ndarray) -> np.ndarray:
        """The passages in which one of these speaker codes says one of its own sentences."""
        out = np.zeros(len(self.chunks), dtype=bool)
        out[self.sent_rows[np.isin(self.columns.sentence_speaker, speakers), 0]] = True
        return out

    def answer_probability(self, dense: np.ndarray, allowed: np.ndarray) -> float | None:
        """The adapter's answer head (``adapters.head_probability``): the calibrated probability that the
        answer is among the passages, from the best and second-best passage similarity; None
        when the model has no head."""
        if self.answer_head is None or not allowed.any():
            return None
        from .adapters import head_probability

        top = np.sort(dense[allowed])[::-1]
        return head_probability(self.answer_head, float(top[0]), float(top[1] if len(top) > 1 else top[0]))

    def _rank(self, query: str, scope: Scope, after: np.ndarray | None, allowed: np.ndarray,
              k: int, candidates: int, variants: Sequence[str] = (), per_episode: int | None = None):
        fused, dense, sent_sims, sent_best, bm25 = self._score(query, scope, after, allowed)
        if variants:
            # The question counts twice: a rewrite guesses the words the speakers used, which may
            # find the passage the question's own words miss, but a bad guess must not outvote it.
            others = [self._score(v, scope, after, allowed)[0] for v in variants]
            fused = (2 * fused + sum(others)) / (2 + len(others))
        pool = max(candidates, EPISODE_POOL) if per_episode else candidates
        top = np.argpartition(-fused, pool)[:pool] if len(fused) > pool else np.arange(len(fused))
        top = top[np.lexsort((top, -fused[top]))]  # best first; ties by position, as a stable sort
        order = self.index.present([int(i) for i in top if np.isfinite(fused[i])])
        if per_episode:
            order = self._per_episode(order, per_episode)[:candidates]
        if self.reranker is not None:
            order, fused = self._reranked(query, order, fused)
        return self._mmr(order, fused, k), (fused, dense, sent_sims, sent_best, bm25)

    def _reranked(self, query: str, order: list[int], fused: np.ndarray) -> tuple[list[int], np.ndarray]:
        """The passage reranker's order of the best ``depth`` candidates, by z(hybrid) + ``weight``
        x z(cross). They take the hybrid's scores in their new order, so what ranks below them does
        not move and a score never exceeds the one ranked above it."""
        from .reranking import reorder

        settings = self.reranker.settings
        head = order[: int(settings.get("depth", PASSAGE_RERANK_DEPTH))]
        if len(head) < 2:
            return order, fused
        cross = np.asarray(self.reranker.score(query, [self.chunks[i].text for i in head]), dtype=np.float64)
        first = fused[head]
        new = [head[j] for j in reorder(first, cross, float(settings.get("weight", 1.0)))]
        fused = fused.copy()
        fused[new] = np.sort(first)[::-1]
        return new + order[len(head):], fused

    def _per_episode(self, order: list[int], cap: int) -> list[int]:
        """``order`` (best first) keeping at most ``cap`` passages of each episode."""
        seen: Counter = Counter()
        kept = []
        for row, episode in zip(order, self.columns.episode[np.asarray(order, dtype=np.int64)].tolist()):
            seen[episode] += 1
            if seen[episode] <= cap:
                kept.append(row)
        return kept

    def _score(self, query: str, scope: Scope, after: np.ndarray | None, allowed: np.ndarray):
        """Fused scores of every passage for one wording, with the signals behind them."""
        w = self.weights
        q = self.query_vector(query)
        qwords = search_words(query, scope)  # "at the very beginning" is scope, not topic
        bm25 = self.lexical.passage_scores(qwords) if qwords else np.zeros(len(self.chunks), np.float32)
        sent_lex = np.zeros(len(self.chunks), dtype=np.float32)
        # Not across a catalog (a large index: see Store.large): there the best window's BM25 ranks
        # worse, not better (docs/experiments.md), and costs most (7 ms of a 31 ms search).
        if qwords and len(self.sent_rows) and w.sentence_bm25 and not self.index.large:
            # Each passage's best window: its windows are consecutive rows.
            scores = self.lexical.window_scores(qwords, bm25)
            sent_lex[self._has_windows] = np.maximum.reduceat(scores, self.sent_start[:-1][self._has_windows])
        dense, sent_sims, sent_best, stats = self._dense(q, query, scope, lexical=(bm25, sent_lex), allowed=allowed)
        fused = self._combine(dense, sent_best, bm25, sent_lex, scope, bool(qwords), after, allowed, stats)
        return fused, dense, sent_sims, sent_best, bm25

    def _dense(self, q: np.ndarray, query: str, scope: Scope, lexical: Sequence[np.ndarray] = (),
               allowed: np.ndarray | None = None):
        """Passage similarities, sentence-window similarities, each passage's best window, and the
        population statistics of the first and third where they are estimated (see ``fusion.fuse``).

        Up to ``ANN_MIN`` passages every passage vector is scored. Past that (a catalog) the
        candidates are the HNSW graph's ``ANN_CANDIDATES`` nearest and the top of either BM25
        (``lexical``), or every passage the filters leave when those are fewer than ``ANN_MIN``;
        they are scored exactly, the rest get the lowest similarity among the graph's neighbours
        (an upper bound on theirs), and the mean and spread of the similarities come from a fixed
        sample of passages.

        Up to ``EXACT_SENTENCES`` windows every one is scored. Past that (an index of many
        episodes), reading every window's vector costs more than the rest of the search (116,000
        windows: 179 MB a question, ~15 ms), so only the windows of the passages that the passage
        vectors or either BM25 (``lexical``) rank in their top ``SENTENCE_CANDIDATES`` are scored:
        the others' windows are NaN, and their best window is guessed from their passage similarity.
        The windows are compared with the question's vector as the sentence head maps it, where there
        is one (``adapters.SentenceHead``): a passage whose best sentence answers ranks higher."""
        qs = self.sentence_head(q) if self.sentence_head is not None else q
        stats: dict[str, tuple[float, float]] = {}
        cand, narrow = None, False
        if self.index.scans:
            dense = self.index.chunk_vectors @ q
        else:
            narrow = allowed is not None and int(allowed.sum()) < ANN_MIN
            ids = self.index.nearest(q, ANN_CANDIDATES, allowed if narrow else None)
            tops = [t[allowed[t]] for t in _tops(lexical)] if narrow else _tops(lexical)
            cand = np.unique(np.concatenate([ids, *tops])).astype(np.int64)
            exact = self.index.passage_vectors(cand) @ q if len(cand) else np.zeros(0, np.float32)
            near = exact[np.isin(cand, ids)]
            floor = float(near.min()) if len(near) else float(exact.min()) if len(exact) else 0.0
            dense = np.full(len(self.chunks), floor, dtype=np.float32)
            dense[cand] = exact
            sample = self._sample @ q
            stats["dense"] = (float(sample.mean()), float(sample.std()))
        if self.index.scans and len(self.sent_rows) <= EXACT_SENTENCES:
            sent_sims = self.index.sentence_vectors @ qs if len(self.sent_rows) else np.zeros(0, np.float32)
            scored = slice(None)
        else:
            # With the graph, the passage candidates are already the top of each signal.
            chunks = cand if cand is not None and not narrow else np.unique(np.concatenate(_tops((dense, *lexical))))
            starts = self.sent_start[chunks]
            counts = self.sent_start[chunks + 1] - starts
            # The windows of those passages, in order: each passage's rows are consecutive.
            scored = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            sent_sims = np.full(len(self.sent_rows), np.nan, dtype=np.float32)
            if len(scored):
                sent_sims[scored] = self.index.window_vectors(scored) @ qs
        if scope.speaker and len(sent_sims):
            sent_sims = sent_sims + self.speaker_bonus(scope)
        sent_best = np.full(len(self.chunks), -np.inf, dtype=np.float32)
        if len(sent_sims):
            np.maximum.at(sent_best, self.sent_rows[scored, 0], sent_sims[scored])
            unscored = ~np.isfinite(sent_best)
            if unscored.any():
                # An unscored passage's best window, guessed from its passage similarity by the
                # typical gap between the two among the scored ones.
                gap = float(np.median(sent_best[~unscored] - dense[~unscored])) if (~unscored).any() else 0.0
                sent_best[unscored] = dense[unscored] + gap
                if "dense" in stats:
                    stats["sentence"] = (stats["dense"][0] + gap, stats["dense"][1])
        return dense, sent_sims, sent_best, stats

    def _combine(self, dense, sent_best, bm25, sent_lex, scope: Scope, topical: bool,
                 after: np.ndarray | None, allowed: np.ndarray, stats: dict | None = None) -> np.ndarray:
        w = self.weights
        stats = stats or {}
        fused = fuse(len(self.chunks), [(w.dense, dense, stats.get("dense")),
                                        (w.sentence, sent_best, stats.get("sentence")),
                                        (w.bm25, bm25, None), (w.sentence_bm25, sent_lex, None)])
        boost = self._scope_boost(scope)
        if boost.any() and not topical:
            # Nothing to match but the scope ("what do they talk about at the end?"): the scope
            # decides and the topical signals, which only saw filler words, just break ties.
            fused = boost + 0.1 * fused
        else:
            fused += boost
        if after is not None and w.followup:
            fused += w.followup * after
        fused[~allowed] = -np.inf
        return fused

    def _near(self, times: Sequence[float], after_s: float, before_s: float | None = None) -> np.ndarray:
        """1 for passages spanning one of ``times``, falling off as a Gaussian of the distance over
        ``after_s`` seconds after a time and ``before_s`` (the same unless given) before it."""
        out, before_s = np.zeros(len(self.chunks)), before_s or after_s
        for t in times:
            late, early = np.maximum(self.starts - t, 0.0), np.maximum(t - self.ends, 0.0)
            out = np.maximum(out, np.exp(-np.square(np.where(early > 0, early / before_s, late / after_s))))
        return out

    def _after(self, previous: Exchange) -> np.ndarray:
        """``_near`` the first three times the last answer cited, mostly after them (its follow-up's
        answer mostly comes later), and only in the episodes it cited: their times say nothing of
        another episode's. Labels that name no episode of this index ("[at 13:36]" in a client's
        text) keep it everywhere, as no label does."""
        near = self._near(previous.times[:3], FOLLOW_AFTER_S, FOLLOW_BEFORE_S)
        cited = np.isin(self.chunk_episodes, sorted({e.lower() for e in previous.episodes}))
        return near * cited if cited.any() else near

    def _scope_boost(self, scope: Scope) -> np.ndarray:
        w = self.weights
        boost = np.zeros(len(self.chunks))
        target = scope.time_s
        if target is None and scope.position and self.duration:
            target = 60.0 if scope.position == "start" else self.duration - 90.0
        if target is not None:
            boost += w.time * self._near([target], 150.0)
        if scope.chapter:
            boost += w.chapter * (self.columns.chapters[self.columns.chapter] == scope.chapter)
        if scope.speaker:
            boost += w.speaker * self._spoken_by(np.array([self._speaker_code(scope.speaker)]))
        return boost

    def _speaker_code(self, name: str) -> int:
        found = np.flatnonzero(self.columns.speakers == name)
        return int(found[0]) if len(found) else -1

    def _mmr(self, order: list[int], fused: np.ndarray, k: int) -> list[int]:
        """Maximal marginal relevance: skip passages that mostly repeat one already picked."""
        if len(order) <= 1:
            return order[:k]
        rel = fused[order]
        rel = (rel - rel.min()) / (rel.max() - rel.min() + 1e-9)
        lam = self.weights.mmr_lambda
        vecs = self.index.passage_vectors(order)
        sims = vecs @ vecs.T                      # candidate-to-candidate similarity, once
        redundancy = np.zeros(len(order))         # max similarity to anything picked so far
        available = np.ones(len(order), dtype=bool)
        picked: list[int] = []
        while available.any() and len(picked) < k:
            score = np.where(available, lam * rel - (1 - lam) * redundancy, -np.inf)
            best = int(np.argmax(score))
            picked.append(best)
            available[best] = False
            redundancy = np.maximum(redundancy, sims[best])
        return [order[j] for j in picked]

    def _sentence_scores(self, chunk_no: int, sims: dict[int, float]) -> list[tuple[int, float]]:
        rows = range(self.sent_start[chunk_no], self.sent_start[chunk_no + 1])
        return [(int(self.sent_rows[r, 1]), sims[r]) for r in rows if r in sims]

    def _sentence_order(self, chunk_no: int, sims: dict[int, float]) -> tuple[int, ...]:
        scored = sorted(self._sentence_scores(chunk_no, sims), key=lambda x: -x[1])
        return tuple(si for si, _ in scored)
