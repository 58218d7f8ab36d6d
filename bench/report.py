"""Summarise samples (median, spread, ratio to the baseline), print the table, write JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.json"


def summarise(name: str, samples: list[float], baseline: str | None) -> dict:
    samples = [round(sample, 1) for sample in samples]
    return {
        "variant": name,
        "events_per_s": round(statistics.median(samples), 1),
        "samples": samples,
        "baseline": baseline,
        "ratio": None,
        "note": "",
    }


def add_ratios(rows: list[dict]) -> None:
    """Set each row's ratio: its median over its baseline's median."""
    medians = {row["variant"]: row["events_per_s"] for row in rows}
    for row in rows:
        if row["baseline"] is not None:
            row["ratio"] = round(row["events_per_s"] / medians[row["baseline"]], 3)


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
        spread = f"{min(row['samples']):,.0f}..{max(row['samples']):,.0f}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        against = row["baseline"] or "(baseline)"
        note = f"{against}; {row['note']}" if row["note"] else against
        lines.append(
            f"{row['variant']:<{width}}  {row['events_per_s']:>9,.0f}  {spread:>17}  "
            f"{ratio:>5}  {note}"
        )
    return "\n".join(lines)


def write_json(document: dict) -> Path:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS_FILE
