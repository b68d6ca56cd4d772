"""Any JSON at all given to the readers gives records or per-record errors, never an exception
(so the ingest API answers 400, never 500)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usage import formats

leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
KEYS = st.sampled_from(
    ["resourceSpans", "resourceLogs", "scopeSpans", "scopeLogs", "spans", "logRecords",
     "attributes", "key", "value", "stringValue", "intValue", "resource", "body", "events",
     "user", "query", "timestamp", "rows", "count", "startTimeUnixNano", "db.user"]
)  # fmt: skip
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_otlp_and_batch_readers_never_raise(data):
    for reader in (formats.read_otlp, formats.read_batch):
        records, errors = reader(data)
        assert all(isinstance(e, formats.LineError) and e.reason for e in errors)
        assert all(r.principal and r.occurred_at.tzinfo for r in records)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_file_readers_never_raise(text):
    for fmt in formats.FILE_FORMATS:
        formats.read_file(text, fmt)
