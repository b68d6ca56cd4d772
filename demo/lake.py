"""The demo lake: Parquet files under MESH_DEMO_LAKE_DIR, read through a DuckDB data source
(`demo-lake`, its file_root the lake). The Shipments product's second output port is
`shipments/events-*.parquet`, generated like the warehouse tables (deterministic rows, some
events without a carrier) and checked by demo/quality.py. Needs DuckDB (`make run` installs
mesh-portal[duckdb]); without it the port and its checks still exist and their runs say which
extra to install."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from demo import warehouse as demo_warehouse
from governance.models import DataSource

DUCKDB_TYPES = {
    "integer": "BIGINT",
    "number": "DECIMAL(12,2)",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
PARTS = 2  # files per port: the location is a glob over them


def root() -> Path:
    return Path(settings.MESH_DEMO_LAKE_DIR).resolve()


def physical_type(logical: str) -> str:
    return DUCKDB_TYPES.get(logical, "VARCHAR")


def lake_source() -> DataSource:
    source = DataSource.objects.filter(slug="demo-lake").first()
    if source is None:
        source = DataSource.objects.create(
            slug="demo-lake",
            name="Demo lake (Parquet)",
            kind="duckdb",
            options={"file_root": str(root())},
            description="Parquet files of the demo mesh, read through DuckDB (read-only, "
            "only under the file root).",
        )
    return source


def build(ports: list[dict]) -> int:
    """Write each lake port's files unless they exist. Returns how many ports were written."""
    if importlib.util.find_spec("duckdb") is None:
        return 0
    import duckdb

    now = datetime.now(UTC).replace(tzinfo=None)
    written = 0
    for port in ports:
        pattern = root() / port["lake"]
        folder, stem = pattern.parent, pattern.name.split("*")[0]
        if any(folder.glob(pattern.name)):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        fields = port["fields"]
        rows = demo_warehouse.build_rows({**port, "table": port["lake"]}, now)
        conn = duckdb.connect()
        try:
            cols = ", ".join(f'"{f["name"]}" {physical_type(f["logical_type"])}' for f in fields)
            conn.execute(f"CREATE TABLE lake_port ({cols})")
            marks = ", ".join("?" * len(fields))
            conn.executemany(f"INSERT INTO lake_port VALUES ({marks})", rows)  # noqa: S608  # nosec B608
            size = (len(rows) + PARTS - 1) // PARTS
            for part in range(PARTS):
                target = str(folder / f"{stem}{part + 1}.parquet").replace("'", "''")
                conn.execute(
                    f"COPY (SELECT * FROM lake_port LIMIT {size} OFFSET {part * size}) "  # noqa: S608  # nosec B608
                    f"TO '{target}' (FORMAT parquet)"
                )
        finally:
            conn.close()
        written += 1
    return written
