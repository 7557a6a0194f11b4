"""`orchestra models`: the constellation the other commands would run on."""

from __future__ import annotations

import argparse

from rich.table import Table

from orchestra.cli.common import EXIT_OK, Commands, Terminal, constellation, plain, print_json

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add `models` to the `orchestra` command."""
    models = commands.add_parser("models", parents=[common], help="list the constellation")
    models.set_defaults(handler=_models)


def _price(usd: float | None) -> str:
    return "unknown" if usd is None else f"{usd:g}"  # unknown is not free (docs/budgets.md)


def _models(args: argparse.Namespace, term: Terminal) -> int:
    models = constellation(args, term)
    if args.json:  # one spec per line; keys never leave the process
        for spec in models:
            print_json(term.out, spec.model_dump(mode="json", exclude={"api_key"}))
        return EXIT_OK
    table = Table(title="models")
    for column in ("name", "model", "quality", "$/1M in", "$/1M out", "ttft s", "decode tok/s"):
        table.add_column(column)
    for spec in models:
        table.add_row(
            plain(spec.name),
            plain(spec.model),
            f"{spec.quality:.2f}",
            _price(spec.input_cost),
            _price(spec.output_cost),
            f"{spec.ttft:g}",
            f"{spec.decode_tps:g}",
        )
    term.out.print(table)
    return EXIT_OK
