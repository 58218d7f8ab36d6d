"""Summarise samples (median, spread, ratio to the baseline), print the table, write JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.json"
MARKDOWN_FILE = RESULTS_FILE.with_suffix(".md")


def summarise(
    name: str, samples: list[float], baseline: str | None, unit: str = "events/s"
) -> dict:
    """Return a row; `unit` is "events/s" (higher is better), or "ms" or "MiB" (lower is better)."""
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
        "target": None,
        "met": None,
    }


def add_ratios(rows: list[dict]) -> None:
    """Set each row's ratio: its median over its baseline's median (both in the same unit)."""
    medians = {row["variant"]: row["value"] for row in rows}
    for row in rows:
        if row["baseline"] is not None:
            row["ratio"] = round(row["value"] / medians[row["baseline"]], 3)


def add_targets(rows: list[dict], targets: dict[str, tuple[str, float]]) -> None:
    """Set each targeted row's target (e.g. ">= 0.75") and whether its ratio met it."""
    for row in rows:
        for prefix, (sense, limit) in targets.items():
            if row["variant"].startswith(prefix) and row["ratio"] is not None:
                row["target"] = f"{sense} {limit:g}"
                row["met"] = row["ratio"] >= limit if sense == ">=" else row["ratio"] <= limit


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
        "target": None,
        "met": None,
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
    if row["unit"] in ("ms", "MiB"):
        unit = row["unit"]
        return f"{row['value']:,.1f} {unit}", f"{min(samples):,.1f}..{max(samples):,.1f} {unit}"
    return f"{row['value']:,.0f}", f"{min(samples):,.0f}..{max(samples):,.0f}"


def markdown(rows: list[dict], environment: dict) -> str:
    """Return the rows as a markdown table, headed by the run's machine and settings."""
    server = environment.get("postgresql", {})
    lines = [
        f"Run `{environment.get('run')}` of {environment.get('started_at')}: "
        f"{environment.get('cpus')} CPUs, Python {environment.get('python')}, "
        f"Django {environment.get('django')}, psycopg {environment.get('psycopg')}, "
        f"PostgreSQL {server.get('server_version')} (fsync {server.get('fsync')}, "
        f"synchronous_commit {server.get('synchronous_commit')}).",
        "",
        "| workload | median | min..max | ratio | target | vs / note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        value, spread = _formatted(row)
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        target = row.get("target") or ""
        if target:
            target += " met" if row.get("met") else " **missed**"
        if row["unit"] == "check":
            note = row["note"]
        else:
            note = "; ".join(part for part in (row["baseline"] or "", row["note"]) if part)
        cells = (row["variant"], value, spread, ratio, target, note.replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(document: dict) -> tuple[Path, Path]:
    """Write the whole document as JSON and its table as markdown; return both paths."""
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    MARKDOWN_FILE.write_text(markdown(document["results"], document["environment"]))
    return RESULTS_FILE, MARKDOWN_FILE
