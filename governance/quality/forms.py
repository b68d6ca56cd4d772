from __future__ import annotations

from django import forms

from governance.models import QualityCheck
from products.models import OutputPort


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

    # The fields each type asks for (issue 20 item 8): the form shows only these once a type
    # is chosen; before that, only the port, the name and the type (step one without JS).
    KIND_FIELDS = {
        "row_count": ("min", "max"),
        "missing": ("columns", "max", "unit"),
        "duplicates": ("columns", "max", "unit"),
        "accepted_values": ("columns", "values", "max", "unit"),
        "range": ("columns", "min", "max", "max_failing"),
        "pattern": ("columns", "pattern", "max", "unit"),
        "freshness": ("columns", "hours"),
        "schema": (),
        "custom_sql": ("sql", "max", "unit"),
    }
    PARAM_FIELDS: tuple[str, ...] = ("columns", "min", "max", "unit", "max_failing", "values")
    PARAM_FIELDS += ("pattern", "hours", "sql")
    ALWAYS = ("port", "name", "kind")

    def __init__(self, *args, ports=None, kind=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["port"].queryset = ports
        source = self.data if self.is_bound else self.initial
        chosen = kind or source.get("kind")
        self.kind = chosen if chosen in self.KIND_FIELDS else None
        if self.kind is None:
            keep = set(self.ALWAYS)
        else:
            keep = set(self.fields) - set(self.PARAM_FIELDS) | set(self.KIND_FIELDS[self.kind])
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if self.kind == "freshness":
            self.fields["columns"].help_text = "The timestamp column whose newest value counts."
        if "max" in self.fields and self.kind != "row_count" and self.kind != "range":
            self.fields["max"].label = "Most failing rows allowed"
            self.fields["max"].help_text = "0 if empty."

    @property
    def complete(self) -> bool:
        """Step two: a type is chosen, so the type's own fields are on the form."""
        return self.kind is not None

    def add_service_errors(self, error) -> None:
        """A service's errors next to the field they name ("min is required." under Minimum)."""
        from meshportal.forms import apply_errors

        if hasattr(error, "error_dict") and "params" in error.error_dict:
            rest = {k: v for k, v in error.error_dict.items() if k != "params"}
            for e in error.error_dict["params"]:
                text = " ".join(e.messages)
                key = text.split(" ", 1)[0]
                self.add_error(key if key in self.fields else None, text)
            if rest:
                from django.core.exceptions import ValidationError

                apply_errors(self, ValidationError(rest))
            return
        apply_errors(self, error)

    def service_kwargs(self) -> dict:
        d = {name: "" for name in self.PARAM_FIELDS} | self.cleaned_data
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
            "cron": (d.get("cron") or "").strip(),
        }


class WebhookForm(forms.Form):
    """URL and on/off only: the secret is generated by the portal, never typed or shown again."""

    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    active = forms.BooleanField(required=False, initial=True)


class DataSourceForm(forms.ModelForm):
    """A data source of any kind; what each kind needs is DataSource.clean's (the console's
    form asks the same). Secrets are references: an environment variable or a file name."""

    class Meta:
        from governance.models import DataSource

        model = DataSource
        fields = [
            "name",
            "slug",
            "kind",
            "host",
            "port",
            "database",
            "default_schema",
            "options",
            "user",
            "password_env",
            "secret_file",
            "sslmode",
            "max_timeout_seconds",
            "teams",
            "description",
        ]
