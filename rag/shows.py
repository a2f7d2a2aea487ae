"""The Changelog shows, and what an episode id says about its episode (parsing and retrieval read
this; the catalog's regulars are in ``catalog/shows.py``).

The catalog names files ``<show prefix>-<number>.md`` inside one folder per show, and each show's
episodes live at ``https://changelog.com/<folder>/<number>``: ``practical-ai-260`` is episode 260
of Practical AI, at https://changelog.com/practicalai/260.
"""

from __future__ import annotations

import re
from dataclasses import replace

from .types import Episode

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
