"""event_classifier: fine-tune a small transformer to classify news paragraphs by event type."""

__version__ = "0.2.0"
