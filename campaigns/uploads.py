"""Text uploads (CSV) from the admin API: rows, or a 422 that says which line is broken."""

from __future__ import annotations

import csv
import io

from engine.errors import ValidationError


def csv_rows(text: str) -> list[list[str]]:
    """Every row of a CSV text (any line endings); a malformed one is a VALIDATION_ERROR naming its line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as exc:
        raise ValidationError(f"Not valid CSV at line {reader.line_num}: {exc}.",
                              fields={"body": [f"line {reader.line_num}: {exc}"]}) from None
