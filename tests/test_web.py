"""The web chat page end to end in headless Chromium (Debian's /usr/bin/chromium via Playwright).

Skips when the browser is missing, unless RAG_REQUIRE_BROWSER=1 (CI), where that is a failure.
Install it with `apt-get install -y chromium`; never `playwright install` (its download fails here).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rag.api import Assistant, build_index
from rag.chat_models import FakeChatModel
from rag.config import Config
from rag.embedding import FakeEmbedder
from rag.server import BackgroundServer, create_app

CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
CITED = "drawing tool self-driving car model Nvidia"   # the fake embedder answers this with a citation
KEY = "page-key"


def _unavailable(reason: str):
    if os.environ.get("RAG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RAG_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    config = Config(index_dir=tmp_path_factory.mktemp("indexes"))
    build_index(None, config=config, embedder=FakeEmbedder())
    return config


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    yield page
    context.close()
    assert not errors, errors


def test_streamed_answer_and_citation_panel(browser, page, config, tmp_path):
    """Ask, watch the answer stream in, click a [MM:SS] citation, read its passage."""
    chatty = Assistant.load(config=config, embedder=FakeEmbedder(),
                            chat_model=FakeChatModel(chunk_size=2))
    with BackgroundServer(create_app(chatty)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#chapters li button")            # chapters loaded
        assert page.locator("#chapters li").count() > 10
        assert "CC BY-SA 4.0" in page.inner_text("footer")
        assert page.get_attribute("#episode-link", "href") == "https://changelog.com/practicalai/260"

        page.fill("#question", CITED)
        page.click("#ask")
        page.wait_for_selector(".msg.user")
        answer = page.locator(".msg.assistant .answer").last
        page.wait_for_selector(".msg.assistant:not(.streaming)")
        assert answer.inner_text().startswith("According to [")
        cite = answer.locator("button.cite").first
        time = cite.get_attribute("data-time")
        assert time and len(time) == 5

        cite.click()
        panel = page.locator("#passage")
        assert panel.locator(".time").inner_text() in (f"[{time}]", f"~[{time}]")  # ~: estimated
        assert panel.locator(".speaker").inner_text() in ("Anastasis Germanidis", "Chris Benson")
        assert panel.locator(".chapter").inner_text().startswith("Chapter: ")
        assert panel.locator("mark").count() == 1                  # the quoted sentence
        assert len(panel.locator(".text").inner_text()) > 100
        shot = tmp_path / "chat.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")


def test_follow_up_and_key(browser, page, config):
    """With RAG_API_KEY set, ?key= unlocks the page; a follow-up sends the whole conversation."""
    plain = Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data))
            if r.url.endswith("/v1/chat/completions") else None)
    with BackgroundServer(create_app(plain, api_key=KEY)) as url:
        page.goto(url + f"/?key={KEY}")
        page.wait_for_selector("#chapters li button")
        assert "key=" not in page.url                                 # not left in the address bar
        page.fill("#question", "What is Gen-2?")
        page.press("#question", "Enter")
        page.wait_for_selector(".msg.assistant:not(.streaming)")
        page.fill("#question", "When was it released?")
        page.press("#question", "Enter")
        page.wait_for_function("document.querySelectorAll('.msg.assistant:not(.streaming)').length == 2")
        assert page.locator(".msg.error").count() == 0
        assert [m["role"] for m in sent[-1]["messages"]] == ["user", "assistant", "user"]
        assert sent[-1]["messages"][0]["content"] == "What is Gen-2?"
        assert sent[-1]["stream"] is True


def test_wrong_key_shows_the_key_box(browser, page, config):
    plain = Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")
    with BackgroundServer(create_app(plain, api_key=KEY)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#keyrow.show")
        page.fill("#apikey", KEY)
        page.dispatch_event("#apikey", "change")
        page.wait_for_selector("#chapters li button")
        page.fill("#question", "<img src=x onerror=alert(1)> " + CITED)
        page.click("#ask")
        page.wait_for_selector(".msg.assistant:not(.streaming)")
        assert page.locator(".msg.user").inner_text().startswith("<img src=x")  # shown as text
        assert page.locator(".msg img").count() == 0


def test_a_catalog_index_names_and_links_each_citations_episode(browser, page, tmp_path):
    """An index of two episodes: the extractive answer cites [episode MM:SS]; the panel links the page."""
    from rag.parsers import default_sources

    other = tmp_path / "go-time-3.md"
    other.write_text("**Mat Ryer:** \\[00:05\\] Welcome to Go Time. What are goroutines for?\n\n"
                     "**Rob Pike:** \\[00:20\\] Goroutines let a program do many things at once, cheaply. "
                     "We designed goroutines so that concurrency is easy to write in Go.\n")
    config = Config(index_dir=tmp_path / "indexes")
    build_index([*default_sources()[1:], other], name="two", config=config, embedder=FakeEmbedder())
    assistant = Assistant.load("two", config=config, embedder=FakeEmbedder(), backend="extractive")
    with BackgroundServer(create_app(assistant)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#chapters li.episode")           # the episodes, not one episode's chapters
        assert page.text_content("#outline-title") == "Episodes (2)"   # (CSS shows headings in capitals)
        assert page.get_attribute("#chapters li.episode a[href='https://changelog.com/gotime/3']", "href")
        assert not page.is_visible("#episode-link")
        page.fill("#question", "Why were goroutines designed, and what are they for?")
        page.click("#ask")
        page.wait_for_selector(".msg.assistant:not(.streaming)")
        cite = page.locator(".msg.assistant .answer button.cite").first
        assert cite.get_attribute("data-episode") == "go-time-3"
        assert cite.inner_text().startswith("[go-time-3 00:")
        cite.click()
        link = page.locator("#passage a.episode")
        assert link.get_attribute("href") == "https://changelog.com/gotime/3"
        assert link.inner_text().startswith("go-time-3 · Go Time")
        assert "Goroutines" in page.inner_text("#passage .text")


# Everything past the right edge of the screen: the page must not scroll sideways, and no
# visible element (a button, a bubble, a long word) may end beyond the viewport.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const past = [...document.querySelectorAll("body *")].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > width + 0.5;
  }).map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className);
  return {scroll: document.documentElement.scrollWidth, width, past};
}"""


@pytest.mark.parametrize("width,height", [(1280, 860), (390, 844)])
def test_the_page_fits_the_screen_and_a_chapter_scopes_the_next_question(browser, config, width, height):
    """A phone (390x844) and a desktop: no sideways scroll, nothing clipped after an answer, the
    chat at least half the screen; clicking a chapter scopes the next question to it."""
    plain = Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")
    chapters = [c.title for c in plain.chapters if not c.sponsor]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data))
            if r.url.endswith("/v1/chat/completions") else None)
    try:
        with BackgroundServer(create_app(plain)) as url:
            page.goto(url + "/")
            page.wait_for_selector("#chapters li button")
            long_word = "supercalifragilistic" * 6          # a word wider than a phone
            page.fill("#question", f"{CITED} {long_word}")
            page.click("#ask")
            page.wait_for_selector(".msg.assistant:not(.streaming)")
            fit = page.evaluate(OVERFLOW)
            assert fit["scroll"] <= width and not fit["past"], fit
            chat = page.locator("#chat").bounding_box()
            assert chat["height"] >= height / 2, chat
            assert page.locator("#new").bounding_box()["x"] + page.locator("#new").bounding_box()["width"] <= width

            # A chapter scopes the next question (and only the next one).
            target = chapters[len(chapters) // 2]
            page.locator("#chapters li button", has_text=target).first.click()
            assert page.is_visible("#scope") and target in page.inner_text("#scope")
            page.fill("#question", "What do they say here?")
            page.press("#question", "Enter")
            page.wait_for_function("document.querySelectorAll('.msg.assistant:not(.streaming)').length == 2")
            assert sent[-1]["chapter"] == target
            assert not page.is_visible("#scope")
            answered = page.locator(".msg.assistant .answer").last
            cite = answered.locator("button.cite").first
            cite.click()
            assert page.locator("#passage .chapter").inner_text() == f"Chapter: {target}"
            page.fill("#question", "And after that?")
            page.press("#question", "Enter")
            page.wait_for_function("document.querySelectorAll('.msg.assistant:not(.streaming)').length == 3")
            assert "chapter" not in sent[-1]
            fit = page.evaluate(OVERFLOW)
            assert fit["scroll"] <= width and not fit["past"], fit
            assert page.locator(".msg.error").count() == 0
    finally:
        context.close()
