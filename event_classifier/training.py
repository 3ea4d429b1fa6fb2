"""Fitting: transformers.Trainer with a weighted loss (cross-entropy, or BCE for multi_label), dev macro-F1 of the main
label each epoch, the best checkpoint kept.

`fit` trains and returns the best model; it writes only the Trainer's checkpoints and log into the run folder.
Exporting, calibrating and evaluating are the caller's (see workflow.py).
"""

from __future__ import annotations

import logging
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

from event_classifier.config import Config
from event_classifier.data import label_matrix, row_labels
from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_write_jsonl
from event_classifier.metrics import macro_f1
from event_classifier.meta import MULTI_LABEL_PROBLEM
from event_classifier.model import is_trained_model_folder, load_backbone, resolve_precision

logger = logging.getLogger(__name__)


class TrainingInterrupted(EventClassifierError):
    """Training stopped by Ctrl-C after saving a checkpoint; the message says how to resume."""

    exit_code = 130


@dataclass
class Fitted:
    """The best model of a training run and how it was reached."""

    model: torch.nn.Module
    tokenizer: object
    max_length: int
    precision: str
    stats: dict  # runtime_s, epochs, steps, resumed_from_step, best_checkpoint
    is_main_process: bool = True


def class_weights(labels: list[str], train_labels: list[str]) -> torch.Tensor:
    """Inverse class frequency ("balanced"), so that a balanced data set gets weight 1 everywhere."""
    weights = compute_class_weight("balanced", classes=np.array(labels), y=np.array(train_labels))
    return torch.tensor(weights, dtype=torch.float32)


def positive_weights(targets: np.ndarray) -> torch.Tensor:
    """BCE pos_weight per label: negatives / positives in the train split (1 where a label has no positives), so that
    each label's rare positives weigh as much in the loss as its negatives."""
    positives = targets.sum(axis=0)
    weights = np.where(positives > 0, (len(targets) - positives) / np.maximum(positives, 1), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def label_targets(rows: list[dict], labels: list[str]) -> np.ndarray:
    """Multi-label training targets: each row's label set (main + `also`) as a multi-hot vector, then one more column
    holding the main label's index. The loss reads the multi-hot part; dev selection reads the main label, which the
    Trainer hands back in the same (length-grouped) order as the predictions."""
    main = np.array([labels.index(row["label"]) for row in rows], dtype=np.float32)
    return np.hstack([label_matrix([row_labels(row) for row in rows], labels), main[:, None]])


def choose_max_length(tokenizer, model, texts: list[str], configured: int | None) -> int:
    """The configured length, else the 99th percentile of train token lengths, capped by what the model accepts."""
    limit = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    if configured:
        return min(configured, limit)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return int(min(limit, max(32, np.percentile(lengths, 99))))


def linear_probe_head(model, tokenizer, texts: list[str], targets, max_length: int, balanced: bool,
                      batch_size: int = 64):
    """LP-FT's start (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features"): set the new head to a
    logistic regression fitted on the frozen backbone's features of the train paragraphs (what the head reads: the
    pooler over [CLS], or the mean of the token states), so that fine-tuning starts from a head that already fits
    instead of pulling the features toward a random one.

    `targets`: label indices (single_label), or a multi-hot matrix (multi_label, a sigmoid head: one binary logistic
    regression per label). Returns the probe (a scikit-learn model; for multi_label a list with one per label, None
    for a label that is always or never present, whose head row is a constant) and its train accuracy (for
    multi_label, over every paragraph-label pair)."""
    from sklearn.linear_model import LogisticRegression
    from tqdm.auto import tqdm

    multi_label = model.config.problem_type == MULTI_LABEL_PROBLEM
    y = np.asarray(targets)
    if not multi_label and len(set(y.tolist())) < 2:
        raise EventClassifierError("train.head_init linear_probe: the train split holds one label only; a probe needs "
                                   "two or more (add paragraphs of the other labels, or use train.head_init: random)")
    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise EventClassifierError(f"train.head_init linear_probe: the {model.config.model_type} head is not one linear "
                                   "layer (BERT-family models have one); use train.head_init: random")
    features: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda module, inputs: features.append(inputs[0].detach().float()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in tqdm(range(0, len(texts), batch_size), desc="linear probe: features", unit="batch"):
                batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                                  padding=True, return_tensors="pt")
                model(**batch)
    finally:
        hook.remove()
        model.train(was_training)
    x = torch.cat(features).numpy()
    weight = np.zeros((head.out_features, x.shape[1]), dtype=np.float32)
    bias = np.zeros(head.out_features, dtype=np.float32)

    def fit(column):
        return LogisticRegression(max_iter=2000, class_weight="balanced" if balanced else None).fit(x, column)

    if multi_label:
        probe = []
        for j, column in enumerate(y.T):
            if column.min() == column.max():  # no features can tell: the label's train frequency, clipped
                share = float(np.clip(column.mean(), 1e-4, 1 - 1e-4))
                bias[j] = np.log(share / (1 - share))
                probe.append(None)
            else:
                probe.append(fit(column))
                weight[j], bias[j] = probe[-1].coef_[0], probe[-1].intercept_[0]
        accuracy = float(np.mean(((x @ weight.T + bias) > 0) == (y > 0.5)))
    else:
        probe = fit(y)
        if len(probe.classes_) == 2:  # one logit z for the second class: softmax of (-z/2, z/2) is sigmoid(z)
            weight[probe.classes_] = np.vstack([-probe.coef_[0], probe.coef_[0]]) / 2
            bias[probe.classes_] = np.array([-probe.intercept_[0], probe.intercept_[0]]) / 2
        else:  # a label absent from train keeps weight 0 and a low bias
            bias[:] = probe.intercept_.min() - 10.0
            weight[probe.classes_], bias[probe.classes_] = probe.coef_, probe.intercept_
        accuracy = float(probe.score(x, y))
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    return probe, accuracy


def _weighted_loss(weights: torch.Tensor | None, label_smoothing: float = 0.0):
    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"].float()
        return torch.nn.functional.cross_entropy(logits, labels, weight=None if weights is None else weights.to(logits.device),
                                                 label_smoothing=label_smoothing)
    return loss


class SourceLabelHead:
    """An auxiliary head for `train.source_label_weight`: a linear layer on the features the classifier reads (caught
    by a forward hook on `model.classifier`) predicts each row's source label, e.g. CASE's SubType, which splits a
    broad label such as `other` into the kinds of event it holds. It is a submodule of the model while training (so
    the optimizer, checkpoints and a resume include it) and is removed by `detach`, so the saved model is unchanged."""

    ATTRIBUTE = "source_label_head"

    def __init__(self, model: torch.nn.Module, source_labels: list[str]):
        if not isinstance(getattr(model, "classifier", None), torch.nn.Linear):
            raise EventClassifierError(f"{type(model).__name__}: train.source_label_weight needs a classifier that is one "
                                       "linear layer (BERT-style heads); set it to 0 for this backbone")
        self.model, self.source_labels, self.features = model, source_labels, None
        head = torch.nn.Linear(model.classifier.in_features, len(source_labels))
        head.weight.data.normal_(0.0, getattr(model.config, "initializer_range", 0.02))
        head.bias.data.zero_()
        setattr(model, self.ATTRIBUTE, head)
        self.hook = model.classifier.register_forward_hook(self._catch)

    def _catch(self, module, inputs, output):
        self.features = inputs[0]

    def logits(self) -> torch.Tensor:
        head = getattr(self.model, self.ATTRIBUTE)
        return head(self.features.to(head.weight.dtype))  # bf16 features when autocast made them

    def detach(self, model: torch.nn.Module) -> None:
        """Remove the hook and the head (from `model`, which may be the Trainer's reloaded best model)."""
        self.hook.remove()
        if hasattr(model, self.ATTRIBUTE):
            delattr(model, self.ATTRIBUTE)


def _with_source_labels(main_loss, head: SourceLabelHead, weight: float):
    """`main_loss` on the first label column plus `weight` times the cross-entropy of `head` on the second (the source
    label's index, -100 for a row without one). Dev batches carry only the label: there the main loss alone."""
    def loss(outputs, labels, num_items_in_batch=None):
        if labels.dim() == 1:
            return main_loss(outputs, labels)
        total = main_loss(outputs, labels[:, 0])
        if (labels[:, 1] >= 0).any():
            total = total + weight * torch.nn.functional.cross_entropy(head.logits(), labels[:, 1], ignore_index=-100)
        return total
    return loss


def source_label_ids(rows: list[dict], where: str) -> tuple[list[str], list[int]]:
    """The source labels of the training rows (sorted) and each row's index among them (-100 without one)."""
    names = sorted({str(r["source_label"]) for r in rows if r.get("source_label") is not None})
    if len(names) < 2:
        raise EventClassifierError(
            f"{where}: train.source_label_weight is set but the training rows carry {len(names)} source label(s); it "
            "needs rows read through a codebook (data.sources, e.g. case) with at least two labels, or set it to 0")
    index = {name: i for i, name in enumerate(names)}
    return names, [index[str(r["source_label"])] if r.get("source_label") is not None else -100 for r in rows]


def _multi_label_loss(pos_weight: torch.Tensor | None, main_weights: torch.Tensor | None, main_label_weight: float):
    """BCE with logits over the multi-hot part of `label_targets`, summed over the labels of a paragraph (the negative
    log-likelihood of its label set, on the scale of the single-label cross-entropy) and averaged over paragraphs;
    plus `main_label_weight` times the cross-entropy of the main label (the last column) on the same logits, which
    teaches the head to rank the main event first when a paragraph reports several."""
    main_loss = _weighted_loss(main_weights)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"].float()
        total = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels[:, :-1].float(), reduction="none",
            pos_weight=None if pos_weight is None else pos_weight.to(logits.device)).sum(dim=1).mean()
        if main_label_weight:
            total = total + main_label_weight * main_loss(outputs, labels[:, -1].long())
        return total
    return loss


def _compute_metrics(labels: list[str], multi_label: bool = False):
    """Dev macro-F1 of the main label (the most probable one), which chooses the best epoch of a single-label run.

    A multi-label run also gets the macro-F1 of its label sets (the main label plus every other label with a
    probability of at least 0.5; thresholds are tuned only after training) and is chosen by `selection`, the mean of
    the two, so that an epoch that finds the secondary labels better wins among equal main-label scores."""
    def compute(prediction) -> dict:
        logits, truth = np.asarray(prediction.predictions), np.asarray(prediction.label_ids)
        predicted = logits.argmax(-1)
        main = truth[:, -1].astype(int) if multi_label else truth
        scores = {"macro_f1": macro_f1([labels[i] for i in main], [labels[i] for i in predicted], labels)}
        if multi_label:
            sets = (logits >= 0) | (np.arange(len(labels)) == predicted[:, None])  # sigmoid >= 0.5, or the main label
            scores["label_set_macro_f1"] = float(f1_score(truth[:, :-1], sets, average="macro", zero_division=0))
            scores["selection"] = (scores["macro_f1"] + scores["label_set_macro_f1"]) / 2
        return scores
    return compute


class GracefulInterrupt(TrainerCallback):
    """Ctrl-C during training: finish the current step, save a checkpoint, stop, and say how to resume."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _request(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort at once)", file=sys.stderr)

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control


def _best_epoch(state) -> float | None:
    """The epoch of the best dev checkpoint, which a refit trains for."""
    best = state.best_model_checkpoint
    if not best:
        return None
    step = int(Path(best).name.split("-")[-1])
    return next((round(entry["epoch"], 2) for entry in state.log_history if entry.get("step") == step and "epoch" in entry), None)


class _StartStep(TrainerCallback):
    """Records the step training starts from: 0 for a new run, the checkpoint's step for a resumed one."""

    def __init__(self):
        self.step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step


_LAYER = re.compile(r"\.layer\.(\d+)\.")


def layerwise_groups(model: torch.nn.Module, learning_rate: float, decay: float, weight_decay: float,
                     decayed_names: set[str]) -> list[dict]:
    """AdamW parameter groups with layer-wise learning-rate decay: the head and pooler train at `learning_rate`, encoder
    layer i of n at learning_rate * decay ** (n - i), the embeddings at learning_rate * decay ** (n + 1); weight decay
    only on `decayed_names` (the Trainer's choice: not biases or LayerNorm weights)."""
    layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        found = _LAYER.search(name)
        depth = layers - int(found.group(1)) if found else layers + 1 if "embeddings." in name else 0
        groups.setdefault((depth, name in decayed_names), []).append(param)
    return [{"params": params, "lr": learning_rate * decay ** depth, "weight_decay": weight_decay if decayed else 0.0}
            for (depth, decayed), params in sorted(groups.items())]


def symmetric_kl(logits: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """The mean over rows of (KL(p || q) + KL(q || p)) / 2 for the softmax distributions p and q of two logit rows."""
    log_p, log_q = torch.log_softmax(logits.float(), dim=-1), torch.log_softmax(other.float(), dim=-1)
    return ((log_p.exp() * (log_p - log_q)).sum(-1) + (log_q.exp() * (log_q - log_p)).sum(-1)).mean() / 2


class _LayerwiseTrainer(Trainer):
    """A Trainer whose optimizer, with train.layer_lr_decay below 1, is the one it would build over
    `layerwise_groups`; at 1 it is the Trainer's own. With `rdrop_alpha` above 0 each training batch runs twice in
    one forward pass (the batch stacked on itself, so each copy draws its own dropout): the loss function sees both
    copies (the mean of their losses), and `rdrop_alpha` times the symmetric KL between the copies' answers is added."""

    def __init__(self, *args, layer_lr_decay: float, rdrop_alpha: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.layer_lr_decay, self.rdrop_alpha = layer_lr_decay, rdrop_alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not (self.rdrop_alpha and model.training):
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        doubled = {key: torch.cat([value, value]) if isinstance(value, torch.Tensor) else value for key, value in inputs.items()}
        loss, outputs = super().compute_loss(model, doubled, return_outputs=True, num_items_in_batch=None)
        first, second = outputs["logits"].chunk(2)
        loss = loss + self.rdrop_alpha * symmetric_kl(first, second)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.layer_lr_decay < 1:
            model = model or self.model
            groups = layerwise_groups(model, self.args.learning_rate, self.layer_lr_decay, self.args.weight_decay,
                                      set(self.get_decay_parameter_names(model)))
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_cls(groups, **kwargs)
        return super().create_optimizer(model)


def fit(config: Config, rows: dict[str, list[dict]], run_dir: Path, resume: bool = False,
        is_main_process: bool = True, work_dir: Path | None = None, epochs: float | None = None,
        stage: str = "", extra_callbacks: tuple[TrainerCallback, ...] = ()) -> Fitted:
    """Fine-tune config.model.name on rows["train"], choosing the best epoch by macro-F1 on rows["dev"]
    (train.epoch_choice best_dev; with fixed, dev only scores each epoch and the last is kept).

    Without rows["dev"] (a refit on train+dev), it trains for exactly `epochs` epochs and keeps the last.
    Checkpoints go to run_dir/<stage>checkpoints (so `resume` continues from the last one) and the log to
    run_dir/<stage>train_log.jsonl. Ctrl-C saves a checkpoint and raises TrainingInterrupted. `extra_callbacks` join
    the Trainer's (e.g. the tuner's pruning).
    """
    evaluate = "dev" in rows  # dev scores each epoch; `select` keeps the best one, else training runs all `epochs`
    select = evaluate and config.train.epoch_choice == "best_dev"
    set_seed(config.train.seed)
    labels, multi_label = config.label_names, config.model.task == "multi_label"
    label_ids = {label: i for i, label in enumerate(labels)}
    texts = [r["text"] for r in rows["train"]]
    model, tokenizer = load_backbone(config.model.name, labels, work_dir or run_dir, texts, config.train.seed, config.model.task,
                                     config.model.attention_dropout, config.model.pooling)
    max_length = choose_max_length(tokenizer, model, texts, config.model.max_length)
    precision = resolve_precision(config.train.precision)

    aux = None
    if config.train.source_label_weight:
        source_labels, source_ids = source_label_ids(rows["train"], str(run_dir))
        aux = SourceLabelHead(model, source_labels)

    def targets(split: str) -> list:
        if multi_label:
            return label_targets(rows[split], labels).tolist()
        if aux is not None and split == "train":  # [label, source label]: the second column feeds the auxiliary head
            return [[label_ids[r["label"]], source] for r, source in zip(rows[split], source_ids)]
        return [label_ids[r["label"]] for r in rows[split]]

    def encode(split: str) -> Dataset:
        data = Dataset.from_dict({"text": [r["text"] for r in rows[split]], "label": targets(split)})
        return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                        remove_columns=["text"], desc=f"tokenising {split}")

    args = TrainingArguments(
        output_dir=str(run_dir / f"{stage}checkpoints"),
        num_train_epochs=epochs or config.train.epochs, max_steps=config.train.max_steps,
        per_device_train_batch_size=config.train.batch_size, per_device_eval_batch_size=config.train.eval_batch_size,
        learning_rate=config.train.learning_rate, weight_decay=config.train.weight_decay,
        warmup_steps=config.train.warmup_ratio, seed=config.train.seed, data_seed=config.train.seed,
        eval_strategy="epoch" if evaluate else "no", save_strategy="epoch", logging_steps=config.train.logging_steps,
        load_best_model_at_end=select, greater_is_better=True,
        metric_for_best_model=("selection" if multi_label else "macro_f1") if select else None,
        save_total_limit=config.train.save_total_limit, bf16=precision == "bf16", use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if config.train.group_by_length else "random",
        report_to=config.train.report_to, dataloader_num_workers=0,
    )
    has_checkpoint = resume and any((run_dir / f"{stage}checkpoints").glob("checkpoint-*"))
    probe_accuracy = None
    multi_hot = label_matrix([row_labels(row) for row in rows["train"]], labels) if multi_label else None
    # a resumed run loads its trained head; a model folder of ours (the recipe's stage 2) brings one for these labels
    if config.resolved_head_init == "linear_probe" and not has_checkpoint:
        if is_trained_model_folder(config.model.name):
            logger.info("train.head_init linear_probe: %s is a trained model folder; its head is kept", config.model.name)
        else:
            probe_accuracy = round(linear_probe_head(model, tokenizer, texts, multi_hot if multi_label else targets("train"),
                                                     max_length, config.train.class_weights)[1], 4)
    weights = class_weights(labels, [r["label"] for r in rows["train"]]) if config.train.class_weights else None
    loss = _weighted_loss(weights, config.train.label_smoothing)
    if multi_label:
        pos_weight = positive_weights(multi_hot) if config.train.class_weights else None
        loss = _multi_label_loss(pos_weight, weights, config.train.main_label_weight)
    if aux is not None:
        loss = _with_source_labels(loss, aux, config.train.source_label_weight)
    callbacks = [EarlyStoppingCallback(config.train.early_stopping_patience)] if config.train.early_stopping_patience and select else []
    start = _StartStep()
    trainer = _LayerwiseTrainer(
        model=model, args=args, train_dataset=encode("train"), eval_dataset=encode("dev") if evaluate else None,
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer), compute_loss_func=loss,
        compute_metrics=_compute_metrics(labels, multi_label) if evaluate else None, callbacks=[*callbacks, start, *extra_callbacks],
        layer_lr_decay=config.train.layer_lr_decay, rdrop_alpha=config.train.rdrop_alpha,
    )
    interrupt = GracefulInterrupt()
    trainer.add_callback(interrupt)
    with interrupt:
        result = trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    if aux is not None:
        aux.detach(trainer.model)
    main = trainer.is_world_process_zero() and is_main_process
    if main:
        atomic_write_jsonl(run_dir / f"{stage}train_log.jsonl", trainer.state.log_history)
    if interrupt.requested:
        raise TrainingInterrupted(
            f"{run_dir}: training interrupted at step {trainer.state.global_step}, checkpoint saved; continue with: "
            f"python train.py --config {run_dir / 'config.yaml'} --resume"
        )
    stats = {"runtime_s": round(result.metrics.get("train_runtime", 0.0), 1), "epochs": round(trainer.state.epoch or 0, 2),
             "steps": trainer.state.global_step, "resumed_from_step": start.step,
             "best_checkpoint": trainer.state.best_model_checkpoint,
             f"best_dev_{args.metric_for_best_model or 'macro_f1'}": trainer.state.best_metric,
             "best_epoch": _best_epoch(trainer.state) if select else None, "linear_probe_train_accuracy": probe_accuracy,
             **({"source_labels": aux.source_labels} if aux is not None else {})}
    return Fitted(trainer.model, tokenizer, max_length, precision, stats, main)


def refit(config: Config, selected: Fitted, rows: dict[str, list[dict]], run_dir: Path, resume: bool = False) -> Fitted:
    """Train again on rows["train"] + rows["dev"] for the epoch count that `selected` chose on dev (the configured
    count when it chose none: train.epoch_choice fixed); checkpoints go to run_dir/refit_checkpoints. The epochs are
    in stats["epochs_chosen_on_dev"] (None when fixed) and stats["epochs"]."""
    epochs = selected.stats.get("best_epoch") or config.train.epochs
    fitted = fit(config, {"train": rows["train"] + rows["dev"]}, run_dir, resume=resume, epochs=epochs, stage="refit_")
    fitted.stats["epochs_chosen_on_dev"] = selected.stats.get("best_epoch")
    return fitted
