"""ONNX export and the ONNX Runtime backend: a model folder that predicts without PyTorch's model code.

`export_onnx` writes a folder holding `model.onnx` (fp32, or int8 with per-channel weights), the tokenizer,
`config.json` and our `event_classifier.json`, so that `Predictor` loads it like any model folder.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_directory
from event_classifier.lexical import LEXICAL_FILE

ONNX_FILE = "model.onnx"
# Left in fp32 by PyTorch's int8 (`--quantize`): the head, and each layer's feed-forward down-projection, whose inputs
# carry the outlier activations that per-tensor int8 clips (Bondarenko et al., 2021). Measured on the corpus model:
# agreement with fp32 labels 99.2 % on CASE snippets with them in fp32, 98.0 % without (benchmarks/speed.py shows the
# F1 change). Module names such as bert.encoder.layer.3.output.dense.
HEAD = re.compile(r"(^|\.)(classifier|pooler)(\.|$)")  # the classification head and the pooler: fp32 in both int8 paths
KEEP_FP32 = re.compile(HEAD.pattern + r"|\.layer\.\d+\.output\.dense$")
# ONNX int8 quantizes every matmul of the fused encoder (attention included) and leaves the head and the embeddings in
# fp32: on the corpus model's dev split, int8 embeddings doubled the mean probability change against fp32 (0.0011 against
# 0.0005), while the feed-forward outputs in int8 cost nothing measurable once the embeddings stayed fp32, and ran
# about a third faster. Chosen on dev; benchmarks/speed.py measures test and CASE.
ONNX_INT8_OPS = ["MatMul", "Attention"]


def keep_in_fp32(module_name: str) -> bool:
    """Whether PyTorch's int8 quantization leaves this nn.Linear in fp32."""
    return bool(KEEP_FP32.search(module_name))


def _module_of(node_name: str) -> str:
    """The module an exported node came from: /bert/encoder/layer.3/output/dense/MatMul -> bert.encoder.layer.3.output.dense."""
    return ".".join(node_name.strip("/").split("/")[:-1])


def is_onnx_folder(directory: Path) -> bool:
    return (Path(directory) / ONNX_FILE).is_file()


def export_onnx(model_dir: str | Path, output_dir: str | Path, int8: bool = False) -> Path:
    """Export a saved model to ONNX (opset 17, dynamic batch and length), with ONNX Runtime's transformer fusions
    (attention, layer norms, GELU); with `int8`, dynamic quantization with per-channel int8 weights of every encoder
    matmul, the head and the embeddings left in fp32."""
    from event_classifier.model import load_checkpoint

    model, tokenizer, meta, source = load_checkpoint(model_dir)
    model.set_attn_implementation("eager")  # the plain attention graph, which ONNX Runtime's optimizer fuses
    output_dir = Path(output_dir)
    example = tokenizer(["An example paragraph.", "Another, longer example paragraph."], padding=True, return_tensors="pt")
    with atomic_directory(output_dir) as tmp:
        raw, fused = tmp / "raw.onnx", tmp / ("fused.onnx" if int8 else ONNX_FILE)
        with warnings.catch_warnings():  # the TorchScript exporter's tracer warnings are about shapes it handles
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example["input_ids"], example["attention_mask"]), str(raw),
                              input_names=["input_ids", "attention_mask"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                                            "logits": {0: "batch"}}, opset_version=17, dynamo=False)
        fuse_onnx(raw, fused, model.config.num_attention_heads, model.config.hidden_size)
        raw.unlink()
        if int8:
            quantize_onnx(fused, tmp / ONNX_FILE)
            fused.unlink()
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta.save(tmp)
        if meta.lexical_weight:  # the TF-IDF companion is plain JSON and runs as it is beside ONNX Runtime
            shutil.copy2(source / LEXICAL_FILE, tmp / LEXICAL_FILE)
    return output_dir


def fuse_onnx(source: Path, target: Path, num_heads: int, hidden_size: int) -> None:
    """ONNX Runtime's transformer optimizer: attention, embedding and skip layer norms, bias + GELU as fused ops."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimize_model(str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size).save_model_to_file(str(target))


def quantize_onnx(source: Path, target: Path) -> None:
    """int8 weights per output channel, activations quantized per batch, for ONNX_INT8_OPS; the head stays fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = onnx.load(str(source), load_external_data=False).graph.node
    kept = [node.name for node in nodes if HEAD.search(_module_of(node.name))]
    kept += [f"{name}_MatMul" for name in kept]  # the quantizer first rewrites a Gemm as MatMul + Add under this name
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=kept,
                     op_types_to_quantize=ONNX_INT8_OPS,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops have no inferred types


class OnnxModel:
    """An ONNX Runtime session called like a transformers classifier: `model(input_ids=..., attention_mask=...).logits`."""

    device = torch.device("cpu")

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure means an unusable export
            raise EventClassifierError(f"{path}: cannot load the ONNX model ({type(exc).__name__}); "
                                       "export it again with `event-classifier export`") from None

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_) -> SimpleNamespace:
        feeds = {"input_ids": input_ids.numpy().astype(np.int64), "attention_mask": attention_mask.numpy().astype(np.int64)}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feeds)[0]))

    def eval(self) -> "OnnxModel":
        return self


def load_onnx(directory: Path):
    """Session, tokenizer and ModelMeta of an exported folder (the same shape as model.load_checkpoint's answer)."""
    from transformers import AutoConfig, AutoTokenizer

    from event_classifier.meta import ModelMeta

    config = AutoConfig.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    labels = [config.id2label[i] for i in range(config.num_labels)]
    meta = ModelMeta.load(directory, labels, min(tokenizer.model_max_length, config.max_position_embeddings))
    return OnnxModel(directory / ONNX_FILE), tokenizer, meta, directory

