"""The notebooks run top to bottom on a tiny run and show real content; the committed copies carry no outputs."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import LABELS, train_tiny_run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPLORATION = ROOT / "notebooks" / "01_data_exploration.ipynb"
ERROR_ANALYSIS = ROOT / "notebooks" / "02_error_analysis.ipynb"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny training run: prepared splits, a run folder and its evaluation files."""
    tmp = tmp_path_factory.mktemp("notebooks")
    corpus, run = train_tiny_run(tmp)
    return tmp, corpus, run


def run_notebook(path: Path, **parameters) -> nbformat.NotebookNode:
    """Execute a notebook from the project root with its parameters cell replaced by `parameters`."""
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode, tag: str | None = None) -> str:
    """Printed and displayed text of the cells tagged `tag` (of every cell without a tag)."""
    parts = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or (tag and tag not in cell.metadata.get("tags", [])):
            continue
        for output in cell.outputs:
            parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def images_of(notebook: nbformat.NotebookNode, tag: str) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells
               if tag in cell.metadata.get("tags", []) for output in cell.outputs)


def test_data_exploration_shows_balance_lengths_and_duplicates(trained_run):
    tmp, corpus, run = trained_run
    notebook = run_notebook(
        EXPLORATION, CONFIG="configs/tiny.yaml",
        OVERRIDES=[f"data.prepared_dir={tmp / 'prepared'}", f"data.paragraphs={corpus}"],
        TOKENIZER=str(run / "model"), CASE2021=str(tmp / "absent.tsv"),
    )
    balance = text_of(notebook, "class-balance")
    manifest = json.loads((tmp / "prepared" / "manifest.json").read_text())
    for split in ("train", "dev", "test"):
        counts = manifest["splits"][split]["labels"]
        assert f"{split} / authored" in balance and str(manifest["splits"][split]["rows"]) in balance
        assert all(f"{counts[label]} (" in balance for label in LABELS)
    assert all(label in balance for label in LABELS)
    assert images_of(notebook, "class-balance") == 1

    lengths = text_of(notebook, "lengths")
    window = json.loads((run / "model" / "event_classifier.json").read_text())["max_length"]
    assert f"training window: {window} tokens" in lengths  # the rule training applied, recomputed from the data
    positions = json.loads((run / "model" / "config.json").read_text())["max_position_embeddings"]
    tokenizer_limit = json.loads((run / "model" / "tokenizer_config.json").read_text())["model_max_length"]
    assert f"model limit: {min(positions, tokenizer_limit)} tokens" in lengths
    assert images_of(notebook, "lengths") == 1

    duplicates = text_of(notebook, "duplicates")
    assert "prepare.py reported:" in duplicates and "exact_duplicates_removed" in duplicates
    assert "spanning more than one data set: 0" in duplicates  # prepare keeps articles and copies in one split
    assert "case" in text_of(notebook, "load") and "not found" in text_of(notebook, "load")


def test_error_analysis_shows_the_run_metrics_and_mistakes(trained_run):
    _, _, run = trained_run
    notebook = run_notebook(ERROR_ANALYSIS, RUN=str(run), SPLIT="test", TOP_MISTAKES=5, EXAMPLES_PER_PAIR=2)
    folder = run / "evaluation" / "test"
    metrics = json.loads((folder / "metrics.json").read_text())
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]

    assert f"macro-F1 {metrics['macro_f1']:.3f}" in text_of(notebook, "load")
    table = text_of(notebook, "metrics")
    for label, figures in metrics["per_class"].items():
        assert f"{label}" in table and f"{figures['f1']:.3f}" in table
    assert "disagree" not in text_of(notebook)
    assert images_of(notebook, "confusion") == 1 and images_of(notebook, "confidence") == 1

    wrong = sorted((p for p in predictions if p["label"] != p["true"]), key=lambda p: -p["score"])
    shown = text_of(notebook, "mistakes")
    pairs = text_of(notebook, "pairs")
    if wrong:
        assert shown.startswith(f"{wrong[0]['id']}: true {wrong[0]['true']} -> predicted {wrong[0]['label']}")
        assert f"== {wrong[0]['true']} -> {wrong[0]['label']}:" in pairs
    else:
        assert "no mistakes" in shown


def test_error_analysis_says_which_command_writes_a_missing_file(tmp_path):
    (tmp_path / "r0").mkdir()
    with pytest.raises(CellExecutionError, match="python evaluate.py"):
        run_notebook(ERROR_ANALYSIS, RUN=str(tmp_path / "r0"), SPLIT="test", TOP_MISTAKES=5, EXAMPLES_PER_PAIR=2)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs_and_a_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name}: strip the outputs"
    assert "parameters" in code[0].metadata.get("tags", [])


def test_both_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_data_exploration.ipynb", "02_error_analysis.ipynb"]
