"""Message screening: each message is put to a screen before it is stored; one it refuses is
answered MESSAGE_REJECTED, never stored or delivered, and counted for moderators.

A screen is `(content) -> rule | None` (or a coroutine function), the rule being a short name of
what refused the message, kept with the count (never the content). `AFTERHOURS_MESSAGE_SCREEN`
chooses it: a word/regex list file (the default is the list shipped beside this module), or
`package.module:function` for a real classifier. It runs before the message joins a database
transaction, so a classifier that takes 50 ms holds no locks meanwhile (docs/moderation.md).
"""

import importlib
import inspect
import re
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Screen = Callable[[str], Awaitable[str | None]]

DEFAULT_LIST = Path(__file__).with_name("screen.txt")
ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class WordList:
    """Refuses a message containing any listed phrase or pattern.

    One rule per line: a phrase matches as whole words, ignoring case and accents' compatibility
    forms (NFKC, casefolded: "ＦＲＥＥ" is "free"); `re:` starts a regular expression (Python
    syntax, case-insensitive); `#` starts a comment. The rule reported is `list:<line>`.
    """

    def __init__(self, text: str) -> None:
        phrases: list[str] = []
        patterns: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            rule = line.strip()
            if not rule or rule.startswith("#"):
                continue
            if rule.startswith("re:"):
                pattern = rule[3:].strip()
                re.compile(pattern)  # a broken line fails at start, naming itself
                patterns.append(f"(?P<line{number}>{pattern})")
            else:
                words = r"\s+".join(map(re.escape, _fold(rule).split()))
                phrases.append(f"(?P<line{number}>{words}\\b)")
        # Every phrase starts at a word boundary: tested once per position for them all, not
        # once per phrase (a message is screened on every send; this is most of its cost).
        if phrases:
            patterns.insert(0, r"\b(?:" + "|".join(phrases) + ")")
        self.pattern = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None

    @classmethod
    def from_file(cls, path: Path) -> "WordList":
        return cls(path.read_text(encoding="utf-8"))

    async def __call__(self, content: str) -> str | None:
        if self.pattern is None:
            return None
        found = self.pattern.search(_fold(content))
        if found is None:
            return None
        assert found.lastgroup is not None
        return "list:" + found.lastgroup.removeprefix("line")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def load(spec: str | None) -> Screen:
    """The screen `AFTERHOURS_MESSAGE_SCREEN` names (see the module's docstring)."""
    if spec and ENTRY_POINT.match(spec):
        module, _, name = spec.partition(":")
        return _as_screen(getattr(importlib.import_module(module), name))
    return WordList.from_file(Path(spec) if spec else DEFAULT_LIST)


def _as_screen(function: Callable[[str], Any]) -> Screen:
    if inspect.iscoroutinefunction(function):
        return function

    async def screen(content: str) -> str | None:
        result = function(content)
        return None if result is None else str(result)

    return screen
