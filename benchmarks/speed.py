"""Speed benchmark: training and prediction throughput, Hugging Face defaults against ours, on the same data.

    python benchmarks/speed.py [--model runs/latest [--data case=PATH]] [--train-steps 6] [--predict-n 2048]
                               [--explain-n 48] [--skip-training] [--profile]

Prints paragraphs/s for both setups and their ratio, achieved matmul GFLOP/s of our training step against this
machine's measured matmul peak, and peak RSS. Our step is also timed in fp32/bf16 (the precision `auto` did not
choose), with the per-tensor AdamW loop instead of the fused kernel, without attention dropout, and under torch.compile. With --model: prediction speed and macro-F1 of the model in PyTorch
(fp32, bf16, int8) and ONNX Runtime (fp32, int8), each change measured against PyTorch fp32; and the cost of an
explanation per paragraph for each attribution method, with how faithful it is.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch

from event_classifier.config import load_config
from event_classifier.data import load_split
from event_classifier.io import atomic_write_json
from event_classifier.model import load_backbone, resolve_precision


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def training_flops(model, input_ids: torch.Tensor) -> float:
    """Matmul FLOPs of one forward+backward pass: 6 x (non-embedding weights) x tokens, plus attention scores."""
    config = model.config
    weights = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n and p.dim() == 2)
    batch, length = input_ids.shape
    attention = 2 * 2 * batch * length * length * config.hidden_size * config.num_hidden_layers
    return 3 * (2 * weights * batch * length + attention)


def batches(tokenizer, texts, labels, batch_size, max_length, pad_to_max, group_by_length, seed=0):
    order = np.random.default_rng(seed).permutation(len(texts))
    if group_by_length:  # like Trainer's length-grouped sampler: sort within mega-batches of 50 batches
        lengths = np.array([len(tokenizer(t, truncation=True, max_length=max_length)["input_ids"]) for t in texts])
        mega = batch_size * 50
        order = np.concatenate([sorted(order[i:i + mega], key=lambda j: -lengths[j]) for i in range(0, len(order), mega)])
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        encoded = tokenizer([texts[i] for i in chosen], truncation=True, max_length=max_length,
                            padding="max_length" if pad_to_max else "longest", return_tensors="pt")
        encoded["labels"] = torch.tensor([labels[i] for i in chosen])
        yield encoded


def time_training(model, batch_iter, steps: int, bf16: bool, fused: bool = True, warmup: int = 1,
                  flop_model=None) -> tuple[float, int, float]:
    """Seconds for `steps` optimizer steps (after `warmup` steps: a compiled model compiles in them), paragraphs seen,
    FLOPs done.

    `fused` AdamW is what the Trainer uses (its default optim, adamw_torch_fused, since torch 2.8); the per-tensor
    loop (fused=False, foreach=False: torch's CPU default) is kept to show what the fused kernel saves.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=fused, foreach=None if fused else False)
    model.train()
    seen, flops, elapsed = 0, 0.0, 0.0
    for step, batch in enumerate(batch_iter):
        if step >= steps + warmup:
            break
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= warmup:
            elapsed += time.perf_counter() - start
            seen += len(batch["labels"])
            flops += training_flops(flop_model or model, batch["input_ids"])
    return elapsed, seen, flops


def time_prediction_hf_default(model, tokenizer, texts, batch_size=32) -> float:
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            model(**tokenizer(texts[i:i + batch_size], truncation=True, max_length=512, padding="max_length", return_tensors="pt"))
    return len(texts) / (time.perf_counter() - start)


def prediction_variants(model: str, config, texts: list[str], hf_speed: float, data: str | None, repeats: int = 5) -> dict:
    """Speed and macro-F1 of the trained model in each backend: PyTorch fp32, bf16 and int8 (dynamic quantization),
    ONNX Runtime fp32 and int8 (exported here), on our test split and, with `data`, a labelled outside file."""
    from event_classifier.evaluation import score_predictions
    from event_classifier.inference import Predictor
    from event_classifier.onnx_backend import export_onnx
    from event_classifier.sources import read_any

    scored = {"test": load_split(config, "test")}
    if data:
        scored[Path(data.split("=")[-1]).stem] = read_any(data, config.label_names)[0]
    exported = {int8: export_onnx(model, Path("/tmp/ec_bench") / f"onnx_{'int8' if int8 else 'fp32'}", int8=int8) for int8 in (False, True)}
    variants = (("torch_fp32", model, False, "fp32"), ("torch_bf16", model, False, "bf16"), ("torch_int8", model, True, "fp32"),
                ("onnx_fp32", exported[False], False, "fp32"), ("onnx_int8", exported[True], False, "fp32"))
    predictors = {name: Predictor(folder, quantize=quantize, precision=precision) for name, folder, quantize, precision in variants}
    rounds: dict = {name: [] for name in predictors}
    for predictor in predictors.values():
        predictor.predict(texts[:64])  # warm-up
    for _ in range(repeats):  # in alternation: a moment of load elsewhere falls on one round, not on one variant
        for name, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict(texts)
            rounds[name].append(time.perf_counter() - start)
    results: dict = {}
    for name, predictor in predictors.items():
        speed = len(texts) / min(rounds[name])
        # the speed-up against fp32: the median over rounds of the ratio within each round, steadier than a ratio of
        # best times on a machine whose speed drifts over minutes
        ratio = float(np.median(np.array(rounds["torch_fp32"]) / np.array(rounds[name])))
        f1 = {set_name: round(score_predictions(rows, predictor.predict_proba([r["text"] for r in rows]), predictor.labels)["macro_f1"], 4)
              for set_name, rows in scored.items()}
        results[f"predict_{name}"] = {"paragraphs_per_s": round(speed, 1), "x_fp32": round(ratio, 2), "macro_f1": f1,
                                      "precision": predictor.precision}
        reference = results["predict_torch_fp32"]  # measured first
        change = ", ".join(f"{k} {v:.4f} ({v - reference['macro_f1'][k]:+.4f})" for k, v in f1.items())
        print(f"prediction {name:10s}: {speed:7.1f} paragraphs/s, {speed / hf_speed:.1f}x hf_default, "
              f"{ratio:.2f}x fp32 (median of {repeats} rounds); macro-F1 {change}")
    return results


def explanation_cost(predictor, texts: list[str], results: dict) -> None:
    """Seconds per paragraph of each attribution method (after a warm-up), and how much the explained label's
    probability falls when each paragraph's 3 strongest supporting words are deleted, against 3 random words."""
    from event_classifier.explain import METHODS, Explainer, deletion_drop

    for method in METHODS:
        explainer = Explainer(predictor, method=method)
        explainer.explain(texts[:2])
        start = time.perf_counter()
        evidence = explainer.explain(texts)
        seconds = (time.perf_counter() - start) / len(texts)
        drop = deletion_drop(predictor, texts, evidence)
        results[f"explain_{method}"] = {"s_per_paragraph": round(seconds, 3), "paragraphs": len(texts),
                                        "deletion_drop_top3": drop["evidence"], "deletion_drop_random3": drop["random"]}
        print(f"explanation {method:9s}: {seconds:.3f} s/paragraph over {len(texts)}; deleting the top 3 words lowers "
              f"the label's probability by {drop['evidence']:.3f} (3 random words: {drop['random']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--model", default=None, help="a trained run/model folder: adds prediction and int8 macro-F1 figures")
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--predict-n", type=int, default=2048, help="paragraphs per prediction round (the train split, "
                        "repeated); rounds of a few seconds or more keep the speed-ups steady")
    parser.add_argument("--data", default=None, metavar="[NAME=]PATH", help="with --model: also score macro-F1 on this "
                        "labelled file or source (e.g. case=../shared/data/case2021_task2_dev.tsv)")
    parser.add_argument("--explain-n", type=int, default=48, help="test paragraphs explained per attribution method "
                                                                  "(with --model; 0: none)")
    parser.add_argument("--skip-training", action="store_true", help="leave out the training figures")
    parser.add_argument("--profile", action="store_true", help="torch profiler table of our training step")
    parser.add_argument("--output", default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = load_config(args.config)
    rows = load_split(config, "train")
    texts = [r["text"] for r in rows]
    label_ids = [config.label_names.index(r["label"]) for r in rows]
    results: dict = {"threads": torch.get_num_threads(), "precision_auto": resolve_precision("auto")}
    print(f"precision auto -> {results['precision_auto']} on this machine")
    results["peak_gflops"] = {"fp32": round(matmul_peak_gflops(torch.float32), 1), "bf16": round(matmul_peak_gflops(torch.bfloat16), 1)}
    print(f"matmul peak (2048^3): fp32 {results['peak_gflops']['fp32']} GFLOP/s, bf16 {results['peak_gflops']['bf16']} GFLOP/s")

    from event_classifier.training import choose_max_length

    work = Path("/tmp/ec_bench")
    ours_bf16 = results["precision_auto"] == "bf16"
    other = "fp32" if ours_bf16 else "bf16"  # the precision `auto` did not pick, measured for comparison
    # name, pad to 512, group by length, bf16, fused AdamW, what else changes: no_attention_dropout (the config's
    # model.attention_dropout=0, so that SDPA can use its fused kernel in training) or compiled (torch.compile)
    variants = (("hf_default", True, False, False, True, None), ("ours", False, True, ours_bf16, True, None),
                (f"ours_{other}", False, True, not ours_bf16, True, None), ("ours_loop_adamw", False, True, ours_bf16, False, None),
                ("ours_no_attention_dropout", False, True, ours_bf16, True, "no_attention_dropout"),
                (f"ours_{other}_no_attention_dropout", False, True, not ours_bf16, True, "no_attention_dropout"),
                ("ours_compiled", False, True, ours_bf16, True, "compiled"))
    for name, pad_to_max, group, bf16, fused, change in (() if args.skip_training else variants):
        attention_dropout = 0.0 if change == "no_attention_dropout" else config.model.attention_dropout
        model, tokenizer = load_backbone(config.model.name, config.label_names, work, texts, seed=0,
                                         attention_dropout=attention_dropout)
        max_length = 512 if pad_to_max else choose_max_length(tokenizer, model, texts, config.model.max_length)
        flop_model = model
        if change == "compiled":  # inductor, dynamic shapes: batches grouped by length vary in length
            model = torch.compile(model, dynamic=True)
        elapsed, seen, flops = time_training(
            model, batches(tokenizer, texts, label_ids, args.batch_size, max_length, pad_to_max, group), args.train_steps, bf16,
            fused, warmup=3 if change == "compiled" else 1, flop_model=flop_model)
        results[f"train_{name}"] = {"paragraphs_per_s": round(seen / elapsed, 1), "max_length": max_length,
                                    "achieved_gflops": round(flops / elapsed / 1e9, 1), "bf16": bf16}
        print(f"training {name:10s}: {seen / elapsed:7.1f} paragraphs/s (max_length {max_length}, bf16 {bf16}), "
              f"{flops / elapsed / 1e9:.0f} GFLOP/s achieved")
    if not args.skip_training:
        ratio = results["train_ours"]["paragraphs_per_s"] / results["train_hf_default"]["paragraphs_per_s"]
        results["train_speedup"] = round(ratio, 2)
        for name in [n for n in results if n.startswith("train_ours")]:
            own_peak = results["peak_gflops"]["bf16" if results[name]["bf16"] else "fp32"]
            results[name]["share_of_peak"] = round(results[name]["achieved_gflops"] / own_peak, 3)
            results[name]["share_of_fp32_peak"] = round(results[name]["achieved_gflops"] / results["peak_gflops"]["fp32"], 3)
        print(f"training speed-up {ratio:.2f}x; share of the matmul peak (of the step's own precision): " + ", ".join(
            f"{n[len('train_'):]} {results[n]['share_of_peak']:.0%}" for n in results if n.startswith("train_ours")))
        print("share of the fp32 matmul peak: " + ", ".join(
            f"{n[len('train_'):]} {results[n]['share_of_fp32_peak']:.0%}" for n in results if n.startswith("train_ours")))
    if args.profile:
        model, tokenizer = load_backbone(config.model.name, config.label_names, work, texts, seed=0)
        max_length = choose_max_length(tokenizer, model, texts, config.model.max_length)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            time_training(model, batches(tokenizer, texts, label_ids, args.batch_size, max_length, False, True), 3, ours_bf16)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))

    predict_texts = (texts * (args.predict_n // len(texts) + 1))[: args.predict_n]
    model, tokenizer = load_backbone(config.model.name, config.label_names, work, texts, seed=0)
    hf = time_prediction_hf_default(model, tokenizer, predict_texts[: max(64, args.predict_n // 4)])
    results["predict_hf_default"] = round(hf, 1)
    print(f"prediction hf_default: {hf:7.1f} paragraphs/s (fp32, padding to 512)")
    if args.model:
        results.update(prediction_variants(args.model, config, predict_texts, hf, args.data))
        if args.explain_n:
            from event_classifier.inference import Predictor

            test_texts = [r["text"] for r in load_split(config, "test")[: args.explain_n]]
            explanation_cost(Predictor(args.model), test_texts, results)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS {results['peak_rss_mb']} MB")
    if args.output:
        atomic_write_json(args.output, results)


if __name__ == "__main__":
    main()
