"""Fine-tune the event classifier: python train.py [--config configs/X.yaml] [--train.epochs=3] [--resume]."""

import sys

from event_classifier.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
