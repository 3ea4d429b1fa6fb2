"""The web app: `create_app(model_dir)` loads the model once and serves the JSON API, the page at `/` and the
OpenAPI docs at `/docs`. Inputs are read by documents.py, predicted by inference.Predictor, explained by explain.py,
exported by prediction_output.py and corrections kept by feedback.py: the app only wires them to HTTP."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from event_classifier import __version__
from event_classifier.config import PROJECT_ROOT, DataConfig
from event_classifier.documents import FOLDER_SUFFIXES, InputCounts, InputOptions, read_inputs, read_text_input
from event_classifier.errors import EventClassifierError, SkippedInput
from event_classifier.explain import METHODS, Explainer
from event_classifier.feedback import record_correction
from event_classifier.fetch import FetchSettings, check_url
from event_classifier.inference import Predictor
from event_classifier.io import read_json
from event_classifier.prediction_output import label_set, write_predictions
from event_classifier.runs import run_dir_of
from event_classifier.serving.batching import BatchingPredictor
from event_classifier.serving.guards import declared_size_check, host_check, install_error_handlers, security_headers
from event_classifier.serving.schemas import (ErrorResponse, ExportRequest, FeedbackRequest, FeedbackResponse, Health,
                                              LabelInfo, ModelInfo, ModelSummary, PredictRequest, PredictResponse)

STATIC = Path(__file__).resolve().parent / "static"
ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 422, 500)}
EXPORTS = {"jsonl": ("predictions.jsonl", "application/x-ndjson"), "csv": ("predictions.csv", "text/csv"),
           "events": ("events.csv", "text/csv")}


@dataclass
class ServeSettings:
    """How the app runs; `event-classifier serve` fills it from its options, tests shorten it."""

    feedback_dir: Path = PROJECT_ROOT / str(DataConfig.feedback)  # where corrections go; data/prepare.py reads them
    min_confidence: float = 0.5  # default threshold under which a paragraph is flagged low-confidence
    allow_private_urls: bool = False  # fetch links to loopback, private and link-local addresses too
    cors_origins: tuple[str, ...] = ()  # other sites' pages allowed to call the API; none by default
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")  # Host names answered (stops DNS rebinding); "*" = any
    max_body_bytes: int = 2_000_000  # a JSON request
    max_upload_bytes: int = 10_000_000  # a file sent to /api/predict/file
    explain_method: str = METHODS[0]  # explain.METHODS
    fetch: FetchSettings = field(default_factory=FetchSettings)


class Service:
    """The model loaded once, with what answers requests: reading inputs, predicting, explaining, corrections."""

    def __init__(self, model_dir: str | Path, settings: ServeSettings):
        self.settings = settings
        self.predictor = Predictor(model_dir)
        self.explainer = Explainer(self.predictor, method=settings.explain_method)
        self.lock = threading.Lock()  # one batch at a time on the model: two cores gain nothing from more
        self.batcher = BatchingPredictor(self.predictor, self.lock)
        run = run_dir_of(self.predictor.directory)
        self.run = run
        self.name = (run or self.predictor.directory).resolve().name
        self.options = InputOptions(fetch=dataclasses.replace(settings.fetch, allow_private=settings.allow_private_urls))

    def summary(self, min_confidence: float) -> ModelSummary:
        meta = self.predictor.meta
        return ModelSummary(name=self.name, labels=self.predictor.labels, fallback_label=meta.fallback_label,
                            min_confidence=min_confidence, version=__version__, task=meta.task,
                            thresholds=meta.thresholds if meta.multi_label else {})

    def info(self) -> ModelInfo:
        meta = self.predictor.meta
        metrics_file = self.run / "metrics.json" if self.run else None
        metrics = read_json(metrics_file) if metrics_file and metrics_file.exists() else None
        kept = ("n", "macro_f1", "macro_f1_ci95", "accuracy", "ece", "ece_uncalibrated", "per_class")
        figures = {split: {k: v for k, v in metrics[split].items() if k in kept}
                   for split in ("dev", "test") if split in metrics} if metrics else None
        test = (metrics or {}).get("test", {})
        return ModelInfo(**self.summary(self.settings.min_confidence).model_dump(), backbone=meta.backbone,
                         label_descriptions=[LabelInfo(name=l.name, description=l.description) for l in meta.labels],
                         explain_method=self.explainer.method, metrics=figures, training_data=meta.data,
                         calibration={"temperature": meta.temperature, "test_ece": test.get("ece"),
                                      "test_ece_uncalibrated": test.get("ece_uncalibrated")})

    def read_request(self, request: PredictRequest) -> list[dict]:
        counts = InputCounts()
        if request.texts is not None:
            return [{"source": "texts", "article": None, "paragraph": i, "text": " ".join(text.split())}
                    for i, text in enumerate(request.texts)]
        if request.article is not None:  # named by its content, so corrections from one paste share an article id
            name = f"pasted:{hashlib.sha256(request.article.encode('utf-8')).hexdigest()[:12]}"
            return list(read_text_input(name, request.article, counts, self.options))
        url = request.url.strip()
        check_url(url, self.settings.allow_private_urls)  # before read_inputs, which would read a bare path as a file
        records = list(read_inputs([url], counts, self.options))
        if counts.failures:
            raise SkippedInput(next(iter(counts.failures.values())))
        return records

    def read_upload(self, upload: UploadFile, text_column: str) -> list[dict]:
        name = Path(upload.filename or "upload.txt").name
        suffix = Path(name).suffix.lower()
        if suffix not in FOLDER_SUFFIXES:
            raise EventClassifierError(f"{name}: unsupported file type {suffix!r}; give {', '.join(sorted(FOLDER_SUFFIXES))}")
        counts = InputCounts()
        with tempfile.TemporaryDirectory(prefix="event_classifier_upload") as folder:
            path = Path(folder) / f"upload{suffix}"  # never a name from the request
            path.write_bytes(upload.file.read())
            try:
                records = list(read_inputs([str(path)], counts, dataclasses.replace(self.options, text_column=text_column)))
            except EventClassifierError as exc:  # name the file as the analyst knows it, not the temporary copy
                raise type(exc)(str(exc).replace(str(path), name)) from None
        if counts.failures:
            raise SkippedInput(next(iter(counts.failures.values())).replace(str(path), name))
        return [{**r, "source": name, "article": name if r.get("article") == str(path) else r.get("article")} for r in records]

    def predict(self, records: list[dict], min_confidence: float | None, explain: bool) -> PredictResponse:
        threshold = self.settings.min_confidence if min_confidence is None else min_confidence
        predictor = copy.copy(self.predictor)  # the same model; only this request's threshold differs
        predictor.min_confidence = threshold
        texts = [r["text"] for r in records]
        predictions = [predictor.decide(p) for p in self.batcher.predict_proba(texts)]
        evidence = [[] for _ in texts]
        if explain:
            with self.lock:
                evidence = self.explainer.explain(texts, [max(p["probs"], key=p["probs"].get) for p in predictions])
        rows = [{**r, "low_confidence": False, **p, "evidence": e} for r, p, e in zip(records, predictions, evidence)]
        return PredictResponse(model=self.summary(threshold), paragraphs=rows)


def create_app(model_dir: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """The app for one model folder (or run folder). The model loads here, once: a folder that cannot be loaded
    raises EventClassifierError before any request is served."""
    settings = settings or ServeSettings()
    service = Service(model_dir, settings)
    upload_path = "/api/predict/file"

    def body_limit(path: str) -> int:
        return settings.max_upload_bytes if path in {upload_path, "/api/export"} else settings.max_body_bytes

    app = FastAPI(title="event_classifier", version=__version__, responses=ERRORS,
                  description="Label news paragraphs as military_advance, attack, diplomacy or other; see why; "
                              "correct them. Every error is JSON `{\"error\": \"...\"}`.")
    app.state.service = service
    install_error_handlers(app, body_limit)
    app.middleware("http")(security_headers)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type"])
    app.middleware("http")(declared_size_check(body_limit))
    app.middleware("http")(host_check(settings.allowed_hosts))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", model=service.name, version=__version__)

    @app.get("/api/model", response_model=ModelInfo)
    def model() -> ModelInfo:
        """Labels with their descriptions, metrics, calibration and training data of the loaded model."""
        return service.info()

    capped = {"max_body_size": settings.max_body_bytes}

    @app.post("/api/predict", response_model=PredictResponse, **capped)
    def predict(request: PredictRequest) -> PredictResponse:
        """Label paragraphs given as `texts`, an `article`'s text, or a `url` to fetch."""
        return service.predict(service.read_request(request), request.min_confidence, request.explain)

    @app.post(upload_path, response_model=PredictResponse, max_body_size=settings.max_upload_bytes)
    def predict_file(file: UploadFile = File(..., description=".txt, .md, .html, .jsonl, .csv or .tsv"),
                     min_confidence: Optional[float] = Form(None, ge=0, lt=1), explain: bool = Form(False),
                     text_column: str = Form("text")) -> PredictResponse:
        """Label the paragraphs of an uploaded file, read as `predict.py` reads a file of that type."""
        return service.predict(service.read_upload(file, text_column), min_confidence, explain)

    @app.post("/api/feedback", response_model=FeedbackResponse, status_code=201, **capped)
    def feedback(correction: FeedbackRequest) -> FeedbackResponse:
        """Append a corrected label to the feedback file of the day; `data/prepare.py` reads it as a source."""
        saved = record_correction(settings.feedback_dir, correction.text, correction.label, correction.previous_label,
                                  service.predictor.labels, service.name, correction.article)
        return FeedbackResponse(saved=Path(saved["path"]).name, time=saved["time"])

    @app.post("/api/export", response_class=Response, max_body_size=settings.max_upload_bytes)
    def export(request: ExportRequest) -> Response:
        """Paragraphs (as /api/predict returned them, corrections included) as JSONL, CSV or the event table."""
        labels = service.predictor.labels
        rows = [p.model_dump() for p in request.paragraphs]  # write_predictions puts a corrected label in `labels`
        unknown = sorted({label for r in rows for label in label_set(r)} - set(labels))
        if unknown:
            raise EventClassifierError(f"unknown label(s) {unknown}; the model's labels are {labels}")
        filename, media = EXPORTS[request.format]
        with tempfile.TemporaryDirectory(prefix="event_classifier_export") as folder:
            output = Path(folder) / ("rows.csv" if request.format == "csv" else "rows.jsonl")
            events = Path(folder) / filename if request.format == "events" else None
            write_predictions(rows, str(output), "csv" if request.format == "csv" else "jsonl", labels,
                              str(events) if events else None, service.predictor.meta.fallback_label)
            content = (events or output).read_bytes()
        return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    return app
