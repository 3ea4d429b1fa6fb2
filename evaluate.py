"""Evaluate a run or model folder: python evaluate.py runs/latest [--data FILE | NAME=PATH]."""

import sys

from event_classifier.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
