"""The experiment wizard's form plumbing: inputs named by the API's paths, read back generically.

Every input is named by the path of the value it holds in the API's configuration
(``variants[1].weight``, ``targeting.url_rules[0].value``), so a field error of the API
(``$.variants[1].weight`` from msgspec, ``variants[1].weight`` from ``validation``) lands under
the input that caused it. A tab's *state* is the configuration as the form shows it (text);
a *shape* says how the form nests it, so one reader serves every tab.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
from litestar import Request

from segmently.dashboard.forms import humanise

Form = Mapping[str, list[str]]
Shape = Any  # str | bool | list (checkbox values) | [dict] (rows) | dict (nested)
MAX_ROWS = 60
LIST_INPUTS = (
    "targeting.countries",
    "targeting.devices",
    "advanced.cross_domain",
    "audience.referral_sources",
)
"""Lists typed (or ticked) in one input: an error on any item shows under that input."""
_PATH = re.compile(r"^\$?\.?")
_LE = re.compile(r"<= (-?[\d.]+)")
_GE = re.compile(r">= (-?[\d.]+)")
HINTS = {
    "key": "must be lowercase letters, digits, - or _ (starting with a letter or digit)",
    "slug": "must be lowercase letters, digits or - (starting with a letter or digit)",
}
_PREFIXED = ("is ", "must ", "needs ", "has ")


async def read_form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """The posted form, every value of every name."""
    form = await request.form()
    return {name: [str(v) for v in form.getall(name)] for name in form}


def one(form: Form, name: str) -> str:
    """The first posted value of ``name`` (blank when absent), without surrounding blanks."""
    return (form.get(name) or [""])[0].strip()


def indexes(form: Form, prefix: str) -> list[int]:
    """The row numbers posted under ``prefix`` (``variants[0].name`` … → ``[0, …]``), in order."""
    pattern = re.compile(re.escape(prefix) + r"\[(\d{1,3})\]")
    found = {int(m.group(1)) for name in form if (m := pattern.match(name))}
    return sorted(found)[:MAX_ROWS]


def join(prefix: str, name: str) -> str:
    """``prefix.name`` (just ``name`` at the top)."""
    return f"{prefix}.{name}" if prefix else name


def read(shape: Shape, form: Form, prefix: str = "") -> Any:
    """The state of ``shape`` from the posted form."""
    if isinstance(shape, dict):
        return {k: read(v, form, join(prefix, k)) for k, v in shape.items()}
    if isinstance(shape, list):
        return [read(shape[0], form, f"{prefix}[{i}]") for i in indexes(form, prefix)]
    if shape is list:
        return [v.strip() for v in form.get(prefix, [])]
    if shape is bool:
        return prefix in form
    return one(form, prefix)


def names(shape: Shape, state: Any, prefix: str = "") -> Iterator[str]:
    """Every input name (and every group that can carry an error) the state renders."""
    if prefix:
        yield prefix
    if isinstance(shape, dict):
        for k, v in shape.items():
            yield from names(v, state.get(k), join(prefix, k))
    elif isinstance(shape, list):
        for i, row in enumerate(state or []):
            yield from names(shape[0], row, f"{prefix}[{i}]")


def input_name(path: str) -> str:
    """The input that shows an error on ``path`` (an API or msgspec path)."""
    path = _PATH.sub("", path)
    for name in LIST_INPUTS:
        if path.startswith(name + "["):
            return name
    return path


def explain(path: str, message: str) -> str:
    """A person's words for a msgspec or API message about ``path``."""
    leaf = re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1]
    if "matching regex" in message:
        return HINTS.get(leaf, "has the wrong format")
    if "`array` of length" in message and (m := _LE.search(message) or _GE.search(message)):
        return f"must have {'at most' if '<=' in message else 'at least'} {m.group(1)} entries"
    if "of length" in message:
        return humanise(leaf, message)
    if message.startswith("Expected `") and (m := _LE.search(message)):
        return f"must be at most {float(m.group(1)):g}"
    if message.startswith("Expected `") and (m := _GE.search(message)):
        return f"must be at least {float(m.group(1)):g}"
    if message.startswith("Invalid enum value"):
        return "is not one of the choices"
    return humanise(leaf, message)


def shown(label: str, message: str) -> str:
    """An error as it reads under its input: "Weight must be at most 100"."""
    if message.startswith(_PREFIXED):
        return f"{label} {message}"
    return message[:1].upper() + message[1:]


class Checker:
    """Leaf checks against the API's own field types; every bad value is recorded under its input."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, path: str, message: str) -> None:
        """Record ``message`` under the input showing ``path`` (the first error of an input wins)."""
        self.errors.setdefault(input_name(path), explain(path, message))

    def value(self, path: str, value: Any, struct: type[msgspec.Struct], field: str) -> Any:
        """``value`` converted to the type of ``struct.field``, or None with the error recorded."""
        kind = {f.name: f.type for f in msgspec.structs.fields(struct)}[field]
        try:
            return msgspec.convert(value, kind)
        except msgspec.ValidationError as exc:
            self.add(path, str(exc).split(" - at ")[0])
            return None

    def text(self, path: str, value: str, struct: type[msgspec.Struct], field: str) -> str | None:
        """An optional text: blank is None."""
        return self.value(path, value, struct, field) if value else None

    def number(self, path: str, text: str, *, whole: bool = False, required: bool = True) -> float | None:
        """A number typed in a form (``12``, ``12.5``, ``12 %``), or None with the error recorded."""
        text = text.strip().rstrip("%").strip()
        if not text:
            if required:
                self.add(path, "is required")
            return None
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or (whole and not number.is_integer()):
            self.add(path, "must be a whole number" if whole else "must be a number")
            return None
        return number

    def whole(self, path: str, text: str, *, required: bool = False) -> int | None:
        """A whole number typed in a form (blank is None unless ``required``)."""
        number = self.number(path, text, whole=True, required=required)
        return None if number is None else int(number)


def split_words(text: str) -> list[str]:
    """``"US, gb de"`` → ``["US", "gb", "de"]``."""
    return [w for w in re.split(r"[\s,]+", text) if w]


def percent(value: float) -> str:
    """A weight or share as typed: ``50``, ``33.5``."""
    return f"{value:g}"


def even_weights(count: int) -> list[str]:
    """Weights splitting 100 evenly, the remainder on the last (``33, 33, 34``)."""
    if count <= 0:
        return []
    base = math.floor(100 / count)
    return [percent(base)] * (count - 1) + [percent(100 - base * (count - 1))]
