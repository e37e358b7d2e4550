"""Printing objects the way ``openstack`` does: ``-f table|json|yaml|value``, ``-c``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "yaml", "value")
# Wide enough for any table: rich pads nothing beyond the table itself.
_UNLIMITED = 1_000_000


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and set(v) == {"id"} for v in value):
            return "\n".join(v["id"] for v in value)
        return "\n".join(_cell(v) if not isinstance(v, dict) else json.dumps(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _select(obj: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    unknown = [c for c in columns if c not in obj]
    if unknown:
        raise click.UsageError(f"No such column(s): {', '.join(unknown)}. "
                               f"Available: {', '.join(obj)}")
    return {c: obj[c] for c in columns}


def show_one(obj: dict[str, Any], fmt: str, columns: Sequence[str]) -> None:
    """Print one object as Field/Value rows (table) or in ``fmt``."""
    data = _select(obj, columns) if columns else dict(sorted(obj.items()))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=not columns))
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=not columns, default_flow_style=False).rstrip())
    elif fmt == "value":
        for value in data.values():
            click.echo(_cell(value))
    else:
        table = Table(show_header=True, header_style="bold")
        table.add_column("Field")
        table.add_column("Value", overflow="fold")
        for key, value in data.items():
            table.add_row(key, _cell(value))
        print_table(table)


def show_many(objs: list[dict[str, Any]], fmt: str, columns: Sequence[str],
              default_columns: Sequence[str]) -> None:
    """Print a list: one row per object, ``columns`` (or the defaults) as columns."""
    cols = list(columns or default_columns)
    rows = [{c: o.get(c) for c in cols} for o in objs]
    if columns and objs:
        _select(objs[0], columns)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(rows, sort_keys=False, default_flow_style=False).rstrip())
    elif fmt == "value":
        for row in rows:
            click.echo(" ".join(_cell(v).replace("\n", ",") for v in row.values()))
    else:
        table = Table(show_header=True, header_style="bold")
        for c in cols:
            table.add_column(c, overflow="fold")
        for row in rows:
            table.add_row(*[_cell(v) for v in row.values()])
        print_table(table)


def print_table(table: Table) -> None:
    """Print ``table`` on stdout: fitted to the terminal's width on a terminal, whole
    (no word broken across lines) when stdout is a pipe or a file, as ``openstack``
    does; an explicit ``COLUMNS`` environment variable sets the width either way."""
    console = Console(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=True, width=_UNLIMITED)
    console.print(table)
