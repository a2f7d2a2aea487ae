"""Each Changelog show's regular voices, counted once over the whole archive.

An index of a few episodes cannot tell a show's host from a guest: Jon Calhoun hosts Go Time, but
in a five-episode index he is heard once, as a panelist the opening does not call a co-host.
Across the archive he is heard in a fifth of Go Time's episodes. ``regulars.json`` (in this folder)
lists, per show, everyone heard in at least ``MIN_EPISODES`` episodes and ``MIN_SHARE`` of the
show's episodes; ``shows.recurring_hosts`` counts them as hosts of that show in any index.

Rebuild it from the archive (names only; the transcripts are CC BY-SA 4.0, © Changelog Media)::

    python -m rag.catalog.regulars ../shared/data/changelog-transcripts.tar.gz
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

FILE = Path(__file__).with_name("regulars.json")
MIN_SHARE = 0.1
MIN_EPISODES = 3


@lru_cache(maxsize=1)
def regulars() -> dict[str, frozenset[str]]:
    """{show name: its regular voices}; empty when the table is missing or unreadable."""
    try:
        data = json.loads(FILE.read_text(encoding="utf-8"))
        return {show: frozenset(names) for show, names in data["shows"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def count(transcripts) -> dict[str, list[str]]:
    """{show: the voices heard in at least MIN_EPISODES and MIN_SHARE of its episodes}, each list
    most heard first."""
    heard: dict[str, dict[str, int]] = {}
    episodes: dict[str, int] = {}
    for t in transcripts:
        show = t.episode.show
        if not show:
            continue
        episodes[show] = episodes.get(show, 0) + 1
        counts = heard.setdefault(show, {})
        for name in {*t.episode.hosts, *t.episode.guests}:
            counts[name] = counts.get(name, 0) + 1
    return {show: sorted((n for n, k in counts.items() if k >= MIN_EPISODES and k >= MIN_SHARE * episodes[show]),
                         key=lambda n: (-counts[n], n))
            for show, counts in sorted(heard.items())}


def main(argv=None) -> int:
    from .sources import read_transcripts

    ap = argparse.ArgumentParser(description="count each show's regular voices in the transcript archive")
    ap.add_argument("archive", type=Path, help="the Changelog transcripts (.tar.gz or folder)")
    ap.add_argument("--out", type=Path, default=FILE)
    args = ap.parse_args(argv)
    if not args.archive.exists():
        ap.error(f"no archive at {args.archive}")
    shows = count(read_transcripts([args.archive], set()))
    data = {"about": "Each show's regular voices (heard in at least 10% and 3 of its episodes in the "
                     "archive); written by `python -m rag.catalog.regulars ARCHIVE`. Names from "
                     "transcripts of Changelog Media podcasts, CC BY-SA 4.0.",
            "shows": shows}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}: {sum(map(len, shows.values()))} regulars of {len(shows)} shows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
