"""Rich progress bars for byte streams (downloads, copies, extraction)."""

from __future__ import annotations

import hashlib
from typing import IO

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

CHUNK_BYTES = 1 << 20


def byte_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def copy_with_sha256(
    source: IO[bytes], destination: IO[bytes], *, total: int | None, description: str
) -> str:
    """Copy ``source`` into ``destination`` with a progress bar; return the sha256 of the bytes."""
    digest = hashlib.sha256()
    with byte_progress() as progress:
        task = progress.add_task(description, total=total)
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            destination.write(chunk)
            progress.advance(task, len(chunk))
    return digest.hexdigest()
