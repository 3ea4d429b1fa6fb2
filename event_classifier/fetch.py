"""Fetching web pages safely and politely: http(s) only, time-outs, a size cap, few redirects, a content-type check,
retries with backoff, a small thread pool, and a local cache so that a re-run fetches nothing again."""

from __future__ import annotations

import collections
import hashlib
import ipaddress
import json
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import httpx

from event_classifier import __version__
from event_classifier.errors import SkippedInput
from event_classifier.io import atomic_path, atomic_write_json

USER_AGENT = f"event-classifier/{__version__} (news event classification for research; fetches one article a link)"
DEFAULT_CACHE = Path.home() / ".cache" / "event_classifier" / "pages"
HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain"}


@dataclass
class FetchSettings:
    """How pages are fetched; the defaults suit news sites, tests shorten them."""

    timeout: float = 15.0  # seconds to connect, and between two reads
    total_timeout: float = 60.0  # seconds for a whole page, so a server that trickles bytes cannot hold a worker
    max_bytes: int = 5_000_000  # a news page is well under this; anything larger is not an article
    max_redirects: int = 5
    retries: int = 2  # further attempts after a 5xx answer, a time-out or a dropped connection
    backoff: float = 0.5  # seconds before the first retry, doubled for each next one
    workers: int = 4  # pages fetched at once: polite to sites, enough to keep the model busy
    cache_dir: Path | None = DEFAULT_CACHE  # None: no cache
    allow_private: bool = True  # False: refuse hosts that resolve to loopback, private or link-local addresses (the web app)


@dataclass
class Page:
    """A fetched page: its bytes, how to read them (`kind` is 'html' or 'text') and its charset if the server gave one."""

    url: str
    final_url: str
    kind: str
    charset: str | None
    body: bytes
    from_cache: bool = False


class _Retry(Exception):
    """A failure worth another attempt (5xx, time-out, dropped connection); the message says what happened."""


def check_url(url: str, allow_private: bool = True) -> None:
    """Only http and https URLs with a host are fetched; without `allow_private`, only hosts on the public internet."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SkippedInput(f"{url}: not an http(s) URL; only http:// and https:// links are fetched")
    if not allow_private:
        check_public_host(url, parts.hostname or "")


def resolve_host(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (an IP literal is itself)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_public_host(url: str, host: str) -> None:
    """Refuse a host any of whose addresses is not global (loopback, private, link-local, reserved...): a server that
    fetches links for others must not become a way into the machine's own network."""
    try:
        addresses = resolve_host(host)
    except (socket.gaierror, UnicodeError):
        raise SkippedInput(f"{url}: cannot resolve the host {host!r}; check the link") from None
    for address in addresses:
        address = getattr(address, "ipv4_mapped", None) or address
        if not address.is_global:
            raise SkippedInput(f"{url}: {host} resolves to {address}, a loopback, private or link-local address; "
                               "such links are refused (start the server with --allow-private-urls to allow them)")


class Fetcher:
    """One HTTP client shared by a small thread pool; use as a context manager so that connections are closed."""

    def __init__(self, settings: FetchSettings | None = None):
        self.settings = settings or FetchSettings()
        s = self.settings
        hooks = {} if s.allow_private else {"request": [self._check_request]}  # every redirect's target too
        self.client = httpx.Client(
            follow_redirects=True, max_redirects=s.max_redirects, headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(s.timeout), limits=httpx.Limits(max_connections=s.workers), event_hooks=hooks)

    @staticmethod
    def _check_request(request: httpx.Request) -> None:
        check_public_host(str(request.url), request.url.host)

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def _cache_paths(self, url: str) -> tuple[Path, Path] | None:
        if self.settings.cache_dir is None:
            return None
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.settings.cache_dir / f"{key}.json", self.settings.cache_dir / f"{key}.body"

    def _from_cache(self, url: str) -> Page | None:
        paths = self._cache_paths(url)
        if paths is None or not paths[0].exists() or not paths[1].exists():
            return None
        try:
            meta = json.loads(paths[0].read_text(encoding="utf-8"))
            return Page(url=url, final_url=meta["final_url"], kind=meta["kind"], charset=meta["charset"],
                        body=paths[1].read_bytes(), from_cache=True)
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is fetched again and replaced

    def _to_cache(self, page: Page) -> None:
        paths = self._cache_paths(page.url)
        if paths is None:
            return
        with atomic_path(paths[1]) as tmp:  # the body first: an entry counts only once its .json exists
            tmp.write_bytes(page.body)
        atomic_write_json(paths[0], {"url": page.url, "final_url": page.final_url, "kind": page.kind,
                                     "charset": page.charset, "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def fetch(self, url: str) -> Page:
        """The page at `url`, from the cache when it is there; a failure raises SkippedInput naming the URL."""
        check_url(url, self.settings.allow_private)
        cached = self._from_cache(url)
        if cached is not None:
            return cached
        s = self.settings
        for attempt in range(s.retries + 1):
            try:
                page = self._get(url)
                break
            except _Retry as exc:
                if attempt == s.retries:
                    raise SkippedInput(f"{url}: {exc} (after {attempt + 1} attempts); try again later") from None
                time.sleep(s.backoff * 2 ** attempt)
        self._to_cache(page)
        return page

    def _get(self, url: str) -> Page:
        s = self.settings
        started = time.monotonic()
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code} {response.reason_phrase}")
                if response.status_code >= 400:
                    raise SkippedInput(f"{url}: HTTP {response.status_code} {response.reason_phrase}; check the link")
                kind = _kind(url, response.headers.get("content-type", ""))
                declared = int(response.headers.get("content-length") or 0)
                if declared > s.max_bytes:
                    raise _too_large(url, s.max_bytes)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > s.max_bytes:
                        raise _too_large(url, s.max_bytes)
                    if time.monotonic() - started > s.total_timeout:
                        raise _Retry(f"page took longer than {s.total_timeout:g} s")
                return Page(url=url, final_url=str(response.url), kind=kind, charset=response.charset_encoding,
                            body=bytes(body))
        except httpx.TooManyRedirects:
            raise SkippedInput(f"{url}: more than {s.max_redirects} redirects (a redirect loop?); open it in a "
                               "browser and give the final address") from None
        except httpx.UnsupportedProtocol:
            raise SkippedInput(f"{url}: redirected to a non-http(s) address; give the final http(s) address") from None
        except httpx.TimeoutException:
            raise _Retry(f"timed out after {s.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__}: {exc})") from None

    def fetch_many(self, urls: Iterable[str]) -> Iterator[tuple[str, Page | SkippedInput]]:
        """(url, page or the error that skipped it) for each URL, in order, fetched `workers` at a time.

        Only a few pages are held ahead of the reader, so a list of any length runs in little memory.
        """
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="fetch") as pool:
            pending: collections.deque[tuple[str, Future]] = collections.deque()
            for url in urls:
                pending.append((url, pool.submit(self._fetch_or_error, url)))
                while len(pending) >= 2 * self.settings.workers or (pending and pending[0][1].done()):
                    done_url, future = pending.popleft()
                    yield done_url, future.result()
            while pending:
                done_url, future = pending.popleft()
                yield done_url, future.result()

    def _fetch_or_error(self, url: str) -> Page | SkippedInput:
        try:
            return self.fetch(url)
        except SkippedInput as exc:
            return exc


def _kind(url: str, content_type: str) -> str:
    media = content_type.split(";")[0].strip().lower()
    if not media or media in HTML_TYPES:
        return "html"  # a server that names no type almost always sends a page
    if media in TEXT_TYPES:
        return "text"
    raise SkippedInput(f"{url}: content type {media!r} is not a web page; only text/html, application/xhtml+xml "
                       "and text/plain are read (save other documents as .txt)")


def _too_large(url: str, limit: int) -> SkippedInput:
    return SkippedInput(f"{url}: page larger than {limit:,} bytes; raise --max-page-bytes if it is an article")
