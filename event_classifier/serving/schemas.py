"""Request and response bodies of the JSON API (they also make the OpenAPI docs at /docs)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_TEXTS = 2000  # paragraphs in one request; the body-size cap bounds their length
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class PredictRequest(BaseModel):
    """Exactly one of `texts`, `article` or `url`."""

    model_config = ConfigDict(extra="forbid")
    texts: Optional[list[Text]] = Field(None, max_length=MAX_TEXTS, description="paragraphs, one label each")
    article: Optional[str] = Field(None, description="an article's text: paragraphs separated by blank lines, as a .txt "
                                                     "file (a headline and page chrome are recognised)")
    url: Optional[str] = Field(None, description="an http(s) link to an article page, fetched and extracted")
    min_confidence: Optional[float] = Field(None, ge=0, lt=1, description="flag predictions below this and route them "
                                                                          "to the fallback label (default: the server's)")
    explain: bool = Field(False, description="add `evidence`: the words that drove each label (about a second each)")

    @model_validator(mode="after")
    def _one_input(self) -> "PredictRequest":
        given = [name for name in ("texts", "article", "url") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of texts, article or url (got {', '.join(given) or 'none'})")
        return self


class Evidence(BaseModel):
    token: str = Field(description="a word of the paragraph")
    weight: float = Field(description="its share of the attribution, in [-1, 1]; positive pushed towards the label")
    start: int = Field(description="character offset of the word in `text`")
    end: int


class Paragraph(BaseModel):
    """One predicted paragraph; fields of the input (e.g. a CSV row's columns) are carried along."""

    model_config = ConfigDict(extra="allow")
    source: str = ""  # the fields in the order of predict.py's rows
    article: Optional[str] = None
    title: Optional[str] = None
    date: Optional[str] = None
    site: Optional[str] = None
    author: Optional[str] = None
    paragraph: int = 0
    text: str
    label: str
    labels: list[str] = Field(default_factory=list, description="the main label, then (a multi_label model) every "
                              "other label at or over its threshold")
    score: float = Field(description="the probability of the most probable label (calibrated)")
    probs: dict[str, float]
    low_confidence: bool = False
    evidence: list[Evidence] = Field(default_factory=list)


class ModelSummary(BaseModel):
    name: str
    labels: list[str]
    fallback_label: Optional[str]
    min_confidence: float
    version: str
    task: str = Field("single_label", description="single_label, or multi_label: secondary labels over their thresholds")
    thresholds: dict[str, float] = Field(default_factory=dict, description="multi_label: each label's threshold, tuned on dev")


class PredictResponse(BaseModel):
    model: ModelSummary
    paragraphs: list[Paragraph]


class LabelInfo(BaseModel):
    name: str
    description: str


class ModelInfo(ModelSummary):
    label_descriptions: list[LabelInfo]
    backbone: str
    explain_method: str
    metrics: Optional[dict] = Field(None, description="dev and test figures from the run's metrics.json, if any")
    calibration: dict
    training_data: dict = Field(description="the splits the model was trained and tested on: rows, labels, sha256")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text
    label: str = Field(description="the right label")
    previous_label: Optional[str] = Field(None, description="the label the model gave")
    article: Optional[str] = Field(None, description="the article the paragraph came from")


class FeedbackResponse(BaseModel):
    saved: str = Field(description="the feedback file the correction was appended to")
    time: str


class ExportRequest(BaseModel):
    format: Literal["jsonl", "csv", "events"]
    paragraphs: list[Paragraph] = Field(max_length=100_000)


class ErrorResponse(BaseModel):
    error: str


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    version: str
