"""Articles as people have them: saved web pages, URLs (against a local server), lists of URLs, folders, CSV/TSV,
plain text with a headline and page chrome; the rows' article fields and the event table.

The pages in tests/pages/ are written for these tests: their sites, people and events are invented.
"""

import csv
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from event_classifier.cli import predict_main
from event_classifier.errors import SkippedInput
from event_classifier.fetch import Fetcher, FetchSettings
from event_classifier.pages import extract_article
from event_classifier.text_articles import read_text_article

from conftest import save_tiny_model

PAGES = Path(__file__).resolve().parent / "pages"
CHROME = ["Accept all cookies", "cookie policy", "Subscribe to the Harbor Ledger", "Politics", "Related stories",
          "spring floods", "polls", "Tomas_88", "greenvalley", "lasts longer", "Copyright", "Privacy policy",
          "Contact the newsroom"]
CAP = 20_000  # bytes: the size cap the URL tests use
BIG = b"<html><body><article>" + b"<p>Troops entered the town after a long night march.</p>" * 1000 + b"</article></body></html>"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("inputs") / "m")


def _page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    counts: dict[str, int]
    agents: list[str]
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/html", **headers) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.lock:
            self.counts[self.path] = self.counts.get(self.path, 0) + 1
            seen = self.counts[self.path]
            self.agents.append(self.headers.get("User-Agent", ""))
        routes = {
            "/news": lambda: self._send(200, _page("news.html"), "text/html; charset=utf-8"),
            "/amp": lambda: self._send(200, _page("amp.html")),
            "/cp1251": lambda: self._send(200, _page("windows1251.html")),  # no charset in the header: the meta tag
            "/plain": lambda: self._send(200, b"Ridge retaken\n\nTroops entered the town.\n\nTalks resumed.",
                                         "text/plain; charset=utf-8"),
            "/missing": lambda: self._send(404, b"not here"),
            "/flaky": lambda: self._send(500, b"busy") if seen == 1 else self._send(200, _page("amp.html")),
            "/down": lambda: self._send(503, b"down"),
            "/slow": lambda: (time.sleep(2), self._send(200, _page("news.html"))),
            "/big": lambda: self._send(200, BIG),
            "/loop": lambda: self._send(302, Location="/loop"),
            "/report.pdf": lambda: self._send(200, b"%PDF-1.7 invented", "application/pdf"),
            "/empty": lambda: self._send(200, _page("no_article.html")),
        }
        routes.get(self.path, lambda: self._send(404))()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (the slow page, the size cap) is what those tests expect


@pytest.fixture
def server():
    """A local web server on a free port, in a daemon thread; yields (base URL, request counts, user agents)."""
    counts: dict[str, int] = {}
    agents: list[str] = []
    handler = type("Handler", (_Handler,), {"counts": counts, "agents": agents})
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", counts, agents
    httpd.shutdown()
    httpd.server_close()


def _fast(tmp_path: Path, **changes) -> FetchSettings:
    return FetchSettings(**{"timeout": 0.5, "max_bytes": CAP, "retries": 1, "backoff": 0.05,
                            "cache_dir": tmp_path / "cache", **changes})


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- pages -------------------------------------------------------------------------------------------------------

def test_a_news_page_gives_its_paragraphs_and_metadata_and_none_of_its_chrome():
    article = extract_article(_page("news.html"), "news.html")
    assert len(article.paragraphs) == 5 and article.paragraphs[0].startswith("Soldiers of the invented 14th")
    assert article.paragraphs[-1].startswith("Farmers in the valley")
    for fragment in CHROME:
        assert not any(fragment in p for p in article.paragraphs), fragment
    assert article.title == "Brigade retakes Velmora ridge after night march"
    assert (article.date, article.site, article.author) == ("2024-05-03", "The Harbor Ledger", "Ilsa Marchetti")
    assert article.title not in article.paragraphs


def test_a_page_without_an_article_is_skipped_with_a_reason():
    with pytest.raises(SkippedInput, match="no article text"):
        extract_article(_page("no_article.html"), "no_article.html")


def test_a_page_in_windows_1251_declared_in_a_meta_tag_is_decoded():
    article = extract_article(_page("windows1251.html"), "windows1251.html")
    assert article.title == "Бригада заняла хребет Велмора" and article.site == "Северный Вестник"
    assert article.date == "2024-06-11" and len(article.paragraphs) == 3
    assert "Ярослав Кременцов" in article.paragraphs[0] and not any("Главная" in p for p in article.paragraphs)


def test_an_amp_page_gives_its_article_without_the_consent_banner():
    article = extract_article(_page("amp.html"), "amp.html")
    assert len(article.paragraphs) == 3 and article.paragraphs[0].startswith("A drone struck a grain warehouse")
    assert not any("cookies" in p for p in article.paragraphs)
    assert (article.title, article.date, article.site) == ("Drone strike hits Kell river port", "2024-07-19", "Lantern Wire")


# --- plain text: title and chrome ----------------------------------------------------------------------------------

PASTED = """Skip to content
Home | World | Europe | Sport
Menu

Army retakes Velmora ridge

Troops entered the town after a night march.

Advertisement

Rockets hit the depot, killing two.
"""


def test_a_headline_is_the_title_and_chrome_lines_are_dropped_and_counted():
    article = read_text_article(PASTED)
    assert article.title == "Army retakes Velmora ridge"
    assert article.paragraphs == ["Troops entered the town after a night march.", "Rockets hit the depot, killing two."]
    assert article.chrome_dropped == 4


@pytest.mark.parametrize("text", [
    "Troops captured the ridge town.\n\nRockets hit the depot.",  # a sentence, not a headline
    "Troops captured the ridge town after a night march\nand held it\n\nRockets hit the depot.",  # two lines
    "Troops entered the village",  # nothing follows: it is the article
    " ".join(["word"] * 21) + "\n\nRockets hit the depot.",  # too long for a headline
])
def test_what_is_not_a_title(text):
    article = read_text_article(text)
    assert article.title is None and article.paragraphs[0] == " ".join(text.split("\n\n")[0].split())


def test_the_title_is_predicted_only_with_keep_title(model, tmp_path, capsys):
    article = tmp_path / "pasted.txt"
    article.write_text(PASTED)
    out, kept = tmp_path / "out.jsonl", tmp_path / "kept.jsonl"
    assert predict_main(["--model", str(model), str(article), "--output", str(out)]) == 0
    assert "2 paragraphs" in capsys.readouterr().err
    rows = _rows(out)
    assert [r["paragraph"] for r in rows] == [0, 1] and all(r["title"] == "Army retakes Velmora ridge" for r in rows)
    assert predict_main(["--model", str(model), str(article), "--output", str(kept), "--keep-title"]) == 0
    assert [r["text"] for r in _rows(kept)][0] == "Army retakes Velmora ridge"
    assert "4 chrome lines dropped" in capsys.readouterr().err


# --- files, folders, tables ----------------------------------------------------------------------------------------

def test_a_saved_page_predicts_with_article_fields_and_writes_the_event_table(model, tmp_path, capsys):
    out, events = tmp_path / "out.csv", tmp_path / "events.csv"
    page = str(PAGES / "news.html")
    assert predict_main(["--model", str(model), page, "--output", str(out), "--events", str(events)]) == 0
    rows = _rows(out)
    assert len(rows) == 5 and [r["paragraph"] for r in rows] == ["0", "1", "2", "3", "4"]
    for row in rows:
        assert (row["source"], row["article"], row["date"], row["site"]) == (page, page, "2024-05-03", "The Harbor Ledger")
        assert row["title"] == "Brigade retakes Velmora ridge after night march"
    table = _rows(events)
    assert events.read_text().splitlines()[0] == "date,article,title,site,paragraph,label,main,confidence,low_confidence,text"
    assert [t["text"] for t in table] == [r["text"] for r in rows if r["label"] != "other"]
    assert "news.html: 5 paragraphs" in capsys.readouterr().err


def test_the_event_table_keeps_every_row_when_the_model_has_no_fallback(tmp_path):
    model = save_tiny_model(tmp_path / "m", labels=["a", "b", "c"], fallback_label=None)
    events = tmp_path / "events.jsonl"
    assert predict_main(["--model", str(model), str(PAGES / "amp.html"), "--events", str(events),
                         "--min-confidence", "0.9"]) == 0
    table = _rows(events)
    assert len(table) == 3 and all(t["low_confidence"] is True for t in table)
    assert {t["date"] for t in table} == {"2024-07-19"} and table[0]["confidence"] > 0


def test_a_folder_is_read_recursively_by_suffix(model, tmp_path, capsys):
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(PASTED)
    (folder / "sub" / "page.html").write_bytes(_page("amp.html"))
    (folder / "sub" / "items.jsonl").write_text('{"id": "i1", "text": "Talks resumed."}\n')
    (folder / ".hidden.txt").write_text("Not read.")
    (folder / "scan.pdf").write_bytes(b"%PDF")
    out = tmp_path / "out.jsonl"
    assert predict_main(["--model", str(model), str(folder), "--output", str(out)]) == 0
    rows = _rows(out)
    assert sorted({Path(r["source"]).name for r in rows}) == ["a.txt", "items.jsonl", "page.html"]
    assert len(rows) == 2 + 3 + 1


def test_csv_and_tsv_with_text_and_id_columns_carry_the_other_columns(model, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("story,body,desk\ns1,\"Troops entered the town, officials said.\",europe\ns2,,asia\n")
    tsv = tmp_path / "t.tsv"
    tsv.write_text("text\tdesk\nTalks resumed.\tafrica\n")
    out = tmp_path / "out.jsonl"
    assert predict_main(["--model", str(model), str(table), str(tsv), "--text-column", "body", "--id-column", "story",
                         "--output", str(out)]) == 2  # the .tsv has no 'body' column
    assert predict_main(["--model", str(model), str(table), "--text-column", "body", "--id-column", "story",
                         "--output", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["id"] == "s1" and rows[0]["desk"] == "europe" and "body" not in rows[0]
    assert predict_main(["--model", str(model), str(tsv), "--output", str(out)]) == 0
    assert _rows(out)[0]["desk"] == "africa"


# --- fetching ------------------------------------------------------------------------------------------------------

def test_a_page_is_fetched_with_a_clear_user_agent(server, tmp_path):
    base, counts, agents = server
    with Fetcher(_fast(tmp_path)) as fetcher:
        page = fetcher.fetch(f"{base}/news")
    assert page.kind == "html" and b"Velmora" in page.body and counts["/news"] == 1
    assert agents[0].startswith("event-classifier/") and "research" in agents[0]  # names the tool and its use


@pytest.mark.parametrize("path, message", [
    ("/missing", "HTTP 404"),
    ("/down", "HTTP 503"),
    ("/slow", "timed out after 0.5 s"),
    ("/big", f"larger than {CAP:,} bytes"),
    ("/loop", "redirects"),
    ("/report.pdf", "'application/pdf' is not a web page"),
])
def test_a_bad_url_fails_with_a_reason(server, tmp_path, path, message):
    base, counts, _ = server
    started = time.monotonic()
    with Fetcher(_fast(tmp_path)) as fetcher, pytest.raises(SkippedInput, match=message) as failure:
        fetcher.fetch(base + path)
    assert str(failure.value).startswith(base + path)
    assert time.monotonic() - started < 3  # time-outs and retries are bounded
    assert not list((tmp_path / "cache").glob("*.json"))  # failures are not cached
    if path in {"/down", "/slow"}:
        assert counts[path] == 2  # retried once
    if path == "/missing":
        assert counts[path] == 1  # a 404 is not retried


def test_a_500_then_200_is_retried(server, tmp_path):
    base, counts, _ = server
    with Fetcher(_fast(tmp_path)) as fetcher:
        assert b"Kell river port" in fetcher.fetch(f"{base}/flaky").body
    assert counts["/flaky"] == 2


def test_only_http_and_https_are_fetched(tmp_path):
    with Fetcher(_fast(tmp_path)) as fetcher, pytest.raises(SkippedInput, match="not an http"):
        fetcher.fetch("file:///etc/passwd")


def test_a_url_list_predicts_the_good_ones_reports_the_bad_and_exits_3(server, model, tmp_path, capsys):
    base, counts, _ = server
    good = ["/news", "/flaky", "/cp1251", "/plain", "/amp"]
    bad = ["/missing", "/slow", "/big", "/loop", "/report.pdf", "/empty"]
    urls = tmp_path / "urls.txt"
    urls.write_text("# links for the test\n\n" + "\n".join(base + p for p in bad[:3] + good + bad[3:]) + "\nftp://x/y\n")
    out, events = tmp_path / "out.jsonl", tmp_path / "events.csv"
    args = ["--model", str(model), "--urls", str(urls), "--output", str(out), "--events", str(events),
            "--timeout", "0.5", "--max-page-bytes", str(CAP), "--retries", "1", "--cache-dir", str(tmp_path / "cache")]
    assert predict_main(args) == 3
    err = capsys.readouterr().err
    rows = _rows(out)
    assert [r["source"] for r in rows if r["paragraph"] == 0] == [base + p for p in good]
    assert {r["article"] for r in rows} == {base + p for p in good}
    for fragment in CHROME:
        assert not any(fragment in r["text"] for r in rows), fragment
    news = [r for r in rows if r["source"] == base + "/news"]
    assert len(news) == 5 and news[0]["title"].startswith("Brigade retakes") and news[0]["site"] == "The Harbor Ledger"
    assert any("Ярослав Кременцов" in r["text"] for r in rows)
    assert [r["text"] for r in rows if r["source"] == base + "/plain"] == ["Troops entered the town.", "Talks resumed."]
    assert "7 input(s) failed and were skipped" in err
    summary = err[err.index("input(s) failed"):]
    for path in bad:
        assert base + path in summary
    assert "ftp://x/y: not an http(s) URL" in summary and "no article text" in summary
    assert events.exists() and f"{base}/news: 5 paragraphs" in err

    before = dict(counts)
    assert predict_main(args) == 3  # again: the good pages come from the cache
    assert all(counts[p] == before[p] for p in good)
    assert _rows(out) == rows
    assert predict_main(args + ["--no-cache"]) == 3
    assert counts["/news"] == before["/news"] + 1
