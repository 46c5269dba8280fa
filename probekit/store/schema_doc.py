"""Generate docs/schema.md from the migrations, so the documented schema is always the applied one.

    python -m probekit.store.schema_doc > docs/schema.md
"""

from __future__ import annotations

import re

import duckdb

from probekit.store.migrations import MIGRATIONS


def _column_comments() -> dict[tuple[str, str], str]:
    """`-- comment` after a column definition in the migration SQL, keyed by (table, column)."""
    comments: dict[tuple[str, str], str] = {}
    for migration in MIGRATIONS:
        table = None
        for line in migration.sql.splitlines():
            created = re.match(r"\s*CREATE (?:TABLE|VIEW) (\w+)", line)
            if created:
                table = created.group(1)
                continue
            column = re.match(r"\s*(\w+) [A-Z].*?--\s*(.+)$", line)
            if table and column:
                comments[(table, column.group(1))] = column.group(2).strip()
    return comments


def render() -> str:
    con = duckdb.connect(":memory:")
    for migration in MIGRATIONS:
        con.execute(migration.sql)
    comments = _column_comments()
    lines = ["# Store schema", "",
             "Generated from `probekit/store/migrations.py` by `python -m probekit.store.schema_doc`; do not edit.", "",
             "Migrations: " + "; ".join(f"{m.version}. {m.name}" for m in MIGRATIONS), ""]
    objects = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_type, table_name").fetchall()
    for name, kind in objects:
        lines += [f"## {name} ({'view' if kind == 'VIEW' else 'table'})", "", "| column | type | meaning |", "|---|---|---|"]
        for column, dtype in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [name]).fetchall():
            lines.append(f"| {column} | {dtype} | {comments.get((name, column), '')} |")
        lines.append("")
    con.close()
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
