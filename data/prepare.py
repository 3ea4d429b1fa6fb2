"""Write train/dev/test splits: python data/prepare.py [--config configs/X.yaml] [--source NAME=PATH ...]."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

from event_classifier.cli import prepare_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(prepare_main())
