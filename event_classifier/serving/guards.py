"""What keeps the app safe to run: every error as JSON `{"error": ...}` without a traceback (a body over the route's
`max_body_size` too: 413), Host names checked against DNS rebinding, and headers that stop the page from running
anything but its own scripts."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from event_classifier.errors import EventClassifierError, SkippedInput

logger = logging.getLogger("event_classifier.serving")
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")


def json_error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "invalid request: " + "; ".join(parts)


def too_large(limit: int) -> JSONResponse:
    return json_error(413, f"request body larger than {limit:,} bytes; send less, or start the server with a larger "
                           "--max-body-mb (JSON) or --max-upload-mb (files)")


def declared_size_check(body_limit: Callable[[str], int]):
    """Middleware refusing at once, as JSON, a request whose Content-Length is over its path's cap. (The routes'
    `max_body_size` enforces the cap on the bytes actually received, but answers this case in plain text.)"""

    async def check(request: Request, call_next):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit(request.url.path):
            return too_large(body_limit(request.url.path))
        return await call_next(request)

    return check


def install_error_handlers(app: FastAPI, body_limit: Callable[[str], int]) -> None:
    """Every error the app can answer with becomes `{"error": "..."}` with a 4xx or 5xx status; `body_limit` gives a
    path's body cap, for the 413 message."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return too_large(body_limit(request.url.path))
        return json_error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return json_error(422, _validation_message(exc))

    @app.exception_handler(EventClassifierError)
    async def input_error(request: Request, exc: EventClassifierError) -> JSONResponse:
        return json_error(422 if isinstance(exc, SkippedInput) else 400, str(exc))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("error answering %s %s", request.method, request.url.path)  # the details stay in the log
        return json_error(500, f"internal error ({type(exc).__name__}); the server's log has the details")


def host_check(allowed: Iterable[str]):
    """Middleware answering only requests whose Host is one of `allowed` ("*": any), so that a web page whose domain
    is rebound to 127.0.0.1 cannot reach the API through the analyst's browser. (Starlette's TrustedHostMiddleware
    does the same but answers in plain text; every error here is JSON.)"""
    names = {name.lower() for name in allowed}

    async def check(request: Request, call_next):
        host = (request.headers.get("host") or "").lower()
        name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        if "*" not in names and name not in names:
            return json_error(400, f"host {name!r} is not served; start the server with --allowed-host {name or 'NAME'}")
        return await call_next(request)

    return check


async def security_headers(request: Request, call_next):
    """No sniffing of content types anywhere; the page and its files may load and run only what the app serves."""
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if not request.url.path.startswith(("/docs", "/redoc")):  # FastAPI's docs pages load their scripts from a CDN
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
    return response
