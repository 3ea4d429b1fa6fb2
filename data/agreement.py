"""Agreement between the corpus labels and a second, blind annotation: python data/agreement.py [FILE] [--paragraphs P].

FILE (default data/agreement/blind_300.jsonl) holds one {"id", "label"} per paragraph, labelled by an annotator who
saw only data/GUIDELINES.md and the texts. Prints Cohen's kappa, the agreement and every disagreement. The first
labels come from the corpus (data.paragraphs), or from --paragraphs, a file or folder such as a batch in data/extra.
"""

import argparse
import sys
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from event_classifier.cli import command
from event_classifier.config import load_config
from event_classifier.data import paragraph_files
from event_classifier.errors import EventClassifierError
from event_classifier.io import iter_jsonl


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", default=str(Path(__file__).resolve().parent / "agreement" / "blind_300.jsonl"))
    parser.add_argument("--paragraphs", help="the labelled paragraphs compared (default: the corpus, data.paragraphs)")
    args = parser.parse_args(argv)
    paragraphs = Path(args.paragraphs or load_config().data.paragraphs)
    gold = {row["id"]: row for path in paragraph_files(paragraphs) for _, row in iter_jsonl(path)}
    second = [row for _, row in iter_jsonl(args.file)]
    missing = [row["id"] for row in second if row["id"] not in gold]
    if missing:
        raise EventClassifierError(f"{args.file}: ids not in {paragraphs}: {missing[:5]}; annotate current paragraphs "
                                   "or pass --paragraphs")
    first = [gold[row["id"]]["label"] for row in second]
    other = [row["label"] for row in second]
    agree = sum(a == b for a, b in zip(first, other))
    print(f"{len(second)} paragraphs, {agree} agree ({agree / len(second):.1%}); Cohen's kappa {cohen_kappa_score(first, other):.3f}")
    for row, label in zip(second, first):
        if row["label"] != label:
            print(f"  {row['id']}: corpus {label}, blind {row['label']}: {gold[row['id']]['text'][:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
