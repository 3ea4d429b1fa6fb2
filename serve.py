"""The local web app and JSON API: python serve.py --model runs/latest [--host 127.0.0.1] [--port 8000].

The same as `event-classifier serve`.
"""

import sys

from event_classifier.cli import serve_main

if __name__ == "__main__":
    sys.exit(serve_main())
