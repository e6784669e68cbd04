"""The reports of windows that raised drift, kept on disk: the Evidently HTML and its summary
JSON side by side, named by UTC time and model version, the newest `keep` of them."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

PREFIX = "drift-"


def report_stem(at: dt.datetime, model_version: str) -> str:
    """`drift-20250102T030405.678Z-v3`: sorts by time as text."""
    utc = at.astimezone(dt.UTC)
    version = re.sub(r"[^A-Za-z0-9._-]", "_", model_version)
    return f"{PREFIX}{utc:%Y%m%dT%H%M%S}.{utc.microsecond // 1000:03d}Z-v{version}"


class ReportArchive:
    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = folder
        self.keep = keep

    def save(
        self, html: str, summary: dict[str, Any], at: dt.datetime, model_version: str
    ) -> Path | None:
        """Write the report and its summary; drop the oldest beyond `keep`. The HTML's path, or
        None when none are kept."""
        if self.keep <= 0:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = report_stem(at, model_version)
        page = self.folder / f"{stem}.html"
        # Written aside, then renamed: a reader never sees half a report.
        _write(page, html)
        _write(self.folder / f"{stem}.json", json.dumps(summary, indent=2) + "\n")
        self.prune()
        return page

    def stems(self) -> list[str]:
        """The reports kept, oldest first."""
        return sorted(
            {p.stem for p in self.folder.glob(f"{PREFIX}*") if p.suffix in (".html", ".json")}
        )

    def prune(self) -> list[str]:
        """Remove all but the newest `keep` reports; the stems removed."""
        old = self.stems()[: -self.keep] if self.keep > 0 else self.stems()
        for stem in old:
            for suffix in (".html", ".json"):
                (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)
        return old


def _write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
