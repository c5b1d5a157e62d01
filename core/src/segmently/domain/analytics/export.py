"""CSV and JSON exports of an experiment's results: the variant summary and the daily timeline.

Both formats carry the same rows with the same columns (:data:`COLUMNS`): one
``row_type = "variant"`` row per variant, then one ``row_type = "day"`` row per day
per variant. Cells that do not apply to a row type are empty in CSV and ``null`` in JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Final

import msgspec

from segmently.domain.analytics import schemas

COLUMNS: Final = (
    "row_type",
    "date",
    "variant_key",
    "variant_name",
    "visitors",
    "conversions",
    "conversion_rate",
    "revenue",
    "revenue_per_visitor",
    "average_order_value",
    "avg_time_on_page",
    "bounce_rate",
    "confidence",
    "p_value",
    "sequential_p_value",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "chance_to_beat_control",
    "revenue_p_value",
    "cumulative_visitors",
    "cumulative_conversions",
    "cumulative_conversion_rate",
)
"""Export columns, in order (documented in docs/analytics.md)."""

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


class ExportOut(msgspec.Struct, kw_only=True):
    """The JSON export."""

    experiment_id: str
    name: str
    generated_at: dt.datetime
    columns: list[str]
    variants: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


def _row(**values: Any) -> dict[str, Any]:
    return {column: values.get(column) for column in COLUMNS}


def variant_rows(results: schemas.ResultsOut) -> list[dict[str, Any]]:
    """One export row per variant (the summary)."""
    return [
        _row(
            row_type="variant",
            variant_key=v.key,
            variant_name=v.name,
            visitors=v.visitors,
            conversions=v.conversions,
            conversion_rate=v.conversion_rate,
            revenue=v.revenue,
            revenue_per_visitor=v.revenue_per_visitor,
            average_order_value=v.average_order_value,
            avg_time_on_page=v.avg_time_on_page,
            bounce_rate=v.bounce_rate,
            confidence=v.confidence,
            p_value=v.p_value,
            sequential_p_value=v.sequential_p_value,
            lift=v.lift,
            lift_ci_low=v.lift_ci[0] if v.lift_ci else None,
            lift_ci_high=v.lift_ci[1] if v.lift_ci else None,
            chance_to_beat_control=v.chance_to_beat_control,
            revenue_p_value=v.revenue_p_value,
        )
        for v in results.variants
    ]


def timeline_rows(results: schemas.ResultsOut) -> list[dict[str, Any]]:
    """One export row per day per variant (the timeline)."""
    names = {v.key: v.name for v in results.variants}
    return [
        _row(
            row_type="day",
            date=day.date,
            variant_key=p.key,
            variant_name=names.get(p.key, p.key),
            visitors=p.visitors,
            conversions=p.conversions,
            cumulative_visitors=p.cumulative_visitors,
            cumulative_conversions=p.cumulative_conversions,
            cumulative_conversion_rate=p.cumulative_conversion_rate,
        )
        for day in results.timeline
        for p in day.variants
    ]


def to_json(results: schemas.ResultsOut) -> bytes:
    """The JSON export."""
    return msgspec.json.encode(
        ExportOut(
            experiment_id=results.experiment_id,
            name=results.name,
            generated_at=results.generated_at,
            columns=list(COLUMNS),
            variants=variant_rows(results),
            timeline=timeline_rows(results),
        )
    )


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # user-typed text a spreadsheet would run as a formula gets a leading quote
    if column in ("variant_key", "variant_name") and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def to_csv(results: schemas.ResultsOut) -> bytes:
    """The CSV export: UTF-8, a header row, CRLF line ends; floats keep full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in (*variant_rows(results), *timeline_rows(results)):
        writer.writerow([_cell(c, row[c]) for c in COLUMNS])
    return buffer.getvalue().encode()
