"""Form posts checked against the API's own request structs, every error named by its field.

The dashboard validates a form field by field with the types of the struct the JSON API
decodes (``ProjectIn``, ``SignupIn``…), so a page shows every bad field at once, in the
place the API's field errors name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException

T = TypeVar("T", bound=msgspec.Struct)

FIELD_HINTS: dict[str, str] = {
    "url": "must be a web address starting with http:// or https://",
    "email": "is not an email address",
}
"""What a failed pattern means, per field (msgspec would quote the regular expression)."""

_MIN = re.compile(r"of length >= (\d+)")
_MAX = re.compile(r"of length <= (\d+)")


def humanise(field: str, message: str) -> str:
    """A person's words for a msgspec message about ``field``."""
    if "matching regex" in message:
        return FIELD_HINTS.get(field, "has the wrong format")
    if (minimum := _MIN.search(message)) is not None:
        return "is required" if minimum.group(1) == "1" else f"must be at least {minimum.group(1)} characters"
    if (maximum := _MAX.search(message)) is not None:
        return f"must be at most {maximum.group(1)} characters"
    return message


async def form_values(request: Request[Any, Any, Any], names: Iterable[str]) -> dict[str, str]:
    """The posted values of ``names`` (blank when absent), surrounding blanks kept for passwords."""
    form = await request.form()
    return {name: str(form.get(name) or "") for name in names}


def field_problems(struct: type[msgspec.Struct], values: Mapping[str, str]) -> dict[str, str]:
    """Every field of ``values`` that ``struct`` refuses, with what is wrong.

    A blank optional field counts as absent.
    """
    errors: dict[str, str] = {}
    for info in msgspec.structs.fields(struct):
        if info.name not in values:
            continue
        value = values[info.name]
        if value == "" and not info.required:
            continue
        if value == "":
            errors[info.name] = "is required"
            continue
        try:
            msgspec.convert(value, info.type)
        except msgspec.ValidationError as exc:
            errors[info.name] = humanise(info.name, str(exc))
    return errors


def build(struct: type[T], values: Mapping[str, str], **extra: Any) -> T:
    """The struct from checked values (blank optional fields left out)."""
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    data = {k: v for k, v in values.items() if k in fields and (v != "" or fields[k].required)}
    return msgspec.convert({**data, **extra}, struct)


def api_errors(exc: HTTPException, fields: Iterable[str] = ()) -> tuple[dict[str, str], str | None]:
    """The field errors of an API exception (``extra=[{"key", "message"}]``) and what is left to say.

    Errors on a field the form does not show (when ``fields`` is given) join the detail.
    """
    items = exc.extra if isinstance(exc.extra, list) else []
    shown = set(fields)
    errors: dict[str, str] = {}
    others: list[str] = []
    for item in items:
        if not (isinstance(item, dict) and "key" in item and "message" in item):
            continue
        key, message = str(item["key"]), str(item["message"])
        if shown and key not in shown:
            others.append(message)
        else:
            errors[key] = humanise(key, message)
    if others or not errors:
        return errors, "; ".join(others) or exc.detail
    return errors, None


def if_match(version: str) -> str | None:
    """A form's hidden ``version`` as the API's ``If-Match`` (None when the form sent none)."""
    return f'"{version}"' if version.isdigit() else None
