"""Properties of parameter validation: policy rule types and data-quality checks (hypothesis).

Whatever parameters a caller sends (the API takes them as free JSON), validation either accepts
them or refuses them with a ValidationError naming the field; it never raises anything else.
"""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from governance.models import QualityCheck
from governance.policies import rules
from governance.policies import services as policy_services
from governance.quality import services as quality_services

BOUNDED = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "0", "-1", "12", "1e400", "nan", "[", "^a+$", "select 1", "percent"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


def _known_names(*groups) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted({n for g in groups for n in g})) | st.text(max_size=12)


RULE_PARAMS = _known_names(*(r.Params.base_fields for r in rules.all_types()))
CHECK_PARAMS = _known_names(
    ["min", "max", "unit", "missing_values", "values", "max_failing", "pattern", "hours"],
    ["allow_extra", "sql"],
)


def _assert_field_error(e: ValidationError) -> None:
    assert e.message_dict, "names a field"
    for field, messages in e.message_dict.items():
        assert field and messages and all(m.strip() for m in messages)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # re's "possible nested set" on "[["
@given(
    rule_type=st.sampled_from([r.key for r in rules.all_types()]),
    params=st.dictionaries(RULE_PARAMS, json_values, max_size=4),
)
@BOUNDED
def test_rule_parameters_are_accepted_or_refused_by_field(rule_type, params):
    rule = rules.get(rule_type)
    try:
        cleaned = rule.clean_params(params)
    except ValidationError as e:
        _assert_field_error(e)
        assert list(e.message_dict) == ["parameters"]
    else:
        assert set(cleaned) == set(rule.Params.base_fields)
        rule.fix_hint(cleaned)  # what the compliance pages show with them


@given(rule_type=st.sampled_from([r.key for r in rules.all_types()]), params=json_values)
@BOUNDED
def test_any_json_as_policy_parameters_is_a_field_error_at_worst(rule_type, params):
    try:
        policy_services.policy_parameters_clean(rule_type, params)
    except ValidationError as e:
        _assert_field_error(e)


@example(kind="missing", columns=["a"], params={"missing_values": 5})
@example(kind="accepted_values", columns=["a"], params={"values": 5})
@example(kind="pattern", columns=["a"], params={"pattern": 5})
@example(kind="custom_sql", columns=[], params={"sql": ["select 1"]})
@example(kind="row_count", columns=[], params={"min": 10**400})
@example(kind="freshness", columns=["a"], params={"hours": "nan"})
@given(
    kind=st.sampled_from(QualityCheck.Kind.values) | st.text(max_size=10),
    columns=st.lists(st.text(max_size=20) | json_scalars, max_size=3),
    params=st.dictionaries(CHECK_PARAMS, json_values, max_size=4),
)
@BOUNDED
def test_check_parameters_are_accepted_or_refused_by_field(kind, columns, params):
    try:
        _, clean = quality_services.validate_check(kind=kind, columns=columns, params=params)
    except ValidationError as e:
        _assert_field_error(e)
        assert set(e.message_dict) <= {"kind", "columns", "params"}
    else:
        for key in ("min", "max", "hours", "max_failing"):
            if clean.get(key) is not None:  # thresholds are finite numbers
                assert clean[key] == clean[key] and abs(clean[key]) != float("inf")
