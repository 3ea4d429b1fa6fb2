"""The web app's JSON API on the tiny model: every endpoint, and every bad input answered as JSON `{"error": ...}`
with a 4xx/5xx code and no traceback. The texts and pages here are written for these tests; places are invented."""

import csv
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from event_classifier.cli import serve_main
from event_classifier.fetch import FetchSettings
from event_classifier.serving import ServeSettings, create_app

from conftest import LABELS, save_tiny_model

ARTICLE = ("Harbour Ledger\n\nTroops entered the hill town of Varnel at dawn after a night march.\n\n"
           "Rockets struck the depot near Osk, killing two guards.\n\nEnvoys met in Lisk for ceasefire talks.")
PAGE = (b"<html><head><title>Varnel retaken</title></head><body><nav>Home | World</nav><article><h1>Varnel retaken</h1>"
        b"<p>Troops retook the river crossing at Varnel on Tuesday after two days of fighting, officials said.</p>"
        b"<p>Envoys from both sides are due to meet next week to discuss an exchange of prisoners.</p>"
        b"</article></body></html>")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("serving") / "m")


def _client(model: Path, tmp: Path, **settings) -> TestClient:
    settings = {"feedback_dir": tmp / "feedback", "fetch": FetchSettings(cache_dir=None, retries=0), **settings}
    return TestClient(create_app(model, ServeSettings(**settings)), base_url="http://127.0.0.1",
                      raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(model, tmp_path_factory) -> TestClient:
    return _client(model, tmp_path_factory.mktemp("app"), max_body_bytes=20_000, max_upload_bytes=30_000)


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_health_model_page_and_docs(client):
    assert client.get("/api/health").json() == {"status": "ok", "model": "m", "version": client.get("/api/health").json()["version"]}
    info = client.get("/api/model").json()
    assert info["labels"] == LABELS and info["fallback_label"] == "other" and info["explain_method"] in {"ig", "occlusion"}
    assert info["task"] == "single_label" and info["thresholds"] == {}
    assert [item["name"] for item in info["label_descriptions"]] == LABELS
    assert "temperature" in info["calibration"] and info["metrics"] is None  # a bare model folder has no run metrics
    page = client.get("/")
    assert page.status_code == 200 and "<textarea" in page.text and "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert "innerHTML" not in client.get("/static/app.js").text  # data is only ever inserted as text
    assert client.get("/docs").status_code == 200
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def test_a_trained_runs_model_endpoint_gives_its_metrics_and_training_data(tmp_path):
    from conftest import train_tiny_run

    _, run = train_tiny_run(tmp_path, epochs=1)
    info = _client(run, tmp_path).get("/api/model").json()
    assert info["name"] == "r1" and set(info["metrics"]) == {"dev", "test"} and "macro_f1" in info["metrics"]["test"]
    assert info["training_data"]["train"]["rows"] > 0 and info["calibration"]["test_ece"] is not None


def test_predict_texts_article_with_explanations(client):
    answer = client.post("/api/predict", json={"texts": ["Troops captured the ridge.", "Talks went on in Lisk."],
                                               "explain": True, "min_confidence": 0.9}).json()
    assert answer["model"]["labels"] == LABELS and answer["model"]["min_confidence"] == 0.9
    first = answer["paragraphs"][0]
    assert set(first) >= {"text", "label", "score", "probs", "low_confidence", "evidence"}
    assert first["low_confidence"] and first["label"] == "other"  # a random model is never 90 % sure
    assert first["evidence"] and all(first["text"][w["start"]:w["end"]] == w["token"] for w in first["evidence"])
    article = client.post("/api/predict", json={"article": ARTICLE}).json()["paragraphs"]
    assert [p["paragraph"] for p in article] == [0, 1, 2] and article[0]["title"] == "Harbour Ledger"
    assert article[0]["article"].startswith("pasted:")  # one id per pasted article: its corrections stay together
    assert all(p["evidence"] == [] for p in article)


def test_a_paragraph_with_markup_comes_back_as_data(client):
    text = "Troops <script>alert('x')</script> entered <b>Varnel</b>."
    paragraph = client.post("/api/predict", json={"texts": [text]}).json()["paragraphs"][0]
    assert paragraph["text"] == text  # returned as JSON text; the page inserts it with textContent


def test_bad_predict_requests_are_json_errors(client):
    assert "exactly one of texts, article or url" in _error(client.post("/api/predict", json={}), 422)
    assert "exactly one" in _error(client.post("/api/predict", json={"texts": ["a"], "article": "b"}), 422)
    assert "texts.0" in _error(client.post("/api/predict", json={"texts": ["  "]}), 422)
    assert "min_confidence" in _error(client.post("/api/predict", json={"texts": ["a"], "min_confidence": 1.5}), 422)
    assert "extra" in _error(client.post("/api/predict", json={"texts": ["a"], "colour": 1}), 422).lower()
    _error(client.post("/api/predict", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert "no text received" in _error(client.post("/api/predict", json={"article": "   \n\n  "}), 400)
    assert "not found" in _error(client.get("/api/nothing"), 404).lower()
    _error(client.get("/api/predict"), 405)


def test_bodies_over_the_cap_are_refused_with_413(client):
    assert "20,000 bytes" in _error(client.post("/api/predict", json={"texts": ["word " * 5000]}), 413)

    def chunks():  # no Content-Length: the cap holds on the bytes received
        yield b'{"texts": ["'
        for _ in range(30):
            yield b"word " * 200
        yield b'"]}'

    _error(client.post("/api/predict", content=chunks(), headers={"content-type": "application/json"}), 413)
    upload = {"file": ("big.txt", b"Troops entered the town.\n\n" * 2000, "text/plain")}
    assert "30,000 bytes" in _error(client.post("/api/predict/file", files=upload), 413)


@pytest.mark.parametrize("name, content, expected", [
    ("a.txt", ARTICLE.encode(), 3),
    ("a.jsonl", b'{"text": "Troops entered Varnel.", "id": "x1"}\n{"text": "Talks in Lisk."}\n', 2),
    ("a.csv", b"id,text\n1,Troops entered Varnel.\n2,Talks in Lisk.\n", 2),
    ("a.html", PAGE, 2),
])
def test_uploaded_files_are_read_like_predict_reads_them(client, name, content, expected):
    rows = client.post("/api/predict/file", files={"file": (name, content, "application/octet-stream")}).json()["paragraphs"]
    assert len(rows) == expected and all(r["source"] == name for r in rows)
    if name != "a.txt":
        assert all("/tmp" not in json.dumps(r) for r in rows)  # the temporary copy's path never leaks


def test_bad_uploads_name_the_file(client):
    assert "unsupported file type '.exe'" in _error(client.post("/api/predict/file", files={"file": ("x.exe", b"MZ")}), 400)
    error = _error(client.post("/api/predict/file", files={"file": ("b.jsonl", b'{"text": "a"}\n{broken\n')}), 400)
    assert error.startswith("b.jsonl:2: broken JSON line")
    assert "column 'body'" in _error(client.post("/api/predict/file", files={"file": ("c.csv", b"text\nTroops.\n")},
                                                 data={"text_column": "body"}), 400)
    assert "unsupported file type ''" in _error(client.post("/api/predict/file", files={"file": ("..", b"x")}), 400)
    assert "no article text" in _error(client.post("/api/predict/file", files={"file": ("d.html", b"<html></html>")}), 422)


class _Pages(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/moved?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)


@pytest.fixture(scope="module")
def local_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_urls_on_private_addresses_are_refused_unless_allowed(client, local_site, model, tmp_path):
    for url in (f"{local_site}/a", "http://localhost:9/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
                "http://[::1]:9/x", "http://[::ffff:127.0.0.1]/x"):
        assert "loopback, private or link-local" in _error(client.post("/api/predict", json={"url": url}), 422)
    assert "not an http(s) URL" in _error(client.post("/api/predict", json={"url": "/etc/passwd"}), 422)
    assert "not an http(s) URL" in _error(client.post("/api/predict", json={"url": "file:///etc/passwd"}), 422)
    allowed = _client(model, tmp_path, allow_private_urls=True)
    rows = allowed.post("/api/predict", json={"url": f"{local_site}/a"}).json()["paragraphs"]
    assert len(rows) == 2 and rows[0]["title"] == "Varnel retaken" and rows[0]["article"] == f"{local_site}/a"


def test_a_redirect_to_a_private_address_is_refused(client, local_site, monkeypatch):
    """The check runs on every request of a fetch, redirects included: here 127.0.0.1 passes for a public address,
    and its page redirects to localhost."""
    import ipaddress

    from event_classifier import fetch

    real = fetch.resolve_host
    monkeypatch.setattr(fetch, "resolve_host", lambda host: [ipaddress.ip_address("93.184.216.34")]
                        if host == "127.0.0.1" else real(host))
    port = local_site.rsplit(":", 1)[1]
    error = _error(client.post("/api/predict", json={"url": f"{local_site}/moved?to=http://localhost:{port}/a"}), 422)
    assert f"http://localhost:{port}/a" in error and "loopback, private or link-local" in error


def test_feedback_is_appended_and_unknown_labels_refused(model, tmp_path):
    client = _client(model, tmp_path)
    assert "unknown label 'riot'" in _error(client.post("/api/feedback", json={"text": "Crowds marched.", "label": "riot"}), 400)
    assert "label" in _error(client.post("/api/feedback", json={"text": "Crowds marched."}), 422)
    saved = client.post("/api/feedback", json={"text": "Troops  entered\nVarnel.", "label": "military_advance",
                                               "previous_label": "other", "article": "pasted text"})
    assert saved.status_code == 201
    path = tmp_path / "feedback" / saved.json()["saved"]
    first = path.read_bytes()
    client.post("/api/feedback", json={"text": "Rockets hit Osk.", "label": "attack", "previous_label": "other"})
    content = path.read_bytes()
    assert content.startswith(first)  # appended: the earlier line is untouched
    rows = [json.loads(line) for line in content.decode().splitlines()]
    assert rows[0] == {"text": "Troops entered Varnel.", "label": "military_advance", "previous_label": "other", "model": "m",
                       "article": "pasted text", "article_id": "feedback:pasted text", "time": rows[0]["time"]}
    assert rows[1]["label"] == "attack" and rows[1]["time"].endswith("Z")


def test_export_writes_jsonl_csv_and_the_event_table(client):
    rows = client.post("/api/predict", json={"article": ARTICLE, "explain": True}).json()["paragraphs"]
    rows[1]["label"] = "attack"  # a correction made in the page
    jsonl = client.post("/api/export", json={"format": "jsonl", "paragraphs": rows})
    assert jsonl.headers["content-disposition"] == 'attachment; filename="predictions.jsonl"'
    assert [json.loads(line)["label"] for line in jsonl.text.splitlines()][1] == "attack"
    csv_text = client.post("/api/export", json={"format": "csv", "paragraphs": rows}).text
    header = csv_text.splitlines()[0].split(",")
    assert header[:3] == ["source", "article", "title"] and "p_attack" in header and "evidence" in header
    events = client.post("/api/export", json={"format": "events", "paragraphs": rows}).text.splitlines()
    assert events[0].startswith("date,article,title") and any(",attack," in line for line in events[1:])
    table = list(csv.DictReader(io.StringIO("\n".join(events))))
    corrected = [(t["label"], t["main"]) for t in table if t["paragraph"] == str(rows[1]["paragraph"])]
    assert corrected == [("attack", "True")]  # the corrected paragraph: its new label only, as its main one
    assert json.loads(jsonl.text.splitlines()[1])["labels"] == ["attack"]
    rows[0]["label"] = "riot"
    assert "unknown label" in _error(client.post("/api/export", json={"format": "csv", "paragraphs": rows}), 400)
    assert "format" in _error(client.post("/api/export", json={"format": "xlsx", "paragraphs": []}), 422)


def test_no_cors_unless_configured_and_only_local_host_names(model, tmp_path, client):
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/api/predict", headers=preflight).headers
    assert "access-control-allow-origin" not in client.get("/api/health", headers={"Origin": "https://elsewhere.example"}).headers
    opened = _client(model, tmp_path, cors_origins=("https://elsewhere.example",))
    assert opened.get("/api/health", headers={"Origin": "https://elsewhere.example"}).headers[
        "access-control-allow-origin"] == "https://elsewhere.example"
    rebound = TestClient(client.app, base_url="http://attacker.example")
    assert "not served" in _error(rebound.get("/api/health"), 400)


def test_an_unexpected_failure_is_a_json_500_without_traceback(model, tmp_path, monkeypatch):
    client = _client(model, tmp_path)
    service = client.app.state.service
    monkeypatch.setattr(service.predictor, "predict_proba", lambda texts: 1 / 0)
    error = _error(client.post("/api/predict", json={"texts": ["Troops entered Varnel."]}), 500)
    assert "ZeroDivisionError" in error and "line" not in error
    monkeypatch.undo()
    assert client.post("/api/predict", json={"texts": ["Troops entered Varnel."]}).status_code == 200  # still serving


def test_concurrent_requests_are_batched_and_each_gets_its_own_paragraphs(client):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Troops entered village number {i} after shelling." for i in range(40)]
    expected = {t: client.post("/api/predict", json={"texts": [t]}).json()["paragraphs"][0]["probs"] for t in texts[:3]}
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: client.post("/api/predict", json={"texts": texts[i:i + 3]}).json(), range(0, 40, 3)))
    for i, answer in zip(range(0, 40, 3), answers):
        assert [p["text"] for p in answer["paragraphs"]] == texts[i:i + 3]
    first = answers[0]["paragraphs"]
    assert all(p["probs"] == pytest.approx(expected[p["text"]], abs=1e-5) for p in first)


def test_serve_refuses_a_model_that_cannot_load_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert serve_main(["--model", str(tmp_path / "empty"), "--feedback-dir", str(tmp_path / "fb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "not a model folder" in err
    assert serve_main(["--model", str(tmp_path / "nowhere"), "--min-confidence", "2"]) == 2


def test_the_load_benchmark_runs_against_a_real_server(model, tmp_path):
    import asyncio
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import serve_load

    with serve_load.running_server(str(model), tmp_path / "feedback", lifetime=300) as url:
        figures = asyncio.run(serve_load.load(url, {"article": ARTICLE}, clients=4, requests=3, deadline_s=120,
                                              request_timeout=60))
    assert figures["errors"] == 0 and figures["ok"] == 12 and figures["paragraphs_per_s"] > 0
    assert figures["p50_s"] <= figures["p95_s"]
