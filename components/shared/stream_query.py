"""The Stream Analytics query of the StreamProcessing job, rendered from the readable template
in `queries/`: plain text, no Pulumi, so it renders and is tested on its own."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

QUERY_TEMPLATE = Path(__file__).resolve().parent / "queries" / "aggregate.sql"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


def render_query(
    *,
    window_minutes: int,
    input_name: str,
    output_name: str,
    timestamp_field: str = "EventTime",
    template_path: Path = QUERY_TEMPLATE,
) -> str:
    """The query text with every placeholder filled; ValueError naming a bad argument."""
    if isinstance(window_minutes, bool) or not isinstance(window_minutes, int):
        raise ValueError(f"window_minutes must be an integer, got {window_minutes!r}")
    if window_minutes < 1:
        raise ValueError(f"window_minutes must be at least 1, got {window_minutes}")
    for label, value in (
        ("input_name", input_name),
        ("output_name", output_name),
        ("timestamp_field", timestamp_field),
    ):
        if not _NAME.match(value):
            raise ValueError(f"{label} {value!r} is not a plain Stream Analytics name")
    text = template_path.read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    # Template.substitute raises KeyError on a placeholder nobody fills: that is a bug here.
    return (
        Template(body)
        .substitute(
            input=input_name,
            output=output_name,
            timestamp_field=timestamp_field,
            window_minutes=window_minutes,
        )
        .strip()
        + "\n"
    )
