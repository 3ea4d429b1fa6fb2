"""Write train/dev/test splits: python data/prepare.py [--config configs/X.yaml] [--source NAME=PATH ...].

The same as `event-classifier prepare`.
"""

import sys

from event_classifier.cli import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main())
