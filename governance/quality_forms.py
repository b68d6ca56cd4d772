from __future__ import annotations

from django import forms

from products.models import OutputPort

from .models import QualityCheck


class CheckForm(forms.Form):
    """One form for every check type; the service validates the parameters per type."""

    port: forms.ModelChoiceField[OutputPort] = forms.ModelChoiceField(
        queryset=None, empty_label=None
    )
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(label="Type", choices=QualityCheck.Kind.choices)
    columns = forms.CharField(
        required=False, help_text="Column name; for duplicates, one or more, comma-separated."
    )
    min = forms.CharField(
        required=False, label="Minimum", help_text="Row count or range: lowest allowed value."
    )
    max = forms.CharField(
        required=False,
        label="Maximum / threshold",
        help_text="Row count or range: highest allowed value. Other types: "
        "most failing rows allowed (0 if empty).",
    )
    unit = forms.ChoiceField(choices=[("count", "count"), ("percent", "percent")], required=False)
    max_failing = forms.CharField(required=False, label="Range: out-of-range rows allowed")
    values = forms.CharField(required=False, help_text="Accepted values, comma-separated.")
    pattern = forms.CharField(required=False, help_text="Regular expression every value matches.")
    hours = forms.CharField(
        required=False, help_text="Freshness: newest value at most N hours old."
    )
    sql = forms.CharField(
        required=False,
        label="Custom SQL",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One SELECT returning the number of failing rows; ${object} is the table.",
    )
    interval_minutes = forms.IntegerField(min_value=1, initial=60, label="Every (minutes)")
    cron = forms.CharField(required=False, help_text='Or a cron schedule, e.g. "0 6 * * *" (UTC).')

    def __init__(self, *args, ports=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["port"].queryset = ports

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        kind = d["kind"]
        params = {}
        if kind == "range":
            params = {"min": d["min"], "max": d["max"], "max_failing": d["max_failing"]}
        elif kind == "row_count":
            params = {"min": d["min"], "max": d["max"]}
        elif kind in ("missing", "duplicates", "accepted_values", "pattern", "custom_sql"):
            params = {"max": d["max"], "unit": d["unit"] or "count"}
        params |= {"values": d["values"]} if kind == "accepted_values" else {}
        params |= {"pattern": d["pattern"]} if kind == "pattern" else {}
        params |= {"hours": d["hours"]} if kind == "freshness" else {}
        params |= {"sql": d["sql"]} if kind == "custom_sql" else {}
        return {
            "port": d["port"],
            "name": d["name"],
            "kind": kind,
            "columns": [c.strip() for c in d["columns"].split(",") if c.strip()],
            "params": params,
            "interval_minutes": d["interval_minutes"],
            "cron": d["cron"].strip(),
        }
