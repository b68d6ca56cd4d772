"""Where a port's data is: a table (`schema.table`) or files (Parquet/CSV/JSON by path or glob,
read through a DuckDB data source's file root). Plain Python: the contracts and the quality
engine share it."""

FILE_FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


def is_file_location(location: str) -> bool:
    """A location that names files by path or glob, not schema.table."""
    loc = (location or "").strip().lower()
    return loc.endswith(tuple(FILE_FORMATS)) or any(ch in loc for ch in "*?[")


def file_format(location: str) -> str:
    """parquet, csv or json, by the location's suffix (a bare glob is read as Parquet)."""
    lower = (location or "").strip().lower()
    return next((f for suffix, f in FILE_FORMATS.items() if lower.endswith(suffix)), "parquet")
