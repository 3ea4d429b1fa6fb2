"""The page in a real headless Chromium (Debian's `chromium`, driven by Playwright): paste an article, see coloured
paragraphs, open an explanation, filter, review, download, correct a label by keyboard and find the correction in
the feedback file. Saves a screenshot.

`EC_WEBAPP_MODEL=runs/latest EC_SCREENSHOT=docs/webapp.png pytest tests/test_webapp_browser.py` takes the README's
screenshot with a real model. The article below is written for this test; its places are invented.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # benchmarks are scripts, not a package

from serve_load import running_server  # noqa: E402

from conftest import save_tiny_model  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTICLE = """Fighting reaches the Varnel valley

Government troops entered the hill town of Varnel at dawn on Tuesday and raised their flag over the old customs post, \
after rebel units withdrew across the river overnight, a military spokesman said.

Hours later, rockets struck a fuel depot on the edge of Osk, killing two guards and wounding four workers, according \
to the regional governor.

Envoys from both sides met in the port city of Lisk for a second round of talks on a ceasefire and an exchange of \
prisoners, mediators said.

A note pasted from a web page: <script>window.injected = true</script> <b>not bold</b>

Prices of bread and fuel in the valley have doubled since the spring, and schools remain closed."""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser: apt-get install chromium (.ci/run does)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`serve.py` in a subprocess on 127.0.0.1 and a free port; `timeout` ends it even if the test run is killed."""
    tmp = tmp_path_factory.mktemp("webapp")
    model = os.environ.get("EC_WEBAPP_MODEL") or str(save_tiny_model(tmp / "m"))
    with running_server(model, tmp / "feedback", lifetime=600) as url:
        yield url, tmp / "feedback"


@pytest.fixture(scope="module")
def page(server):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400}, accept_downloads=True)
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
        page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        yield page
        browser.close()


def test_analyst_labels_explains_filters_and_corrects_an_article(server, page, tmp_path):
    url, feedback = server
    page.goto(url)
    page.wait_for_selector("#legend li")
    page.fill("#article-text", ARTICLE)
    page.focus("#min-confidence")
    page.keyboard.press("Tab")  # to the "Label paragraphs" button, then Enter: usable without a mouse
    assert page.evaluate("document.activeElement.id") == "run"
    page.keyboard.press("Enter")
    page.wait_for_selector("#paragraphs li.para")
    items = page.locator("#paragraphs li.para")
    assert items.count() == 5  # the headline is the title, not a paragraph

    # coloured by label, with the label and its confidence written out
    labels = [items.nth(i).get_attribute("data-label") for i in range(5)]
    for i in range(5):
        assert f"label-{labels[i]}" in items.nth(i).get_attribute("class")
        assert items.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") not in {"rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"}
        assert "confidence" in items.nth(i).inner_text()

    # a paragraph holding markup shows it as text: nothing injected, nothing run
    assert "<script>window.injected = true</script>" in items.nth(3).locator("p.text").inner_text()
    assert page.evaluate("window.injected") is None and page.locator("#paragraphs script, #paragraphs b").count() == 0

    # the words that drove a label, on demand
    items.nth(0).get_by_role("button", name="Why this label?").click()
    page.wait_for_selector("#paragraphs li.para:first-child mark")
    assert "Words that drove" in items.nth(0).inner_text()
    if os.environ.get("EC_SCREENSHOT"):  # the README's picture: an article labelled, one paragraph explained
        page.screenshot(path=os.environ["EC_SCREENSHOT"], full_page=True)

    # filter by label, and the review order (least confident first)
    first_label = labels[0]
    page.uncheck(f"#show-{first_label}")
    assert page.locator("#paragraphs li.para").count() == 5 - labels.count(first_label)
    page.check(f"#show-{first_label}")
    page.click("#review")
    scores = page.locator("#paragraphs .confidence").all_inner_texts()
    assert [int(s.split()[1]) for s in scores] == sorted(int(s.split()[1]) for s in scores)
    page.click("#review")

    with page.expect_download() as download:
        page.click("[data-export=csv]")
    saved = tmp_path / "predictions.csv"
    download.value.save_as(saved)
    assert saved.read_text().startswith("source,article,title")

    # correct the second paragraph's label with the keyboard
    second = page.locator("#paragraphs li.para").nth(1)
    text = second.locator("p.text").inner_text()
    current = second.get_attribute("data-label")
    new_label = "attack" if current != "attack" else "diplomacy"
    second.locator("select.correct-select").select_option(new_label)
    second.locator("button.save-correction").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#status:has-text('Correction saved')")
    assert page.locator("#paragraphs li.para").nth(1).get_attribute("data-label") == new_label
    lines = [json.loads(line) for path in feedback.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert any(row["text"] == text and row["label"] == new_label and row["previous_label"] == current for row in lines)

    page.screenshot(path=str(tmp_path / "webapp.png"), full_page=True)
    assert (tmp_path / "webapp.png").stat().st_size > 10_000
    assert page.problems == []  # no script error, no blocked resource, no dialog


def test_errors_reach_the_page_as_text(server, page):
    url, _ = server
    page.goto(url)
    page.wait_for_selector("#legend li")
    page.click("#tab-url")
    page.fill("#article-url", "http://127.0.0.1:9/private")
    page.click("#run")
    page.wait_for_selector("#status.error")
    assert "loopback, private or link-local" in page.inner_text("#status")
