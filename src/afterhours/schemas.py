"""Shared Pydantic bases: camelCase on the wire, strict about unknown fields."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel


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
