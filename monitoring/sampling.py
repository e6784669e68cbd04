"""Skip-ahead sampling: a monitor more than a window behind reads only the newest window.

The drift figures describe the newest N rows; reading older ones only to push them out of the
window again would make the monitor fall further behind a fast stream. So when a topic's lag is
over the window size, each partition jumps forward, keeping its share of the newest N records
(in proportion to its lag), and the records jumped over are counted as skipped.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def skip_counts(lags: Mapping[K, int], window: int) -> dict[K, int]:
    """Records to skip per partition (`lags`: partition → records behind the end) so that about
    `window` of the newest remain to read; empty when the total lag is within the window."""
    total = sum(max(0, lag) for lag in lags.values())
    if total <= window:
        return {}
    skips = {}
    for partition, lag in lags.items():
        if lag <= 0:
            continue
        keep = math.ceil(window * lag / total)
        if lag > keep:
            skips[partition] = lag - keep
    return skips
