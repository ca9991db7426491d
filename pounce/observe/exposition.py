"""The Prometheus text exposition format (version 0.0.4) for a summed metrics table.

One ``# HELP`` and one ``# TYPE`` line per family, then one sample per line:
``name{label="value",...} number``. Histograms print cumulative ``_bucket`` samples with an
``le`` label ending in ``+Inf``, then ``_sum`` (seconds) and ``_count``. Pure: a list of
integers in, bytes out.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Final

from pounce.observe.metrics import LAYOUT, Family, settled_view

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"


def render(values: list[int], extra_gauges: Iterable[tuple[str, str, float]] = ()) -> bytes:
    """The page for ``values`` (laid out as ``LAYOUT``) plus scrape-time gauges given as
    ``(name, help, value)``."""
    lines: list[str] = []
    values = settled_view(values)
    for family in LAYOUT.families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        if family.kind == "histogram":
            _histogram(lines, family, values)
        else:
            _series(lines, family, values)
    for name, help_, value in extra_gauges:
        lines.append(f"# HELP {name} {_escape_help(help_)}")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {_number(value)}")
    lines.append("")
    return "\n".join(lines).encode()


def _series(lines: list[str], family: Family, values: list[int]) -> None:
    index = family.start
    if not family.labels:
        lines.append(f"{family.name} {values[index]}")
        return
    names = [name for name, _ in family.labels]
    for combo in itertools.product(*(vals for _, vals in family.labels)):
        labels = ",".join(f'{n}="{v}"' for n, v in zip(names, combo, strict=True))
        lines.append(f"{family.name}{{{labels}}} {values[index]}")
        index += 1


def _histogram(lines: list[str], family: Family, values: list[int]) -> None:
    start = family.start
    cumulative = 0
    for i, bound in enumerate(family.buckets):
        cumulative += values[start + i]
        lines.append(f'{family.name}_bucket{{le="{_number(bound)}"}} {cumulative}')
    n = len(family.buckets)
    cumulative += values[start + n]
    lines.append(f'{family.name}_bucket{{le="+Inf"}} {cumulative}')
    lines.append(f"{family.name}_sum {_number(values[start + n + 1] / 1e9)}")
    lines.append(f"{family.name}_count {cumulative}")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(float(value))
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
