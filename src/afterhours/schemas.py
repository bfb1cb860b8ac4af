"""Shared Pydantic bases: camelCase on the wire, strict about unknown fields; text people see."""

import re
from typing import Annotated, Any

import unicodedata2
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

# Control, format (zero-width, bidi overrides), private-use, surrogate and unassigned characters
# draw nothing, or turn the text around them: a name made of them looks blank, or like another's.
# Categories come from unicodedata2, not the stdlib: the stdlib has the tables of the Python it
# runs on (Unicode 14 on 3.11), where every newer emoji is unassigned and would be refused.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
# Two format characters real text needs, let through only between two visible characters:
# ZWJ builds emoji sequences (woman, ZWJ, laptop) and Indic conjuncts; ZWNJ is written in Persian.
_JOINED = re.compile(r"(?<=[^\s\u200c\u200d])[\u200c\u200d](?=[^\s\u200c\u200d])")
# A subdivision flag (Scotland's, Wales') is a black flag, tag characters and a cancel tag.
_TAG_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
# Letters and symbols that render as nothing: the Hangul fillers, the blank Braille pattern.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(char: str) -> bool:
    return char not in _BLANK and unicodedata2.category(char)[0] in "LNPS"


def check_display_text(value: str) -> str:
    """Text shown to other people, as stored: NFC, line breaks as "\\n", trimmed; refused when
    it holds a character that draws nothing or reorders the text, or has nothing visible."""
    normal: str = unicodedata2.normalize("NFC", value)
    text = normal.replace("\r\n", "\n").replace("\r", "\n").strip()
    checked = _JOINED.sub("", _TAG_FLAG.sub("\U0001f3f4", text))
    for char in checked:
        if char != "\n" and unicodedata2.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"Text must not contain invisible or control characters (U+{ord(char):04X})"
            )
    if text and not any(_visible(char) for char in checked):
        raise ValueError("Text must contain something visible")
    return text


def check_one_line(value: str) -> str:
    if "\n" in value:
        raise ValueError("Text must be on one line")
    return value


# Every free text one person writes and another reads (names, descriptions, messages, reports):
# bound its length after it, e.g. `Annotated[DisplayText, StringConstraints(max_length=500)]`,
# so the limit counts what is stored.
DisplayText = Annotated[str, AfterValidator(check_display_text)]
DisplayLine = Annotated[DisplayText, AfterValidator(check_one_line)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def refuse_nul(cls, value: Any) -> Any:
        # JSON may carry "\u0000"; PostgreSQL text cannot store it, so it is bad input, not a 500.
        if _has_nul(value):
            raise ValueError("Text must not contain NUL characters")
        return value


class Ok(WireModel):
    success: bool = True


class MessageResponse(Ok):
    """A success that says what happened in words."""

    message: str
