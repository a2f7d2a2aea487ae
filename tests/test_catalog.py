"""Indexes of many episodes (issue 11): folders and archives as sources, each episode's show, link
and people, `rag episodes`, show and episode filters, and citations that name their episode."""

import io
import json
import tarfile
import zipfile

import pytest

from rag.api import Assistant, build_index
from rag.catalog.shows import recurring_hosts
from rag.shows import same_show, show_of, with_show
from rag.cli import main
from rag.config import Config
from rag.embedding import FakeEmbedder
from rag.errors import InputError, TranscriptError
from rag.parsers import parse_text, timed
from rag.types import Episode


def episode(host: str, guest: str, topic: str) -> str:
    return (f"**{host}:** \\[00:05\\] Welcome to the show. Today {guest} joins me to talk about {topic}.\n\n"
            f"**{guest}:** Thanks for having me. I have worked on {topic} for ten years now.\n\n"
            f"**{host}:** \\[01:10\\] What got you into {topic} in the first place?\n\n"
            f"**{guest}:** \\[01:20\\] A friend showed me {topic} at university, and I never stopped. "
            f"The community around {topic} is what kept me there.\n")


EPISODES = {
    "practicalai/practical-ai-7.md": episode("Chris Benson", "Ada Lovelace", "analytical engines"),
    "practicalai/practical-ai-8.md": episode("Chris Benson", "Grace Hopper", "compilers"),
    "practicalai/practical-ai-9.md": episode("Chris Benson", "Alan Turing", "computable numbers"),
    "gotime/go-time-3.md": episode("Mat Ryer", "Rob Pike", "goroutines"),
}


@pytest.fixture
def catalog(tmp_path):
    """The same four episodes as a folder, a .tar.gz and a .zip, each beside a README."""
    folder = tmp_path / "transcripts"
    for name, text in {**EPISODES, "ABOUT.md": "# About\n\n**Jerod Santo:** is quoted here.\n"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    tgz = tmp_path / "transcripts.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder, arcname="changelog-transcripts")
    zipped = tmp_path / "transcripts.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"changelog-transcripts/{p.relative_to(folder)}")
        z.writestr("changelog-transcripts/cover.md", "just some words, no speakers or times")
    return folder, tgz, zipped


def load(tmp_path, name="cat"):
    return Assistant.load(name, config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder(),
                          backend="extractive")


def test_a_folder_a_tarball_and_a_zip_index_the_same_episodes(tmp_path, catalog):
    notes = []
    config = Config(index_dir=tmp_path / "indexes")
    for source, name in zip(catalog, ("folder", "tgz", "zip")):
        build_index([source], name=name, config=config, embedder=FakeEmbedder(),
                    progress=lambda stage, done, total: notes.append(stage) if not total else None)
    ids = [sorted(e["id"] for e in load(tmp_path, name).episodes()) for name in ("folder", "tgz", "zip")]
    assert ids[0] == ids[1] == ids[2] == ["go-time-3", "practical-ai-7", "practical-ai-8", "practical-ai-9"]
    # the README is documentation; a member that is no transcript is skipped with a note that names it
    assert any("cover.md" in n and "does not look like a transcript" in n for n in notes)
    assert not any("ABOUT" in n for n in notes)


def test_a_file_named_alone_must_still_be_a_transcript(tmp_path):
    bad = tmp_path / "notes.md"
    bad.write_text("milk, eggs and bread")
    with pytest.raises(TranscriptError, match="does not look like a transcript"):
        build_index([bad], name="x", config=Config(index_dir=tmp_path / "i"), embedder=FakeEmbedder())
    (tmp_path / "empty").mkdir()
    with pytest.raises(TranscriptError, match="holds no transcripts"):
        build_index([tmp_path / "empty"], name="x", config=Config(index_dir=tmp_path / "i"),
                    embedder=FakeEmbedder())
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(TranscriptError, match="cannot read this archive"):
        build_index([broken], name="x", config=Config(index_dir=tmp_path / "i"), embedder=FakeEmbedder())


def test_each_episode_knows_its_show_link_and_people(tmp_path, catalog):
    build_index([catalog[1]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    assistant = load(tmp_path)
    by_id = {e["id"]: e for e in assistant.episodes()}
    seven = by_id["practical-ai-7"]
    assert (seven["show"], seven["number"], seven["url"]) == ("Practical AI", "7", "https://changelog.com/practicalai/7")
    assert seven["hosts"] == ["Chris Benson"] and seven["guests"] == ["Ada Lovelace"]
    assert seven["duration_s"] >= 80 and seven["passages"] >= 1
    assert by_id["go-time-3"]["url"] == "https://changelog.com/gotime/3"
    assert [e["id"] for e in assistant.episodes(show="gotime")] == ["go-time-3"]
    passage = assistant.search("goroutines", k=1, episode="go-time-3")[0].to_json()
    assert {"show": "Go Time", "episode_title": "Go Time #3", "url": "https://changelog.com/gotime/3"}.items() <= passage.items()


def test_show_and_episode_filters_keep_to_them_and_refuse_names_the_index_lacks(tmp_path, catalog):
    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    assistant = load(tmp_path)
    assert {h.chunk.episode for h in assistant.search("university friend", k=10, show="Go Time")} == {"go-time-3"}
    assert {h.chunk.show for h in assistant.search("university friend", k=10, show="practicalai")} == {"Practical AI"}
    assert {h.chunk.episode for h in assistant.search("university", k=10, episode="practical-ai-8")} == {"practical-ai-8"}
    assert assistant.search("compilers", k=3, show="", episode="  ") == assistant.search("compilers", k=3)
    with pytest.raises(InputError, match="holds no episode 'practical-ai-99'.*rag episodes --index cat"):
        assistant.search("compilers", episode="practical-ai-99")
    with pytest.raises(InputError, match="holds no show 'JS Party'; it holds Go Time, Practical AI"):
        assistant.ask("compilers", show="JS Party")


def test_a_speaker_filter_must_name_a_speaker_of_the_index(tmp_path, catalog):
    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    assistant = load(tmp_path)
    assert {h.chunk.episode for h in assistant.search("university", k=10, speaker="pike")} == {"go-time-3"}
    with pytest.raises(InputError) as err:
        assistant.search("compilers", speaker="Linus")
    assert str(err.value) == ("no speaker matches 'Linus'; the speakers are: Mat Ryer, Rob Pike, Chris Benson, "
                              "Ada Lovelace, Grace Hopper, Alan Turing")
    # A panel of many: the first twelve, then where to find the rest.
    panel = tmp_path / "panel.md"
    panel.write_text("".join(f"**Speaker {n:02d}:** \\[{n:02d}:00\\] I have a point {n} about compilers.\n\n"
                             for n in range(1, 15)))
    build_index([panel], name="panel", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    with pytest.raises(InputError, match=r"the speakers are: Speaker 01, .*, Speaker 12 and 2 more "
                                         r"\(`rag episodes --index panel` lists each episode's\)$"):
        load(tmp_path, "panel").search("compilers", speaker="Linus")


def test_citations_name_their_episode_in_an_index_of_several(tmp_path, catalog):
    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    answer = load(tmp_path).ask("What got Grace Hopper into compilers?")
    assert not answer.refused and answer.citations
    assert all(c.episode and c.label == f"[{c.episode} {c.start}]" for c in answer.citations)
    assert all(c.label in answer.text for c in answer.citations)
    one = tmp_path / "one.md"
    one.write_text(EPISODES["gotime/go-time-3.md"])
    build_index([one], name="one", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    single = load(tmp_path, "one").ask("What got him into goroutines?")
    assert single.citations and all(c.label == f"[{c.start}]" for c in single.citations)


def test_rag_episodes_lists_them(tmp_path, catalog, monkeypatch, capsys):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    assert main(["index", str(catalog[2]), "--name", "cat"]) == 0
    capsys.readouterr()
    assert main(["episodes", "--index", "cat", "--show", "Practical AI", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["episodes"]
    assert [e["id"] for e in listed] == ["practical-ai-7", "practical-ai-8", "practical-ai-9"]
    assert main(["episodes", "--index", "cat"]) == 0
    lines = capsys.readouterr().out.splitlines()   # in archive order: the zip lists gotime/ first
    assert len(lines) == 4 and lines[0].startswith("go-time-3  Go Time  01:26  guests: Rob Pike  ")
    assert lines[0].endswith("https://changelog.com/gotime/3")
    assert main(["search", "goroutines", "--index", "cat", "--show", "nope"]) == 2
    assert "holds no show 'nope'" in capsys.readouterr().err


def _go_time(n, host, *guests):
    return timed(parse_text("\n\n".join(f"**{s}:** I am {s} and I talk about things here."
                                        for s in (host, *guests)), f"go-time-{n}.md"))


def test_a_shows_regulars_in_the_index_are_its_hosts():
    # Names the archive's table does not know: only this index can tell who the regulars are.
    eps = [_go_time(1, "Ann Host", "Bo Panel", "Rob Pike"), _go_time(2, "Ann Host", "Bo Panel", "Ken Thompson"),
           _go_time(3, "Bo Panel", "Ann Host", "Russ Cox")]
    assert eps[0].episode.guests == ("Bo Panel", "Rob Pike")   # one file alone cannot tell
    fixed = recurring_hosts(eps)
    assert [e.episode.hosts for e in fixed] == [("Ann Host", "Bo Panel"), ("Ann Host", "Bo Panel"),
                                                ("Bo Panel", "Ann Host")]
    assert [e.episode.guests for e in fixed] == [("Rob Pike",), ("Ken Thompson",), ("Russ Cox",)]
    assert recurring_hosts(eps[:2]) == eps[:2]   # two episodes of a show: too few to tell


def test_a_shows_regulars_in_the_archive_are_its_hosts_in_any_index():
    # Go Time #300 in a small index: Kris opens it, Jon Calhoun is heard once. The archive knows
    # him as a Go Time regular (rag/catalog/regulars.json), so he is a host, not a guest.
    from rag.catalog.regulars import regulars

    assert {"Jon Calhoun", "Kris Brandow", "Mat Ryer"} <= regulars()["Go Time"]
    [ep] = recurring_hosts([_go_time(300, "Kris Brandow", "Jon Calhoun", "Rob Pike")])
    assert ep.episode.hosts == ("Kris Brandow", "Jon Calhoun") and ep.episode.guests == ("Rob Pike",)
    # Per show: a Go Time regular who guests on Practical AI is that episode's guest.
    [other] = recurring_hosts([timed(parse_text("**Chris Benson:** Welcome, Jon.\n\n**Jon Calhoun:** Thanks "
                                                "for having me on the show today.", "practical-ai-9.md"))])
    assert other.episode.guests == ("Jon Calhoun",)


def test_show_names():
    assert show_of("practical-ai-260") == ("practicalai", "Practical AI", "260")
    assert show_of("the-changelog-500") == ("podcast", "The Changelog", "500")
    assert show_of("my-episode") is None and show_of("interview-2") is None
    assert with_show(Episode(id="js-party-250")).url == "https://changelog.com/jsparty/250"
    assert with_show(Episode(id="js-party-250", url="https://x.test/1")).url == "https://x.test/1"
    assert all(same_show(name, "The Changelog") for name in ("the changelog", "podcast", "the-changelog"))
    assert not same_show("practicalai", "The Changelog") and not same_show("", "Go Time")


def test_rag_eval_catalog_scores_mined_questions_across_the_index(tmp_path, monkeypatch, capsys):
    """Host questions mined from episodes training left out, searched across every episode."""
    from rag.training.data import split_of

    held = [n for n in range(1, 400) if split_of(f"practical-ai-{n}") == "validation"][:2]
    trained = [n for n in range(1, 400) if split_of(f"practical-ai-{n}") == "train"][:1]
    folder = tmp_path / "catalog" / "practicalai"
    folder.mkdir(parents=True)
    topics = {held[0]: "sourdough bread baking", held[1]: "alpine glacier surveys", trained[0]: "chess openings"}
    for n, topic in topics.items():
        opening = "\n\n".join(f"**{s}:** Hello and welcome, this is the opening of the show number {n}."
                              for s in ("Chris Benson", "Guest Person", "Chris Benson", "Guest Person"))
        qa = "\n\n".join(
            f"**Chris Benson:** \\[0{i}:00\\] Tell me, what is the hardest part of {topic}, question {i}?\n\n"
            f"**Guest Person:** The hardest part of {topic} is patience number {i}, because every single "
            f"attempt at {topic} takes many hours of careful work before you learn anything at all from it."
            for i in range(1, 4))
        (folder / f"practical-ai-{n}.md").write_text(opening + "\n\n" + qa + "\n")
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    assert main(["index", str(folder.parent), "--name", "cat"]) == 0
    out = tmp_path / "run"
    assert main(["eval", "--catalog", str(folder.parent), "--index", "cat", "--out", str(out)]) == 0
    report = json.loads((out / "catalog.json").read_text())
    mined = report["mined"]
    # only the two held-out episodes are asked; the trained one's questions never are
    assert mined["n"] == 6 and {r["id"].split("#")[0] for r in mined["rows"]} == {f"practical-ai-{n}" for n in held}
    assert mined["episode_hit@5"] == 1.0 and mined["passage_hit@10"] == 1.0
    assert "| mined host questions | 6 | " in capsys.readouterr().out
    assert (out / "catalog.md").read_text().startswith("# Catalog quality: index cat (3 episodes)")


def test_hand_written_catalog_questions_are_scored_by_episode_quote_and_refusal(tmp_path, catalog):
    from rag.evaluation.catalog import score_written

    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    items = [
        {"id": "w1", "type": "which-guest", "question": "Who worked on goroutines for ten years?",
         "gold_episodes": ["go-time-3"], "gold_quotes": ["I have worked on goroutines for ten years now."],
         "answerable": True},
        {"id": "w2", "type": "across-episodes", "question": "What got guests into compilers and goroutines?",
         "gold_episodes": ["go-time-3", "practical-ai-8"], "gold_quotes": [], "answerable": True},
        {"id": "w3", "type": "unanswerable", "question": "What did they say about quantum annealing hardware?",
         "gold_episodes": [], "gold_quotes": [], "answerable": False},
    ]
    scored = score_written(load(tmp_path), items)
    rows = {r["id"]: r for r in scored["rows"]}
    assert rows["w1"]["episode_rank"] == 1 and rows["w1"]["passage_rank"] == 1
    assert rows["w2"]["all_episodes"] is True and scored["across_episodes"] == 1
    assert rows["w3"]["refused"] is True and scored["unanswerable_refused"] == (1, 1)
    assert scored["episode_hit@5"] == 1.0


def test_a_large_index_scores_only_the_candidates_windows_and_ranks_alike(tmp_path, catalog, monkeypatch):
    """Past EXACT_SENTENCES windows, only the top passages' windows are scored (issue 11.4); the
    ranking and the answers' sentence scores stay those of exact scoring."""
    import numpy as np

    import rag.retrieval as R

    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    assistant = load(tmp_path)
    questions = ["What got you into compilers?", "goroutines community", "analytical engines for ten years"]
    exact = [[h.chunk.id for h in assistant.search(q, k=3)] for q in questions]
    monkeypatch.setattr(R, "EXACT_SENTENCES", 0)
    monkeypatch.setattr(R, "SENTENCE_CANDIDATES", 2)
    retriever = assistant.retriever
    q = retriever.embedder.embed_query("compilers")
    dense, sims, best, _ = retriever._dense(q, "compilers", R.Scope())
    assert np.isnan(sims).any() and not np.isnan(sims).all() and np.isfinite(best).all()
    for question, ids in zip(questions, exact):
        hits = assistant.search(question, k=3)
        assert hits[0].chunk.id == ids[0]
        assert hits[0].scores["sentence_scores"]   # the top passage's windows were scored


def test_a_question_asked_of_many_episodes_keeps_to_a_few_passages_of_each(tmp_path, catalog):
    """"What have guests said about X?" is answered from several episodes: its search keeps at
    most ACROSS_PER_EPISODE passages of one, where a question of one episode takes them all."""
    from rag.retrieval import ACROSS_PER_EPISODE

    long_talk = "".join(f"**Grace Hopper:** \\[{m:02d}:00\\] Compilers again, part {m}: compilers turn words "
                        f"into machine code, and compilers taught me patience.\n\n" for m in range(2, 40))
    grace = "practicalai/practical-ai-8.md"
    (catalog[0] / grace).write_text(EPISODES[grace] + "\n" + long_talk)
    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    assistant = load(tmp_path)

    def per_episode(hits):
        episodes = [h.chunk.episode for h in hits]
        return {e: episodes.count(e) for e in episodes}

    one = per_episode(assistant.search("What did Grace say about compilers?", k=8))
    assert one["practical-ai-8"] > ACROSS_PER_EPISODE          # no limit on a question of one episode
    across = per_episode(assistant.search("What have guests said about compilers?", k=8))
    assert max(across.values()) <= ACROSS_PER_EPISODE and len(across) == 4
    assert set(per_episode(assistant.search("What did Grace say about compilers?", k=8, per_episode=1)).values()) == {1}
    narrowed = per_episode(assistant.search("What have guests said about compilers?", k=8, episode="practical-ai-8"))
    assert narrowed["practical-ai-8"] > ACROSS_PER_EPISODE     # one episode named: nothing to spread over
    for bad in (0, 101, 1.5, True):
        with pytest.raises(InputError, match="per_episode must be a whole number between 1 and 100"):
            assistant.search("compilers", per_episode=bad)


def test_an_archive_episode_is_titled_by_its_show_and_number(tmp_path):
    """The archive's files hold no title: episode_title was empty for every catalog episode."""
    from rag.api import Assistant, build_index
    from rag.config import Config
    from rag.embedding import FakeEmbedder

    assert with_show(Episode(id="go-time-300")).title == "Go Time #300"
    assert with_show(Episode(id="go-time-300", title="Go 2 is here")).title == "Go 2 is here"
    src = tmp_path / "go-time-300.md"
    src.write_text("**Mat Ryer:** Welcome to Go Time.\n\n**Jon Calhoun:** Generics changed how I write "
                   "libraries, mostly for the better.\n")
    config = Config(index_dir=tmp_path / "idx")
    build_index([src], name="gt", config=config, embedder=FakeEmbedder())
    assistant = Assistant.load("gt", config=config, embedder=FakeEmbedder(), backend="extractive")
    hit = assistant.search("generics libraries", k=1)[0]
    assert hit.to_json()["episode_title"] == "Go Time #300"
    assert assistant.episodes()[0]["title"] == "Go Time #300"


def test_listeners_questions_are_asked_of_the_whole_index_and_scored_by_episode_and_quote(tmp_path, catalog):
    from rag.evaluation import readers as R
    from rag.evaluation.catalog import readers_questions, score_readers

    # Only the corpus's test and held-out shows' episodes that the index holds; no conversation,
    # no unanswerable question.
    test_episode = R.splits()["test"][0]
    asked = readers_questions({test_episode, "not-an-episode-1"})
    assert set(asked) == {"listeners' test"}
    items = asked["listeners' test"]
    assert items and {it["episode"] for it in items} == {test_episode}
    assert all(it["answerable"] and it["type"] != "followup" and it["gold_quotes"] for it in items)
    assert readers_questions({R.splits()["validation"][0]}) == {}          # tuned on: never asked here

    build_index([catalog[0]], name="cat", config=Config(index_dir=tmp_path / "indexes"), embedder=FakeEmbedder())
    scored = score_readers(load(tmp_path), [
        {"id": "r1", "episode": "go-time-3", "question": "Who worked on goroutines for ten years?",
         "gold_quotes": ["I have worked on goroutines for ten years now."]},
        {"id": "r2", "episode": "go-time-3", "question": "Who worked on goroutines for ten years?",
         "gold_quotes": ["a sentence the episode never says at all"]},
        {"id": "r3", "episode": "go-time-99", "question": "Who worked on goroutines for ten years?",
         "gold_quotes": ["I have worked on goroutines for ten years now."]}])
    rows = {r["id"]: r for r in scored["rows"]}
    assert rows["r1"]["episode_rank"] == 1 and rows["r1"]["passage_rank"] == 1
    assert rows["r2"]["episode_rank"] == 1 and rows["r2"]["passage_rank"] is None
    assert rows["r3"]["episode_rank"] is None and rows["r3"]["passage_rank"] is None   # another episode's quote
    assert scored["n"] == 3 and scored["passage_hit@10"] == 1 / 3 and scored["episode_hit@1"] == 2 / 3
