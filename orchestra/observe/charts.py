"""The report's two drawings, as inline SVG: the DAG with its critical path, and a Gantt chart.

Both are pure functions of plain values, drawn on the server side so the report needs no
script and no network. Every text that reaches the SVG is escaped.

DAG layout: a node's *layer* is the length of the longest chain of dependencies before it, so
every edge points right; within a layer nodes sit in the mean order of their parents (one
barycentre pass, which removes most crossings), ties in plan order.

Gantt: one lane per model; a lane's bars (model calls, or whole nodes when calls are not
known) are packed into as few rows as overlap allows, so a lane's height is its peak
parallelism.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Bar", "DagNode", "dag_svg", "gantt_svg", "layers", "pack_rows"]

_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _PAD = 170, 46, 64, 14, 12
_LABEL_W, _ROW_H, _BAR_H, _AXIS_H = 150, 22, 16, 26
NO_MODEL = "(no model)"


@dataclass(frozen=True)
class DagNode:
    """A node to draw: its dependencies, model, duration, status and whether it is critical."""

    task_id: str
    after: tuple[str, ...]
    model: str | None
    seconds: float | None
    status: str
    critical: bool
    tooltip: str


@dataclass(frozen=True)
class Bar:
    """One interval on the timeline, in seconds from the start of the run."""

    task_id: str
    model: str
    start: float
    end: float
    failed: bool
    critical: bool
    tooltip: str


def _text(value: str, limit: int) -> str:
    return escape(value if len(value) <= limit else value[: limit - 1] + "…")


def layers(nodes: Sequence[DagNode]) -> list[list[str]]:
    """Nodes by layer (longest dependency chain before them), ordered to limit crossings.

    Example:
        >>> n = lambda i, *after: DagNode(i, after, None, None, "succeeded", False, "")
        >>> layers([n("a"), n("b"), n("c", "b"), n("d", "a", "c")])
        [['a', 'b'], ['c'], ['d']]
    """
    known = {n.task_id for n in nodes}
    deps = {n.task_id: [d for d in n.after if d in known] for n in nodes}
    depth: dict[str, int] = {}
    pending = [n.task_id for n in nodes]
    while pending:
        progressed = [t for t in pending if all(d in depth for d in deps[t])]
        if not progressed:  # a cycle: cannot come from a validated plan; lay it flat
            progressed = pending[:1]
            deps[progressed[0]] = [d for d in deps[progressed[0]] if d in depth]
        for task in progressed:
            depth[task] = 1 + max((depth[d] for d in deps[task]), default=-1)
        pending = [t for t in pending if t not in depth]
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in nodes:
        result[depth[node.task_id]].append(node.task_id)
    position: dict[str, float] = {t: float(i) for i, t in enumerate(result[0] if result else [])}
    for layer in result[1:]:
        order = {t: i for i, t in enumerate(layer)}
        layer.sort(key=lambda t: (sum(position[d] for d in deps[t]) / len(deps[t]), order[t]))
        position.update({t: float(i) for i, t in enumerate(layer)})
    return result


def dag_svg(nodes: Sequence[DagNode], colors: Mapping[str, str]) -> str:
    """The DAG as an SVG element (`id="dag"`), critical nodes and edges highlighted."""
    by_id = {n.task_id: n for n in nodes}
    grid = layers(nodes)
    rows = max((len(layer) for layer in grid), default=0)
    width = _PAD * 2 + len(grid) * (_NODE_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + rows * (_NODE_H + _GAP_Y) - _GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for column, layer in enumerate(grid):
        offset = (rows - len(layer)) * (_NODE_H + _GAP_Y) / 2
        for row, task_id in enumerate(layer):
            where[task_id] = (
                _PAD + column * (_NODE_W + _GAP_X),
                _PAD + offset + row * (_NODE_H + _GAP_Y),
            )
    parts = [
        f'<svg id="dag" class="dag" xmlns="http://www.w3.org/2000/svg" width="{max(width, 0)}" '
        f'height="{max(height, 0)}" viewBox="0 0 {max(width, 0)} {max(height, 0)}" role="img" '
        f'aria-label="the plan as a graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker>'
        '<marker id="arrow-critical" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead critical"/></marker></defs>',
    ]
    for node in nodes:
        x2, y2 = where[node.task_id]
        for dep in node.after:
            if dep not in where:
                continue
            x1, y1 = where[dep]
            ax, ay, bx, by = x1 + _NODE_W, y1 + _NODE_H / 2, x2, y2 + _NODE_H / 2
            critical = node.critical and by_id[dep].critical
            cls = "edge critical" if critical else "edge"
            marker = "arrow-critical" if critical else "arrow"
            bend = _GAP_X / 2
            parts.append(
                f'<path class="{cls}" data-from="{escape(dep)}" data-to="{escape(node.task_id)}" '
                f'd="M{ax:.1f},{ay:.1f} C{ax + bend:.1f},{ay:.1f} {bx - bend:.1f},{by:.1f} '
                f'{bx - 2:.1f},{by:.1f}" marker-end="url(#{marker})"/>'
            )
    for node in nodes:
        x, y = where[node.task_id]
        color = colors.get(node.model or NO_MODEL, "#adb5bd")
        classes = " ".join(
            c for c in ("node", node.status, "critical" if node.critical else "") if c
        )
        detail = node.model or "—"
        if node.seconds is not None:
            detail += f" · {node.seconds:.2f}s"
        parts.append(
            f'<g class="{classes}" data-task="{escape(node.task_id)}" '
            f'transform="translate({x:.1f},{y:.1f})"><title>{escape(node.tooltip)}</title>'
            f'<rect class="box" width="{_NODE_W}" height="{_NODE_H}" rx="7"/>'
            f'<rect class="stripe" width="6" height="{_NODE_H}" rx="3" fill="{escape(color)}"/>'
            f'<text class="id" x="14" y="19">{_text(node.task_id, 21)}</text>'
            f'<text class="detail" x="14" y="36">{_text(detail, 26)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def pack_rows(bars: Sequence[Bar]) -> list[list[Bar]]:
    """Bars in as few rows as possible with no overlap in a row (greedy by start time).

    Example:
        >>> b = lambda s, e: Bar("t", "m", s, e, False, False, "")
        >>> [len(row) for row in pack_rows([b(0, 2), b(1, 3), b(2, 4)])]
        [2, 1]
    """
    rows: list[list[Bar]] = []
    for bar in sorted(bars, key=lambda b: (b.start, b.end, b.task_id)):
        for row in rows:
            if row[-1].end <= bar.start + 1e-9:
                row.append(bar)
                break
        else:
            rows.append([bar])
    return rows


def _tick(span: float) -> float:
    """A round tick step giving about eight ticks over `span` seconds."""
    raw = max(span, 1e-3) / 8
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= raw)


def gantt_svg(
    bars: Sequence[Bar], models: Sequence[str], colors: Mapping[str, str], *, makespan: float
) -> str:
    """The timeline as an SVG element (`id="gantt"`): one lane per model, rows for overlap."""
    width = 1100
    plot = width - _LABEL_W - _PAD * 2
    span = max(makespan, max((b.end for b in bars), default=0.0), 1e-3)
    scale = plot / span
    lanes = [(m, pack_rows([b for b in bars if b.model == m])) for m in models]
    lanes = [(m, rows) for m, rows in lanes if rows]
    height = _AXIS_H + sum(len(rows) * _ROW_H + 10 for _, rows in lanes) + _PAD
    parts = [
        f'<svg id="gantt" class="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of model calls per model">'
    ]
    step = _tick(span)
    ticks = int(span / step + 1e-9) + 1
    for index in range(ticks):
        at = index * step
        x = _LABEL_W + _PAD + at * scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{_AXIS_H - 6}" x2="{x:.1f}" y2="{height}"/>'
            f'<text class="tick" x="{x:.1f}" y="{_AXIS_H - 10}">{at:g}s</text>'
        )
    y = float(_AXIS_H)
    for model, rows in lanes:
        lane_h = len(rows) * _ROW_H
        color = escape(colors.get(model, "#adb5bd"))
        head = (
            f'<g class="lane" data-model="{escape(model)}">'
            f'<rect class="lane-bg" x="0" y="{y:.1f}" width="{width}" height="{lane_h + 6}"/>'
            f'<rect x="{_PAD}" y="{y + 5:.1f}" width="10" height="10" rx="2" fill="{color}"/>'
            f'<text class="lane-label" x="{_PAD + 16}" y="{y + 14:.1f}">{_text(model, 16)}</text>'
        )
        if len(rows) > 1:
            head += (
                f'<text class="lane-peak" x="{_PAD + 16}" y="{y + 28:.1f}">'
                f"{len(rows)} in parallel</text>"
            )
        parts.append(head)
        for index, row in enumerate(rows):
            top = y + 3 + index * _ROW_H
            for bar in row:
                x = _LABEL_W + _PAD + bar.start * scale
                w = max((bar.end - bar.start) * scale, 5.0 if bar.failed else 2.0)
                flags = {"failed": bar.failed, "critical": bar.critical}
                classes = " ".join(["bar", *(name for name, on in flags.items() if on)])
                label = f'<text class="bar-label" x="{x + 4:.1f}" y="{top + 12:.1f}">'
                label += f"{_text(bar.task_id, int(w / 7))}</text>" if w > 28 else "</text>"
                parts.append(
                    f'<g class="{classes}" data-task="{escape(bar.task_id)}">'
                    f"<title>{escape(bar.tooltip)}</title>"
                    f'<rect x="{x:.1f}" y="{top:.1f}" width="{w:.1f}" height="{_BAR_H}" rx="3" '
                    f'fill="{color}"/>{label}</g>'
                )
        parts.append("</g>")
        y += lane_h + 10
    parts.append("</svg>")
    return "".join(parts)
