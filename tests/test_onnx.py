"""ONNX export: the exported folder loads like any model folder and predicts what the PyTorch model predicts."""

import json
import re

import numpy as np
import pytest

from event_classifier.cli import export_main, predict_main
from event_classifier.inference import Predictor
from event_classifier.onnx_backend import ONNX_FILE, OnnxModel, export_onnx

from conftest import LABELS, make_corpus, save_tiny_model

TEXTS = [r["text"] for r in make_corpus()][:48] + [" ".join(["troops entered the district"] * 30)]  # one needs several windows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=16, temperature=1.7)


@pytest.fixture(scope="module")
def fp32_export(model_dir, tmp_path_factory):
    return export_onnx(model_dir, tmp_path_factory.mktemp("onnx") / "fp32")


def test_fp32_export_matches_pytorch_within_1e_3(model_dir, fp32_export):
    torch_probs = Predictor(model_dir, precision="fp32").predict_proba(TEXTS)
    onnx = Predictor(fp32_export)
    assert isinstance(onnx.model, OnnxModel) and onnx.backend == "onnx"
    assert np.abs(onnx.predict_proba(TEXTS) - torch_probs).max() <= 1e-3


def test_the_export_carries_labels_and_calibration(model_dir, fp32_export):
    onnx = Predictor(fp32_export)
    assert onnx.labels == LABELS and onnx.temperature == pytest.approx(1.7) and onnx.max_length == 16
    assert not list(fp32_export.glob("*.safetensors"))  # the folder runs without the PyTorch weights


def test_the_export_fuses_attention_and_layer_norms(fp32_export):
    import onnx

    ops = {n.op_type for n in onnx.load(str(fp32_export / ONNX_FILE)).graph.node}
    assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization"} <= ops


def test_int8_export_quantizes_every_encoder_matmul_but_keeps_head_and_embeddings_in_fp32(model_dir, fp32_export, tmp_path):
    import onnx

    int8 = export_onnx(model_dir, tmp_path / "int8", int8=True)
    graph = onnx.load(str(int8 / ONNX_FILE)).graph
    ops = {n.op_type for n in graph.node}
    quantized = [n.name for n in graph.node if n.op_type in {"MatMulInteger", "DynamicQuantizeMatMul"}]
    fp32_head = [n.name for n in graph.node if n.op_type in {"Gemm", "MatMul"} and "classifier" in n.name]
    assert quantized and not [n for n in quantized if "classifier" in n] and fp32_head
    assert "QAttention" in ops and "Attention" not in ops  # the fused attention runs in int8
    assert any("/intermediate/dense/" in n for n in quantized) and any(re.search(r"/layer\.\d+/output/dense/", n) for n in quantized)
    assert "EmbedLayerNormalization" in ops and "QEmbedLayerNormalization" not in ops  # the embeddings stay fp32
    probs = Predictor(int8).predict_proba(TEXTS)
    reference = Predictor(fp32_export).predict_proba(TEXTS)
    assert probs.shape == reference.shape and np.allclose(probs.sum(axis=1), 1)
    assert np.abs(probs - reference).max() < 0.05


def test_quantize_on_an_onnx_folder_says_to_export_with_int8(fp32_export):
    with pytest.raises(Exception, match="export --int8"):
        Predictor(fp32_export, quantize=True)


def test_export_and_predict_through_the_command_line(model_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    assert export_main(["--model", str(model_dir), "--output", str(out)]) == 0
    article = tmp_path / "a.txt"
    article.write_text("Troops entered the town.\n\nTalks resumed in Geneva.\n")
    assert predict_main(["--model", str(out), str(article), "--output", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["label"] in LABELS for r in rows)


def test_exporting_a_folder_that_is_not_a_model_is_a_one_line_error(tmp_path, capsys):
    assert export_main(["--model", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a model folder" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
