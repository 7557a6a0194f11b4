"""The routing benchmark's figures: scores like the literature's, the table, the Pareto SVG.

- **Accuracy** by the recorded flag of the model whose answer a node kept (a failed node is
  wrong); **cost ratio**: mean cost over the strong model's in the same run.
- **PGR**, the performance gap recovered (RouteLLM): `(accuracy − weak) / (strong − weak)`,
  with the weak and strong models alone measured in the same run — 1 matches the strong model,
  above 1 beats it. **APGR** averages it over a cost sweep (a family of fitted policies).
- **Small-model shares**: of the model calls, of the answers kept and of the cost, the part
  that went to models outside the catalogue's `large` tier — the "most of the work on small
  models" claim, measured.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orchestra as oc


@dataclass(frozen=True)
class Row:
    """One policy's figures over the queries."""

    name: str
    accuracy: float
    cost: float
    """Mean USD per query."""
    calls: float
    """Mean model calls per query."""
    failed: tuple[str, ...] = ()
    """Queries whose node failed (scored wrong)."""
    small_calls: float = math.nan
    """Share of the model calls made to small models (NaN: not a policy run, e.g. a bound)."""
    small_answers: float = math.nan
    """Share of the answers kept that small models gave."""
    small_cost: float = math.nan
    """Share of the cost spent on small models."""


def score(
    name: str,
    nodes: Mapping[str, oc.NodeResult],
    correct: Mapping[str, Mapping[str, bool]],
    small: frozenset[str],
) -> Row:
    """A policy's row: each node scored by the recorded flag of the model whose answer it
    kept; a failed node is wrong, and what it spent is counted."""
    count = len(nodes)
    right = [
        n.ok and n.model is not None and correct[q].get(n.model, False) for q, n in nodes.items()
    ]
    spent = [(model, use) for n in nodes.values() for model, use in n.usage.by_model.items()]
    calls = sum(use.calls for _, use in spent)
    cost = sum(use.cost_usd for _, use in spent)
    return Row(
        name,
        sum(right) / count,
        sum(n.cost_usd for n in nodes.values()) / count,
        sum(n.usage.calls for n in nodes.values()) / count,
        failed=tuple(sorted(q for q, n in nodes.items() if not n.ok)),
        small_calls=sum(use.calls for m, use in spent if m in small) / calls if calls else 0.0,
        small_answers=sum(1 for n in nodes.values() if n.ok and n.model in small) / count,
        small_cost=sum(use.cost_usd for m, use in spent if m in small) / cost if cost else 0.0,
    )


def recovered(accuracy: float, weak: Row, strong: Row) -> float:
    """The share of the weak-to-strong accuracy gap recovered (PGR)."""
    gap = strong.accuracy - weak.accuracy
    return (accuracy - weak.accuracy) / gap if gap else math.nan


def average_recovered(curve: Sequence[tuple[float, float]], weak: Row, strong: Row) -> float:
    """APGR: PGR averaged over cost ratios, from the weak model's to the strong model's
    (trapezoids between the curve's (cost ratio, accuracy) points; flat beyond its ends)."""
    low, high = weak.cost / strong.cost, 1.0
    points = sorted(curve)
    if not points or high <= low:
        return math.nan
    grid = [low + (high - low) * i / 100 for i in range(101)]

    def accuracy_at(ratio: float) -> float:
        if ratio <= points[0][0]:
            return points[0][1]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            if ratio <= x1:
                return y0 + (y1 - y0) * (ratio - x0) / (x1 - x0) if x1 > x0 else y1
        return points[-1][1]

    return sum(recovered(accuracy_at(r), weak, strong) for r in grid) / len(grid)


def table(rows: Sequence[Row], strong: Row, weak: Row, oracle: Row) -> str:
    """Every policy against the strong and weak models and the oracle."""
    head = (
        f"{'accuracy':>8} {'µ$/query':>9} {'cost/strong':>11} {'calls':>5} {'PGR':>6} "
        f"{'small: calls':>12} {'answers':>7} {'cost':>5} {'to oracle':>9}"
    )
    lines = [f"{'policy':44} {head}"]
    for row in rows:
        lines.append(
            f"{row.name[:44]:44} {row.accuracy:8.1%} {row.cost * 1e6:9,.0f} "
            f"{row.cost / strong.cost:11.3f} {row.calls:5.2f} "
            f"{recovered(row.accuracy, weak, strong):6.2f} {_share(row.small_calls, 12)} "
            f"{_share(row.small_answers, 7)} {_share(row.small_cost, 5)} "
            f"{(oracle.accuracy - row.accuracy) * 100:+7.1f}pt"
        )
    return "\n".join(lines)


def _share(value: float, width: int) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:{width}.0%}"


def pareto(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both cost (lower) and accuracy (higher)."""
    front: list[tuple[float, float]] = []
    for cost, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((cost, accuracy))
    return front


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def pareto_svg(
    path: Path,
    title: str,
    points: Mapping[str, tuple[float, float]],
    curves: Mapping[str, Sequence[tuple[float, float]]],
    highlight: str,
    bound: str,
) -> None:
    """Write the cost–accuracy picture: each policy a numbered point (cost ratio on a log
    axis, accuracy) listed on the right, the Pareto frontier of the policies dashed (`bound`,
    the oracle, is drawn but not on it), each swept family a line."""
    width, height, left, right, top, bottom = 860, 520, 64, 330, 40, 50
    every = [*points.values(), *(p for c in curves.values() for p in c)]
    low_x = math.log10(min(x for x, _ in every) * 0.8)
    high_x = math.log10(max(x for x, _ in every) * 1.25)
    low_y = math.floor(min(y for _, y in every) * 20) / 20
    high_y = math.ceil(max(y for _, y in every) * 20) / 20

    def at(cost: float, accuracy: float) -> tuple[float, float]:
        x = left + (math.log10(cost) - low_x) / (high_x - low_x) * (width - left - right)
        y = top + (high_y - accuracy) / (high_y - low_y) * (height - top - bottom)
        return round(x, 1), round(y, 1)

    def text(x: float, y: float, words: str, **attributes: str) -> str:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attributes.items())
        return f'<text x="{x}" y="{y}"{extra}>{html.escape(words)}</text>'

    plot_right, middle_y = width - right, (top + height - bottom) / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        text(left, 22, title, font_size="14"),
    ]
    for tick in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        if low_x <= math.log10(tick) <= high_x:
            x, _ = at(tick, low_y)
            parts.append(
                f'<line x1="{x}" y1="{top}" x2="{x}" y2="{height - bottom}" stroke="#eee"/>'
            )
            parts.append(text(x, height - bottom + 16, f"{tick:g}×", text_anchor="middle"))
    for index in range(round((high_y - low_y) / 0.05) + 1):
        value = low_y + index * 0.05
        _, y = at(10**low_x, value)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{plot_right}" y2="{y}" stroke="#eee"/>')
        parts.append(text(left - 6, y + 4, f"{value:.0%}", text_anchor="end"))
    parts.append(
        text(
            (left + plot_right) / 2,
            height - 12,
            "cost per query, relative to the strong model (log scale)",
            text_anchor="middle",
        )
    )
    parts.append(
        text(16, middle_y, "accuracy", text_anchor="middle", transform=f"rotate(-90 16 {middle_y})")
    )
    policies = [p for name, p in points.items() if name != bound]
    front = " ".join(f"{x},{y}" for x, y in (at(*p) for p in pareto(policies)))
    parts.append(f'<polyline points="{front}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
    legend_y = top
    for (name, curve), colour in zip(curves.items(), _COLOURS, strict=False):
        line = " ".join(f"{x},{y}" for x, y in (at(*p) for p in sorted(curve)))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<line x1="{plot_right + 14}" y1="{legend_y}" x2="{plot_right + 34}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(text(plot_right + 40, legend_y + 4, name))
        legend_y += 16
    parts.append(
        f'<line x1="{plot_right + 14}" y1="{legend_y}" x2="{plot_right + 34}" '
        f'y2="{legend_y}" stroke="#999" stroke-dasharray="4 3"/>'
    )
    parts.append(text(plot_right + 40, legend_y + 4, "Pareto frontier of the policies"))
    legend_y += 24
    for number, (name, (cost, accuracy)) in enumerate(points.items(), start=1):
        x, y = at(cost, accuracy)
        mark = "#d62728" if name == highlight else "#333"
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="{4 if name == highlight else 3}" fill="{mark}"/>'
        )
        parts.append(text(x + 5, y - 4, str(number), fill=mark))
        parts.append(text(plot_right + 14, legend_y, f"{number}  {name}", fill=mark))
        legend_y += 15
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
