"""Combine the two published versions of one episode.

The page knows the episode (title, summary, chapters, who hosts and who guests); the Markdown knows
who said what and has finer markers. The merged Transcript takes each from where it is best.
"""

from __future__ import annotations

from ..types import Transcript, replace


def merge(page: Transcript, markdown: Transcript) -> Transcript:
    """Episode facts and chapters from ``page``; turns, speakers and markers from ``markdown``."""
    md_ep, page_ep = markdown.episode, page.episode
    episode = replace(
        page_ep,
        id=md_ep.id or page_ep.id,
        title=page_ep.title or md_ep.title,
        number=page_ep.number or md_ep.number,
        hosts=page_ep.hosts or md_ep.hosts,
        guests=page_ep.guests or md_ep.guests,
    )
    sources = "; ".join(s for s in (page.source, markdown.source) if s)
    return Transcript(episode=episode, chapters=page.chapters, turns=markdown.turns,
                      source=sources, format="merged")
