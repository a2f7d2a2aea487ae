"""The library API. The CLI, the HTTP server and the MCP server are thin layers over this module.

    assistant = Assistant.load()                 # the shipped episode; builds its index if needed
    answer = assistant.ask("How did Runway start?")
    for hit in assistant.search("funding", k=3, chapter="Navigating funding and customers"): ...
    session = assistant.chat(); session.ask("What did he study?"); session.ask("And why?")
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from .answer.base import Answerer, AnswerStream, collect
from .answer.extractive import DEFAULT_SELECTOR, ExtractiveAnswerer, answering_for
from .answer.refusal import CATALOG_EPISODES, RefusalPolicy, policy_for
from .config import DEFAULT_INDEX, Config
from .embedding import Embedder, make_embedder
from .errors import IndexNotFound, InputError, StaleIndex
from .inputs import check_history, check_question, check_span
from .query import (asks_for_a_summary, chat_turn, condense, last_turn, not_a_question, outline, past_the_end,
                    spans_episodes)
from .retrieval import Retriever, Weights
from .stores import open_store
from .stores.files import StoredIndex
from .stores.passages import check_index_name, slug
from .text import clean_text
from .types import Answer, Chapter, Evidence, Exchange, Filters, Hit, Question, Transcript

Progress = Callable[[str, int, int], None]
BACKENDS = ("auto", "extractive", "openai")


def build_index(sources: Sequence[str | Path] | None = None, *, name: str | None = None,
                config: Config | None = None, embedder: Embedder | None = None,
                progress: Progress | None = None) -> Path:
    """Parse transcript files (the shipped episode when none) and write index ``name``."""
    from .parsers import default_sources, load_default_episode

    if name is not None:
        check_index_name(name)  # before anything is read or written
    config = config or Config.from_env()
    embedder = embedder or make_embedder(config.embed_model, cache_dir=config.index_dir / ".cache",
                                         adapter_path=config.adapter)
    if sources:
        from .catalog.shows import recurring_hosts
        from .catalog.sources import expand, read_transcripts

        files = expand(sources)
        in_folder = {path for path, member in files if member}
        sources = _unique([path for path, _ in files], progress)
        transcripts = recurring_hosts(read_transcripts(sources, in_folder, progress))
        name = name or (slug(transcripts[0].episode.id) if len(transcripts) == 1 else "custom")
    else:
        transcripts, sources = [load_default_episode()], default_sources()
        name = name or DEFAULT_INDEX
    return open_store(config).write(transcripts, sources, name=name, embedder=embedder, progress=progress)


def _unique(sources: Sequence[str | Path], progress: Progress | None) -> list[str | Path]:
    """The sources without repeats (the same file by its resolved path), in the order given."""
    seen: set[Path] = set()
    unique = []
    for source in sources:
        key = Path(source).resolve()
        if key in seen:
            if progress:
                progress(f"note: {source} is given more than once; indexed once", 0, 0)
            continue
        seen.add(key)
        unique.append(source)
    return unique


def open_index(name: str | None = None, *, config: Config, embedder: Embedder,
               progress: Progress | None = None) -> StoredIndex:
    """Load an index from the configured store. The shipped episode's own index is (re)built when
    missing or stale; another stale one is rebuilt from its sources when they have not changed
    (what `rag index` with the recorded paths would do). Changed or missing sources, a corrupt
    index, or one in a database that other processes may be serving, still refuse with the
    command that fixes them."""
    from .parsers import default_sources

    if name is not None:
        check_index_name(name)
    name = name or DEFAULT_INDEX
    store = open_store(config)
    shipped = name == DEFAULT_INDEX
    sources = default_sources() if shipped else None
    try:
        return store.open(name, model=embedder.name, sources=sources)
    except (IndexNotFound, StaleIndex) as err:
        stale = isinstance(err, StaleIndex)
        rebuild = None if shipped else store.rebuild_sources(name) if stale else None
        if not shipped and rebuild is None:
            raise
        if stale:
            store.discard(name)
    build_index(rebuild, name=name, config=config, embedder=embedder, progress=progress)
    return store.open(name, model=embedder.name, sources=sources)


def _answerers(retriever: Retriever, config: Config, chat_model=None, reranker=None,
               adapter: Path | None = None) -> tuple[ExtractiveAnswerer, Answerer]:
    """The extractive answerer for this index, and the answerer to use (the chat model's, with
    the extractive one as its fallback, when there is a model: it reads ``config.context_tokens``
    of passages). ``adapter``: the embedding adapter, whose fitted selector and refusal policy
    (``answering.json``) it uses when there."""
    several = len(retriever.index.transcripts) > 1  # citations then name their episode
    episodes = len(retriever.index.transcripts)
    # The policies read the answer head; a reranker with a probability of its own replaces that
    # feature, and then only a policy calibrated with one (``+rerank``, or its file's) applies.
    reads_head = reranker is None or reranker.probability(0.0) is None
    policy = policy_for(retriever.embedder.name, reranked=not reads_head, episodes=episodes)
    fitted = answering_for(adapter)
    trained = dict(getattr(reranker, "settings", None) or {}) if reranker is not None else {}
    if fitted.policy is not None and reads_head and episodes < CATALOG_EPISODES:
        policy = fitted.policy
    if trained.get("policy") and episodes < CATALOG_EPISODES:   # fitted with the selector's probability
        policy = RefusalPolicy(**trained["policy"])
    extractive = ExtractiveAnswerer(policy=policy, selector=fitted.selector or DEFAULT_SELECTOR, reranker=reranker,
                                    hosts=retriever.hosts, guests=retriever.guests, episode_labels=several,
                                    **({"rerank_depth": int(trained["depth"])} if "depth" in trained else {}),
                                    **({"rerank_weight": float(trained["weight"])} if "weight" in trained else {}))
    if chat_model is None:
        return extractive, extractive
    from .answer.generative import ChatAnswerer
    from .tokens import encoding_for

    return extractive, ChatAnswerer(chat_model, fallback=extractive, episode_labels=several,
                                    token_budget=config.context_tokens,
                                    encoding=encoding_for(getattr(chat_model, "name", config.chat_model)))


REFRESH_S = 1.0  # how often a process asks the database whether an index has changed


@dataclass
class Assistant:
    """A loaded index with its retriever and answerers. Safe to share between threads."""

    index: StoredIndex
    retriever: Retriever
    answerer: Answerer
    config: Config
    chat_model: object | None = None
    notice: str | None = None            # e.g. "no chat model configured; using extractive answers"
    extractive: ExtractiveAnswerer = field(default_factory=ExtractiveAnswerer)
    reranker: object | None = None       # reranking.Reranker: rescores the answer's stretches
    _checked: float = field(default=0.0, repr=False)
    _reloading: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, index: str | None = None, *, backend: str = "auto", config: Config | None = None,
             embedder: Embedder | None = None, chat_model=None,
             progress: Progress | None = None) -> "Assistant":
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if index is not None:
            check_index_name(index)  # before the model or any file is touched
        config = config or Config.from_env()
        embedder = embedder or make_embedder(config.embed_model, cache_dir=config.index_dir / ".cache",
                                         adapter_path=config.adapter)
        stored = open_index(index, config=config, embedder=embedder, progress=progress)
        from .reranking import make_reranker

        onnx_cache = config.index_dir / ".cache" / "onnx"
        fusion = answering_for(config.adapter).fusion
        retriever = Retriever(stored, embedder, Weights(**fusion) if fusion else Weights(),
                              reranker=make_reranker(config.passages, embedder, cache_dir=onnx_cache))
        notice = None
        if backend in ("auto", "openai"):
            if chat_model is None and config.chat_configured:
                from .chat_models import OpenAIChatModel

                chat_model = OpenAIChatModel(config.chat_model, api_key=config.openai_api_key,
                                             base_url=config.openai_base_url,
                                             first_token_timeout=config.chat_timeout[0],
                                             total_timeout=config.chat_timeout[1])
            if chat_model is None and backend == "openai":
                notice = ("no chat model configured (set OPENAI_API_KEY or OPENAI_BASE_URL); "
                          "using the extractive answerer")
        reranker = make_reranker(config.reranker, embedder, cache_dir=onnx_cache)
        extractive, answerer = _answerers(retriever, config, chat_model if backend in ("auto", "openai") else None,
                                          reranker, config.adapter)
        from .stores.files import missing_note

        notice = "; ".join(n for n in (missing_note(stored), notice) if n) or None
        return cls(index=stored, retriever=retriever, answerer=answerer, config=config,
                   chat_model=chat_model, notice=notice, extractive=extractive, reranker=reranker)

    # --- what the index holds ---------------------------------------------------------------

    def refresh(self) -> bool:
        """Reload an index kept in a database when another process has written to it since (at
        most one check a second; one thread reloads while the others keep answering from what
        they have). Returns whether it reloaded. A file index never changes under a process."""
        current = getattr(self.index, "current_generation", None)
        now = time.monotonic()
        if current is None or now - self._checked < REFRESH_S or not self._reloading.acquire(blocking=False):
            return False
        try:
            self._checked = now
            if current() == self.index.generation:
                return False
            embedder = self.retriever.embedder
            index = open_store(self.config).open(self.index.name, model=embedder.name)
            retriever = Retriever(index, embedder, self.retriever.weights, self.retriever.reranker)
            chat_model = self.chat_model if self.answerer is not self.extractive else None
            extractive, answerer = _answerers(retriever, self.config, chat_model, self.reranker,
                                              self.config.adapter)  # its hosts, its episode labels
            self.index, self.retriever, self.extractive, self.answerer = index, retriever, extractive, answerer
            return True
        finally:
            self._reloading.release()

    @property
    def name(self) -> str:
        return self.index.name

    @property
    def transcripts(self) -> list[dict]:
        return list(self.index.transcripts)

    @property
    def chapters(self) -> list[Chapter]:
        return [Chapter(title=c["title"], start_s=c["start_s"], index=i + 1, sponsor=c.get("sponsor", False))
                for t in self.index.transcripts for i, c in enumerate(t.get("chapters", []))]

    @property
    def backend(self) -> str:
        return self.answerer.name

    # --- operations -------------------------------------------------------------------------

    def question(self, text: str, *, k: int = 5, chapter: str | None = None, speaker: str | None = None,
                 start_s: float | None = None, end_s: float | None = None, show: str | None = None,
                 episode: str | None = None, per_episode: int | None = None, previous: Exchange | None = None,
                 standalone: str | None = None, variants: Sequence[str] = (), deadline=None) -> Question:
        """The question checked and typed, once: every door (the command line, HTTP, MCP, chat and
        this API) asks and searches through it. ``show``, ``episode``: only that show's or episode's
        passages (see ``episodes``). ``per_episode``: at most this many passages of one episode; by
        default a question asked of many episodes of an index of several ("what have guests said
        about X?") gets ``retrieval.ACROSS_PER_EPISODE``, else no limit. ``previous``: the last turn
        of a conversation; ``standalone``: the text as searched (a follow-up with its context)."""
        text = check_question(text)
        if k < 1 or k > 100:
            raise InputError(f"k must be between 1 and 100, not {k}")
        if per_episode is not None and (isinstance(per_episode, bool) or not isinstance(per_episode, int)
                                        or not 1 <= per_episode <= 100):
            raise InputError(f"per_episode must be a whole number between 1 and 100, not {per_episode!r}")
        self.refresh()
        chapter, speaker = (clean_text(v) if isinstance(v, str) else v for v in (chapter, speaker))
        show, episode = (clean_text(v).strip() or None if isinstance(v, str) else v for v in (show, episode))
        check_span(start_s, end_s)
        self._check_scope(show, episode)
        self._check_speaker(speaker)
        filters = Filters(chapter=chapter, speaker=speaker, start_s=start_s, end_s=end_s, show=show,
                          episode=episode)
        standalone = standalone or text
        across = self.extractive.episode_labels and episode is None and spans_episodes(standalone)
        return Question(text=text, standalone=standalone, previous=previous, filters=filters, k=k,
                        across=across, per_episode=per_episode, variants=tuple(variants), deadline=deadline)

    def evidence(self, question: str, *, k: int = 5, history: Sequence[tuple[str, str]] = (),
                 **filters) -> Evidence:
        """What an answer to ``question`` (after ``history``) reads: the typed question and what
        retrieval found for it, without the chat model's rewrites (what evaluation and training
        score)."""
        history = check_history(history)
        previous = last_turn(history)
        standalone = self.standalone(question, history, previous=previous)
        asked = self.question(question, k=k, previous=previous, standalone=standalone, **filters)
        return self.retriever.search(asked)   # after question(): it may have reloaded the retriever

    def search(self, query: str, *, k: int = 5, variants: Sequence[str] = (), **filters) -> list[Hit]:
        """The passages for ``query``, best first (the filters and ``per_episode`` as in ``question``).
        ``variants``: other wordings to search for alongside it (see ``rewrites``)."""
        asked = self.question(query, k=k, variants=variants, **filters)
        return list(self.retriever.search(asked).hits)   # after question(): it may have reloaded the retriever

    def episodes(self, show: str | None = None) -> list[dict]:
        """The index's episodes (id, show, number, title, url, hosts, guests, duration_s, passages),
        in the order indexed; only ``show``'s when given."""
        import numpy as np

        from .shows import same_show

        show = clean_text(show).strip() or None if isinstance(show, str) else show
        self.refresh()
        cols = self.index.columns
        counts = np.bincount(cols.episode, minlength=len(cols.episodes))
        last = np.zeros(len(cols.episodes))
        np.maximum.at(last, cols.episode, cols.end_s)
        passages = dict(zip(cols.episodes.tolist(), counts.tolist()))
        ends = dict(zip(cols.episodes.tolist(), last.tolist()))
        out = []
        for t in self.index.transcripts:
            ep = t["episode"]
            if show and not same_show(show, ep.get("show", "")):
                continue
            out.append({"id": ep["id"], "show": ep.get("show", ""), "number": ep.get("number", ""),
                        "title": ep.get("title", ""), "url": ep.get("url", ""),
                        "hosts": list(ep.get("hosts", [])), "guests": list(ep.get("guests", [])),
                        "duration_s": round(ends.get(ep["id"], 0.0), 1),
                        "passages": passages.get(ep["id"], 0)})
        return out

    def _check_scope(self, show: str | None, episode: str | None) -> None:
        """A show or episode filter must name one this index holds: an empty result would read as
        "nothing matches" when the name is simply wrong."""
        if show is None and episode is None:
            return
        from .shows import same_show

        episodes = [t["episode"] for t in self.index.transcripts]
        if episode is not None and not any(e["id"].lower() == episode.lower() for e in episodes):
            raise InputError(f"index {self.name!r} holds no episode {episode!r}; "
                             f"`rag episodes --index {self.name}` lists them")
        if show is not None and not any(same_show(show, e.get("show", "")) for e in episodes):
            shows = sorted({e.get("show") for e in episodes if e.get("show")})
            raise InputError(f"index {self.name!r} holds no show {show!r}"
                             + (f"; it holds {', '.join(shows)}" if shows else "; its episodes name no show"))

    def _check_speaker(self, speaker: str | None) -> None:
        """A speaker filter must match a speaker of this index (all or part of a name, in any case,
        as the retriever matches it): "--speaker Nobody" would read as "nothing matches"."""
        if not speaker:
            return
        names = self.index.columns.speakers.tolist()   # unique, in order of first appearance
        if not any(speaker.lower() in n.lower() for n in names):
            shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more (`rag episodes --index {self.name}`"
                                             " lists each episode's)" if len(names) > 12 else "")
            raise InputError(f"no speaker matches {speaker!r}; the speakers are: {shown}")

    def _check_chapter(self, chapter: str | None) -> None:
        """A question scoped to a chapter must name a chapter of this index (its title, or part of
        it, in any case), as the retriever matches it: a wrong one would read as "not covered".
        A search is a filter, and a filter that matches nothing is an empty result."""
        if chapter is None:
            return
        titles = self.retriever.chapters
        want = chapter.strip().lower()
        if not want or not any(want in t.lower() for t in titles):
            shown = "; ".join(titles[:12]) + ("; …" if len(titles) > 12 else "")
            raise InputError(f"no chapter matches {chapter!r}"
                             + (f"; the chapters are: {shown}" if titles else "; this index has no chapters"))

    def deadline(self):
        """One deadline for all the chat-model calls of one answer (``RAG_CHAT_TIMEOUT``)."""
        from .chat_models import Deadline

        return Deadline.start(*self.config.chat_timeout)

    def rewrites(self, question: str, deadline=None) -> tuple[list[str], str | None]:
        """The chat model's search rewrites of ``question`` when ``RAG_QUERY_REWRITE`` is on and a
        chat model is configured, else none; with a note when the model failed (the question is
        then searched as it is)."""
        if self.chat_model is None or not self.config.query_rewrite:
            return [], None
        from .answer.generative import rewrite_queries
        from .errors import ChatModelError

        try:
            return rewrite_queries(self.chat_model, question, deadline=deadline), None
        except ChatModelError as err:
            return [], f"query rewriting failed ({err}); searched the question as asked"

    def standalone(self, question: str, history: Sequence[tuple[str, str]] = (),
                   deadline=None, previous: Exchange | None = None) -> str:
        """The question rewritten to stand alone, given earlier (question, answer) turns (and the
        last of them as an ``Exchange``, when known)."""
        question = check_question(question)
        if not history and previous is None:
            return question
        if self.chat_model is not None and history:
            from .answer.generative import condense_question
            from .errors import ChatModelError

            try:
                return condense_question(self.chat_model, list(history), question,
                                         deadline=deadline)
            except ChatModelError:
                pass  # the deterministic rule below still gives a usable question
        return condense(question, previous or last_turn(history))

    def stream(self, question: str, *, k: int = 5, history: Sequence[tuple[str, str]] = (),
               backend: str | None = None, previous: Exchange | None = None, **filters) -> AnswerStream:
        """Yield text deltas, then the final Answer. ``history``: earlier (question, answer) turns,
        oldest first (pairs or ``{"question", "answer"}`` dicts: ``inputs.check_history``);
        ``previous``: the last of them as an ``Exchange`` (what it cited), when known (``ChatSession``
        knows it; from text alone the times it cited are read from its answer)."""
        text = check_question(question)
        history = check_history(history)
        if previous is None:
            previous = last_turn(history)
        if isinstance(filters.get("chapter"), str):
            self._check_chapter(clean_text(filters["chapter"]))
        answerer = self.extractive if backend == "extractive" else self.answerer
        deadline = self.deadline() if self.chat_model is not None else None
        standalone = self.standalone(text, history, deadline=deadline, previous=previous)
        reason = not_a_question(text, standalone)   # "the", an emoji, a question in French
        if reason is None and answerer is self.extractive and asks_for_a_summary(text):
            reason = outline(self.chapters if len(self.index.transcripts) == 1 else ())   # no quote is one
        variants, rewrite_note = self.rewrites(standalone, deadline=deadline) if reason is None else ([], None)
        asked = self.question(text, k=k, previous=previous, standalone=standalone, variants=variants,
                              deadline=deadline, **filters)   # its k and filters checked in any case
        late = self.retriever.past_end(asked) if reason is None else None
        if late is not None:                     # "an hour in", of a 41-minute episode: where it ends
            reason = past_the_end(*late)
        if reason is not None:                   # told so, with no quote
            yield reason
            yield Answer(question=text, text=reason, backend=self.extractive.name, refused=True,
                         standalone_question=standalone, notes=tuple(n for n in (self.notice,) if n))
            return
        asked = replace(asked, depth=getattr(answerer, "depth", 0))   # a chat model reads its budget's worth
        for event in answerer.stream(asked, self.retriever.search(asked)):
            if isinstance(event, Answer):
                notes = event.notes + tuple(n for n in (self.notice, rewrite_note) if n)
                event = replace(event, question=text, standalone_question=standalone, notes=notes,
                                search_queries=tuple(variants))
            yield event

    def ask(self, question: str, *, k: int = 5, history: Sequence[tuple[str, str]] = (),
            backend: str | None = None, previous: Exchange | None = None, **filters) -> Answer:
        return collect(self.stream(question, k=k, history=history, backend=backend, previous=previous, **filters))

    def chat(self) -> "ChatSession":
        return ChatSession(self)


@dataclass
class ChatSession:
    """A conversation: follow-ups are condensed into standalone questions using the history."""

    assistant: Assistant
    history: list[tuple[str, str]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stream(self, question: str, *, k: int = 5) -> AnswerStream:
        with self._lock:
            previous = chat_turn(self.answers)   # what its answers cited says where they were
            for event in self.assistant.stream(question, k=k, history=list(self.history), previous=previous):
                if isinstance(event, Answer):
                    self.history.append((event.question, event.text))   # as asked, as over HTTP
                    self.answers.append(event)
                yield event

    def ask(self, question: str, *, k: int = 5) -> Answer:
        return collect(self.stream(question, k=k))

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    def reset(self) -> None:
        self.history.clear()
        self.answers.clear()


def load_transcript(path: str | Path) -> Transcript:
    """Parse and time one transcript file (Markdown, episode page text, WebVTT or SRT)."""
    from .parsers import load_transcript as _load

    return _load(path)
