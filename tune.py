"""Search training hyper-parameters: python tune.py --trials 20 [--config configs/X.yaml] [--name NAME]."""

import sys

from event_classifier.cli import tune_main

if __name__ == "__main__":
    sys.exit(tune_main())
