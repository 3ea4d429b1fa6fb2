"""Web pages to articles: trafilatura finds the article body and its metadata, so navigation, footers, comments,
related-link lists and cookie banners never become paragraphs."""

from __future__ import annotations

from dataclasses import dataclass

import trafilatura

from event_classifier.errors import SkippedInput

# trafilatura's output elements that hold running text; headings (`head`) are left out: they title, they do not report
_TEXT_TAGS = {"p", "item", "quote"}


@dataclass
class Article:
    """An article's paragraphs and what is known about it (None where unknown)."""

    paragraphs: list[str]
    title: str | None = None
    date: str | None = None
    author: str | None = None
    site: str | None = None
    url: str | None = None
    chrome_dropped: int = 0  # lines of page chrome left out (plain-text articles)


def _paragraphs(body) -> list[str]:
    paragraphs = []
    for element in body.iter(*_TEXT_TAGS):
        if element.tag == "quote" and any(child.tag in _TEXT_TAGS for child in element.iterdescendants()):
            continue  # its own paragraphs are read one by one
        text = " ".join("".join(element.itertext()).split())
        if text:
            paragraphs.append(text)
    return paragraphs


def extract_article(html: bytes | str, where: str, url: str | None = None) -> Article:
    """The article in an HTML page (`html` as bytes lets trafilatura follow the page's declared charset).

    A page without article text (an index page, a login wall) raises SkippedInput naming `where`.
    """
    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                           include_tables=False, include_images=False, include_links=False,
                                           favor_precision=True)  # a menu is worse than a missed line
    paragraphs = _paragraphs(document.body) if document is not None and document.body is not None else []
    if not paragraphs:
        raise SkippedInput(f"{where}: no article text found in the page; give the article's own page, "
                           "or save its text as .txt")
    return Article(paragraphs=paragraphs, title=document.title, date=document.date, author=document.author,
                   site=document.sitename or document.hostname, url=document.url or url)
