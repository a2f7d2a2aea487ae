"""The Changelog shows, and what an episode id says about its episode.

The catalog names files ``<show prefix>-<number>.md`` inside one folder per show, and each show's
episodes live at ``https://changelog.com/<folder>/<number>``: ``practical-ai-260`` is episode 260
of Practical AI, at https://changelog.com/practicalai/260.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

from ..types import Episode, Transcript

# id prefix -> (folder, which is also the page path; the show's name)
SHOWS = {
    "practical-ai": ("practicalai", "Practical AI"),
    "go-time": ("gotime", "Go Time"),
    "js-party": ("jsparty", "JS Party"),
    "the-changelog": ("podcast", "The Changelog"),
    "ship-it": ("shipit", "Ship It!"),
    "changelog--friends": ("friends", "Changelog & Friends"),
    "changelog-news": ("news", "Changelog News"),
    "founders-talk": ("founderstalk", "Founders Talk"),
    "brain-science": ("brainscience", "Brain Science"),
    "backstage": ("backstage", "Backstage"),
    "away-from-keyboard": ("afk", "Away from Keyboard"),
    "request-for-commits": ("rfc", "Request For Commits"),
    "spotlight": ("spotlight", "Spotlight"),
}
_ID = re.compile(r"^(?P<prefix>[a-z][a-z-]*?)-(?P<number>\d+)$")


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def show_of(episode_id: str) -> tuple[str, str, str] | None:
    """(folder, name, number) of a Changelog episode id, or None for any other id."""
    m = _ID.match(episode_id)
    if not m or m["prefix"] not in SHOWS:
        return None
    folder, name = SHOWS[m["prefix"]]
    return folder, name, m["number"]


def with_show(episode: Episode) -> Episode:
    """The episode with its show, number, title ("Go Time #300") and page link filled in from its
    id where they are blank."""
    known = show_of(episode.id)
    if known is None:
        return episode
    folder, name, number = known
    # The archive's files hold no title: the show and number are one a reader can use.
    return replace(episode, show=episode.show or name, number=episode.number or number,
                   title=episode.title or f"{name} #{number}",
                   url=episode.url or f"https://changelog.com/{folder}/{number}")


def same_show(wanted: str, show: str) -> bool:
    """Does ``--show wanted`` name this show? By name ("Practical AI", any case or spacing), by
    folder ("practicalai", "podcast") or by id prefix ("practical-ai")."""
    key = _key(wanted)
    if not key:
        return False
    if key == _key(show):
        return True
    return any(_key(name) == _key(show) and key in (_key(folder), _key(prefix))
               for prefix, (folder, name) in SHOWS.items())


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
