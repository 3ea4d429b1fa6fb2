"""Word sequences our paragraphs share with the outside data: python data/overlap.py [FILE_OR_FOLDER ...].

The corpus must be written in this project, never copied from the shared sources. This prints every run of
`--words` words (default 6, case and punctuation ignored) that a paragraph shares with a text of an outside source
read through its codebook (`--source NAME=PATH`, repeatable; default the shared CASE, CAMEO and PLOVER files), with
the number of outside texts holding it, so stock phrases ("the army said in a statement") can be told from copying.
"""

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from event_classifier.cli import command
from event_classifier.config import PROJECT_ROOT
from event_classifier.data import normalise_text, paragraph_files
from event_classifier.errors import EventClassifierError
from event_classifier.io import iter_jsonl
from event_classifier.sources import parse_source_spec, read_source_texts

SHARED = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_SOURCES = [f"case={SHARED / 'case2021_task2_dev.tsv'}", f"cameo={SHARED / 'cameo_class_train.tsv'}",
                   f"cameo={SHARED / 'cameo_class_test.tsv'}", f"plover={SHARED / 'plover_gsr_cameo.json'}"]


def word_runs(text: str, words: int) -> set[tuple[str, ...]]:
    """Every run of `words` consecutive words of `text`, folded as deduplication folds it (case and punctuation)."""
    tokens = normalise_text(text).split()
    return {tuple(tokens[i:i + words]) for i in range(len(tokens) - words + 1)}


def shared_runs(paragraphs: list[dict], outside: list[str], words: int) -> dict[str, list[tuple[str, int]]]:
    """{paragraph id: [(shared run, number of outside texts holding it), ...]} for paragraphs sharing any run."""
    wanted = defaultdict(list)
    for row in paragraphs:
        for run in word_runs(row["text"], words):
            wanted[run].append(row["id"])
    holders: dict[tuple[str, ...], int] = defaultdict(int)
    for text in outside:
        for run in word_runs(text, words) & wanted.keys():
            holders[run] += 1
    found = defaultdict(list)
    for run, count in sorted(holders.items(), key=lambda item: (-item[1], item[0])):
        for paragraph_id in wanted[run]:
            found[paragraph_id].append((" ".join(run), count))
    return dict(found)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=[str(PROJECT_ROOT / "data" / "paragraphs")],
                        help="paragraph JSONL files or folders of them (default data/paragraphs)")
    parser.add_argument("--source", action="append", help="NAME=PATH of outside data read by its codebook")
    parser.add_argument("--words", type=int, default=6, help="length of the word runs compared (default 6)")
    args = parser.parse_args(argv)
    paragraphs = [row for path in args.paths for file in paragraph_files(Path(path)) for _, row in iter_jsonl(file)]
    outside = []
    for spec in args.source or DEFAULT_SOURCES:
        name, path = parse_source_spec(spec)
        if not path.is_file():  # the default files sit in ../shared: say how to point elsewhere
            raise EventClassifierError(f"{path}: not found; pass --source NAME=PATH for each outside file")
        outside += read_source_texts(name, path)
    found = shared_runs(paragraphs, outside, args.words)
    print(f"{len(paragraphs)} paragraphs against {len(outside)} outside texts: {len(found)} share a run of "
          f"{args.words} words (the count is how many outside texts hold the run)")
    for paragraph_id, runs in found.items():
        print(f"  {paragraph_id}: " + "; ".join(f"\"{run}\" ({count})" for run, count in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
