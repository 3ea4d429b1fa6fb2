"""Plain-text articles: paragraphs split on blank lines, a headline recognised as the title, page chrome left out.

The rule, as a reader would apply it to a page pasted into a text file:

- chrome: before the first paragraph, lines that are menus (items joined by `|`, `•`, `·`, `›`, `»` or `/`, each a
  few words) or only navigation words (`Home`, `Menu`, `Skip to content`, `Sign in`, ...) are dropped; anywhere
  else, a block that is only such words (`Advertisement`, `Share this article`) is dropped. Both are counted.
- title: the first remaining block is the title when it is a single line of at most 20 words that does not end in
  `.`, `,`, `;`, `:` or `!` and more text follows it.
"""

from __future__ import annotations

import re

from event_classifier.pages import Article

_BLANK_LINE = re.compile(r"\n\s*\n")
_MENU_SEPARATOR = re.compile(r"\s+[|•·›»/]\s+|\s*[|•·›»]\s*")
_SENTENCE_END = tuple(".,;:!")
_TITLE_MAX_WORDS = 20
_MENU_ITEM_MAX_WORDS = 3
CHROME_WORDS = frozenset(  # whole lines of these are navigation, never reporting
    {"home", "menu", "search", "skip to content", "skip to main content", "sign in", "sign up", "log in", "login",
     "logout", "register", "subscribe", "subscribe now", "newsletter", "share", "share this", "share this article",
     "advertisement", "advertising", "sponsored", "sponsored content", "cookies", "cookie settings", "accept",
     "accept all", "read more", "related", "related articles", "print", "email", "close", "back to top", "next",
     "previous", "more", "latest", "live", "video", "news", "world", "politics", "business", "sport", "sports",
     "opinion", "culture", "weather"})


def split_into_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines; single line breaks inside a paragraph become spaces."""
    return [" ".join(block.split()) for block in _blocks(text)]


def _blocks(text: str) -> list[str]:
    return _BLANK_LINE.split(text.replace("\r\n", "\n"))


def _is_chrome_words(line: str) -> bool:
    return " ".join(line.lower().strip(" .:›»>").split()) in CHROME_WORDS


def is_chrome_line(line: str) -> bool:
    """A line of page chrome: only navigation words, or a menu of short items joined by separators."""
    line = line.strip()
    if not line:
        return False
    items = [item for item in _MENU_SEPARATOR.split(line) if item.strip()]
    if len(items) > 1 and all(len(item.split()) <= _MENU_ITEM_MAX_WORDS for item in items):
        return True
    return all(_is_chrome_words(item) for item in items) if items else True


def is_title(block: str) -> bool:
    """A headline: one line, at most 20 words, without the punctuation that ends a sentence or a clause."""
    line = block.strip()
    if not line or "\n" in line or len(line.split()) > _TITLE_MAX_WORDS:
        return False
    return not line.rstrip("\"'”’»)").endswith(_SENTENCE_END)


def read_text_article(text: str) -> Article:
    """Paragraphs, title and count of chrome lines dropped, by the rule in this module's docstring."""
    blocks = [block.strip() for block in _blocks(text) if block.strip()]
    dropped = 0
    while blocks:  # leading chrome, line by line, until a block keeps some text
        lines = [line for line in blocks[0].split("\n") if line.strip()]
        kept = [line for line in lines if not is_chrome_line(line)]
        dropped += len(lines) - len(kept)
        if kept:
            blocks[0] = "\n".join(kept)
            break
        blocks.pop(0)
    title = None
    if len(blocks) > 1 and is_title(blocks[0]):
        title = " ".join(blocks.pop(0).split())
    paragraphs = []
    for block in blocks:
        lines = [line for line in block.split("\n") if line.strip()]
        if all(_is_chrome_words(line) for line in lines):
            dropped += len(lines)
            continue
        paragraphs.append(" ".join(block.split()))
    return Article(paragraphs=paragraphs, title=title, chrome_dropped=dropped)
