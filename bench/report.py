"""Summarise samples (median, spread, ratio to the baseline), print the table, write JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.json"


def summarise(
    name: str, samples: list[float], baseline: str | None, unit: str = "events/s"
) -> dict:
    """Return a row; `unit` is "events/s" (higher is better) or "ms" (a time, lower is better)."""
    digits = 3 if unit == "ms" else 1
    samples = [round(sample, digits) for sample in samples]
    median = round(statistics.median(samples), digits)
    return {
        "variant": name,
        "unit": unit,
        "value": median,
        "events_per_s": median if unit == "events/s" else None,
        "samples": samples,
        "baseline": baseline,
        "ratio": None,
        "note": "",
    }


def add_ratios(rows: list[dict]) -> None:
    """Set each row's ratio: its median over its baseline's median (both in the same unit)."""
    medians = {row["variant"]: row["value"] for row in rows}
    for row in rows:
        if row["baseline"] is not None:
            row["ratio"] = round(row["value"] / medians[row["baseline"]], 3)


def check_row(name: str, note: str) -> dict:
    """A pass/fail row with no measurement of its own: the note says what was counted."""
    return {
        "variant": name,
        "unit": "check",
        "value": None,
        "events_per_s": None,
        "samples": [],
        "baseline": None,
        "ratio": None,
        "note": note,
    }


def tail_row(name: str, check: dict, baseline: str | None) -> dict:
    row = summarise(name, [check["writer_events_per_s"]], baseline)
    row["note"] = (
        f"delivered {check['delivered']}/{check['written']}, skipped={check['skipped']}, "
        f"duplicates={check['duplicates']}"
    )
    return row


def table(rows: list[dict]) -> str:
    """Return the rows as a fixed-width text table."""
    width = max(len(row["variant"]) for row in rows)
    lines = [
        f"{'variant':<{width}}  {'events/s':>9}  {'min..max':>17}  {'ratio':>5}  vs / note",
    ]
    for row in rows:
        value, spread = _formatted(row)
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        if row["unit"] == "check":
            note = row["note"]
        else:
            against = row["baseline"] or "(baseline)"
            note = f"{against}; {row['note']}" if row["note"] else against
        lines.append(f"{row['variant']:<{width}}  {value:>9}  {spread:>17}  {ratio:>5}  {note}")
    return "\n".join(lines)


def _formatted(row: dict) -> tuple[str, str]:
    samples = row["samples"]
    if row["unit"] == "check":
        return "-", ""
    if row["unit"] == "ms":
        return f"{row['value']:,.1f} ms", f"{min(samples):,.1f}..{max(samples):,.1f} ms"
    return f"{row['value']:,.0f}", f"{min(samples):,.0f}..{max(samples):,.0f}"


def write_json(document: dict) -> Path:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS_FILE
