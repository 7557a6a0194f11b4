"""The HTML run report: one self-contained file that shows a whole run at a glance.

`build_report(events, result)` takes a run's events (from `on_event`, `Orchestra.stream` or a
JSON-lines log) and/or its `RunResult`, and returns one HTML page: the DAG with its critical
path, a Gantt timeline per model showing the parallelism, cost and tokens per model and per
node, every routing decision with its reason, the retries, fallbacks and other decisions, and
the final output. Either input alone gives a smaller report (see `orchestra.observe.digest`).

The page is `report.html` beside this module, filled in with `string.Template`. Safety: every
text from the run (task, prompts, outputs, errors) is HTML-escaped, and the page carries a
Content-Security-Policy allowing no script and no network at all, so a hostile model output
cannot run script and the page opens offline. Model specs (which hold API keys) are never read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from orchestra.events import Event
from orchestra.observe.charts import NO_MODEL, DagNode, dag_svg, gantt_svg
from orchestra.observe.digest import RunDigest, digest
from orchestra.observe.tracker import RETRY_KINDS

if TYPE_CHECKING:
    from orchestra.results import RunResult

__all__ = ["PALETTE", "build_report", "write_report"]

PALETTE = ("#4c6ef5", "#12b886", "#be4bdb", "#15aabf", "#82c91e", "#7950f2", "#e64980", "#228be6")
"""Model colours, given in order of each model's first call."""


def _usd(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}s"


def _row(cells: Iterable[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>{''.join(cells)}</tr>"


def _td(value: object, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{escape(str(value))}</td>"


def _head(*names: str) -> str:
    cells = "".join(
        f'<th class="num">{escape(n[1:])}</th>' if n.startswith(">") else f"<th>{escape(n)}</th>"
        for n in names
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _summary(run: RunDigest) -> str:
    ran = [n for n in run.nodes if n.seconds is not None]
    work = sum(b.end - b.start for b in run.bars)  # every model call, the boss's included
    failed = sum(n.status == "failed" for n in run.nodes)
    not_run = sum(n.status == "not_run" for n in run.nodes)
    retries = sum(kind in RETRY_KINDS for _, kind, _, _ in run.notes)
    cards = [
        (_secs(run.seconds), "wall time"),
        (_usd(run.cost_usd), "cost"),
        (f"{run.input_tokens + run.output_tokens:,}", "tokens (in + out)"),
        (f"{len(ran)}/{len(run.nodes)}", f"nodes ran ({failed} failed, {not_run} not run)"),
        (str(run.calls), f"model calls ({run.failed_calls} failed) on {len(run.models)} model(s)"),
        (_secs(run.critical_seconds), "critical path"),
        (f"×{work / run.seconds:.1f}" if run.seconds > 0 else "—", "parallelism (work / wall)"),
        (str(retries), "retries, fallbacks, escalations"),
    ]
    html = '<div class="cards">' + "".join(
        f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards
    )
    html += "</div>"
    if run.stopped is not None or run.status == "budget_exceeded":
        limit = run.stopped or "a budget limit"
        html += f'<p class="banner">Stopped by the budget: {escape(limit)} was reached.</p>'
    return html


def _legend(run: RunDigest, colors: dict[str, str]) -> str:
    items = "".join(
        f'<span><i class="swatch" style="background:{colors[m]}"></i>{escape(m)}</span>'
        for m in run.models
    )
    items += '<span><i class="swatch critical"></i>critical path</span>'
    items += '<span><i class="swatch" style="background:#e03131"></i>failed</span>'
    return f'<div class="legend">{items}</div>'


def _models_table(run: RunDigest, colors: dict[str, str]) -> str:
    total = max(run.cost_usd, 1e-12)
    rows: list[str] = []
    for model in run.models:
        calls, tin, tout, cost = run.by_model.get(model, (0, 0, 0, 0.0))
        seen = run.admission.get(model)
        limited = "" if seen is None or not seen.pauses else f"{seen.pauses}"
        if seen is not None and seen.lowest is not None:
            limited += f" (down to {seen.lowest} at a time)"
        waited = "" if seen is None or seen.waited <= 0 else _secs(seen.waited)
        meter = (
            f'<span class="meter" style="width:{max(2.0, 160 * cost / total):.0f}px;'
            f'background:{colors[model]}"></span>'
        )
        rows.append(
            _row(
                [
                    _td(model),
                    _td(calls, num=True),
                    _td(f"{tin:,}", num=True),
                    _td(f"{tout:,}", num=True),
                    f'<td class="num">{escape(_usd(cost))}{meter}</td>',
                    _td(f"{cost / total:.0%}", num=True),
                    _td(limited, num=True),
                    _td(waited, num=True),
                ]
            )
        )
    head = _head(
        "model",
        ">calls",
        ">input tokens",
        ">output tokens",
        ">cost",
        ">share",
        ">429 pauses",
        ">queued",
    )
    return f"<table id='models'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _nodes_table(run: RunDigest) -> str:
    rows: list[str] = []
    for n in run.nodes:
        cls = " ".join(c for c in ("critical" if n.critical else "", n.status) if c)
        status = n.status if n.error is None else f"{n.status}: {n.error}"
        rows.append(
            _row(
                [
                    _td(n.task_id),
                    _td(n.agent or "—"),
                    _td(n.model or "—"),
                    _td(n.reason or "—", cls="dim"),
                    _td(_secs(n.started), num=True),
                    _td(_secs(n.finished), num=True),
                    _td(_secs(n.seconds), num=True),
                    _td(_secs(n.slack), num=True),
                    _td(n.calls, num=True),
                    _td(f"{n.input_tokens:,} / {n.output_tokens:,}", num=True),
                    _td(_usd(n.cost_usd), num=True),
                    _td(status, cls="err" if n.error else ""),
                ],
                cls,
            )
        )
    head = _head(
        "node", "agent", "model", "why this model", ">start", ">end", ">took", ">slack",
        ">calls", ">tokens in / out", ">cost", "status",
    )  # fmt: skip
    return f"<table id='nodes'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _decisions_table(run: RunDigest) -> str:
    rows = [
        _row([_td(_secs(at), num=True), _td(task), _td(model), _td(reason), _td(outcome)])
        for at, task, model, reason, outcome in run.decisions
    ]
    head = _head(">at", "node", "model", "reason", "outcome")
    return f"<table id='decisions'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _notes_table(run: RunDigest) -> str:
    if not run.notes:
        return "<p class='dim' id='events'>No retries, fallbacks or other decisions.</p>"
    rows = [
        _row([_td(_secs(at), num=True), _td(kind), _td(task or "—"), _td(detail)])
        for at, kind, task, detail in run.notes
    ]
    head = _head(">at", "event", "node", "details")
    return f"<table id='events'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _outputs(run: RunDigest) -> str:
    if run.output is not None:
        html = f'<pre class="output" id="output">{escape(run.output)}</pre>'
    else:
        html = (
            '<p class="dim" id="output">No final output: the run stopped early, or the report '
            "was built from events alone (pass the RunResult to include outputs).</p>"
        )
    for n in run.nodes:
        if n.output is None and n.prompt is None:
            continue
        parts = f"<summary>{escape(n.task_id)}</summary>"
        if n.prompt is not None:
            parts += f"<p class='dim'>prompt</p><pre>{escape(n.prompt)}</pre>"
        if n.output is not None:
            parts += f"<p class='dim'>output</p><pre>{escape(n.output)}</pre>"
        html += f"<details class='node-output'>{parts}</details>"
    return html


def build_report(
    events: Iterable[Event] = (),
    result: RunResult | None = None,
    *,
    inputs: Mapping[str, str] | None = None,
) -> str:
    """The report of one run as a self-contained HTML page.

    Args:
        events: the run's events in order (from `on_event`, `stream`, or `read_events`).
        result: the run's `RunResult` (or a partial one from `NodeFailed.result`).
        inputs: the run's inputs, to show prompts as they were sent.

    Raises:
        ValueError: neither events nor a result were given.
    """
    events = list(events)
    if not events and result is None:
        raise ValueError("a report needs the run's events, its RunResult, or both")
    run = digest(events, result, inputs)
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(run.models)}
    colors.setdefault(NO_MODEL, "#adb5bd")
    dag_nodes = [
        DagNode(
            n.task_id,
            n.after,
            n.model,
            n.seconds,
            n.status,
            n.critical,
            f"{n.task_id} ({n.agent or '?'}) on {n.model or '—'}: {n.status}"
            + (f", {n.seconds:.2f}s" if n.seconds is not None else "")
            + (f"\nwhy: {n.reason}" if n.reason else ""),
        )
        for n in run.nodes
    ]
    makespan = max(run.seconds, max((b.end for b in run.bars), default=0.0))
    page = resources.files("orchestra.observe").joinpath("report.html").read_text("utf-8")
    return Template(page).substitute(
        run_id=escape(run.run_id),
        status=escape(run.status),
        task=f'<p class="task">{escape(run.task)}</p>' if run.task else "",
        summary=_summary(run),
        critical_seconds=escape(_secs(run.critical_seconds)),
        critical_path=escape(" → ".join(run.critical) or "—"),
        legend=_legend(run, colors),
        dag=dag_svg(dag_nodes, colors),
        gantt=gantt_svg(run.bars, run.models, colors, makespan=makespan),
        models=_models_table(run, colors),
        nodes=_nodes_table(run),
        decisions=_decisions_table(run),
        notes=_notes_table(run),
        output=_outputs(run),
    )


def write_report(
    path: str | os.PathLike[str],
    *,
    events: Iterable[Event] = (),
    result: RunResult | None = None,
    inputs: Mapping[str, str] | None = None,
) -> Path:
    """Write the report of a run to `path` (see `build_report`); returns the path."""
    target = Path(path)
    target.write_text(build_report(events, result, inputs=inputs), encoding="utf-8")
    return target
