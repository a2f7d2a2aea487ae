"""Each show's regulars counted as its hosts, across the catalog (the shows themselves: ``rag/shows.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..types import Transcript


def recurring_hosts(transcripts: Sequence[Transcript], share: float = 0.1, at_least: int = 2) -> list[Transcript]:
    """The transcripts with each show's regulars counted as its hosts.

    One file's opening names its first voice as the host, and everyone else as a guest unless
    introduced as a co-host; in a panel show that is wrong ("Brian Ketelsen" is a Go Time host,
    not a guest). The regulars are those of the whole archive (``regulars.json``: Jon Calhoun is
    a Go Time host even in an index holding one episode of his), and, for shows with three
    episodes or more here, anyone heard in at least ``at_least`` episodes and ``share`` of the
    show's episodes in this index.
    """
    from .regulars import regulars as archive_regulars

    by_show: dict[str, list[int]] = {}
    for i, t in enumerate(transcripts):
        if t.episode.show:
            by_show.setdefault(t.episode.show, []).append(i)
    out = list(transcripts)
    known = archive_regulars()
    for show, members in by_show.items():
        regulars = set(known.get(show, ()))
        if len(members) >= 3:
            heard: dict[str, int] = {}
            for i in members:
                for name in {*transcripts[i].episode.hosts, *transcripts[i].episode.guests}:
                    heard[name] = heard.get(name, 0) + 1
            regulars |= {n for n, k in heard.items() if k >= at_least and k >= share * len(members)}
        for i in members:
            ep = transcripts[i].episode
            if not regulars & set(ep.guests):
                continue
            hosts = tuple(dict.fromkeys((*ep.hosts, *(g for g in ep.guests if g in regulars))))
            out[i] = replace(transcripts[i], episode=replace(ep, hosts=hosts,
                                                             guests=tuple(g for g in ep.guests if g not in regulars)))
    return out
