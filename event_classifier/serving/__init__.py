"""The local web app: a JSON API and a page for analysts (`event-classifier serve`). `create_app` builds it."""

from event_classifier.serving.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
