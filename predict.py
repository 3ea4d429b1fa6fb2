"""Label news paragraphs: python predict.py --model runs/latest article.txt [--output out.jsonl]."""

import sys

from event_classifier.cli import predict_main

if __name__ == "__main__":
    sys.exit(predict_main())
