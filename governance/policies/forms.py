import copy

from django import forms
from django.core.exceptions import ValidationError

from domains.models import Domain
from governance.models import GlossaryTerm, Policy, PolicyVote
from governance.policies import rules
from meshportal.forms import apply_errors


class PolicyForm(forms.Form):
    """A proposal, with the chosen rule type's parameters as fields of their own (`param_<name>`,
    copied from the rule type's Params form), so a bad value is flagged next to its field.

    `params_for` says which rule type the parameter fields were drawn for: when the rule type
    changes (htmx re-renders the form; without JS the post comes back), the new type's fields
    are shown with their defaults and nothing is saved yet. A post without `params_for` (a
    script) gets the rule type's defaults for every parameter it leaves out."""

    PREFIX = "param_"

    key = forms.SlugField(max_length=80, help_text="Short unique name, e.g. snake-case-fields.")
    title = forms.CharField(max_length=200)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Markdown: why the mesh wants this.",
    )
    rule_type = forms.ChoiceField(choices=rules.choices)
    severity = forms.ChoiceField(choices=Policy.Severity.choices)
    domain = forms.ModelChoiceField(
        Domain.objects.order_by("name"),
        required=False,
        empty_label="Global (the council votes)",
        help_text="A domain's owners adopt policies for their own domain without the council.",
    )
    params_for = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data=None, **kwargs):
        source = data if data is not None else kwargs.get("initial") or {}
        chosen = source.get("rule_type") or rules.choices()[0][0]
        self.rule = next((r for r in rules.all_types() if r.key == chosen), None)
        self.switched = False
        if data is not None and self.rule is not None:
            drawn_for = data.get("params_for")
            data = data.copy()
            if not drawn_for:  # a script's post: the defaults for what it leaves out
                for name, value in self.rule.defaults().items():
                    data.setdefault(self.PREFIX + name, value)
            elif drawn_for != self.rule.key:  # the type changed: its fields, not yet checked
                self.switched = True
                for name in list(data):
                    if name.startswith(self.PREFIX):
                        del data[name]
                for name, value in self.rule.defaults().items():
                    data[self.PREFIX + name] = value
            data["params_for"] = self.rule.key
        super().__init__(data, **kwargs)
        self.initial["params_for"] = chosen
        if self.rule is None:
            return
        for name, field in self.rule.Params.base_fields.items():
            f = copy.deepcopy(field)
            f.label = f.label or name.replace("_", " ").capitalize()
            self.fields[self.PREFIX + name] = f
            if field.initial is not None:
                self.initial.setdefault(self.PREFIX + name, field.initial)
        self.order_fields(["key", "title", "rationale", "rule_type", *self.param_names])

    def is_valid(self) -> bool:
        return not self.switched and super().is_valid()

    @property
    def param_names(self) -> list[str]:
        return [n for n in self.fields if n.startswith(self.PREFIX)]

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        kwargs = {k: v for k, v in d.items() if k != "params_for" and not k.startswith(self.PREFIX)}
        kwargs["parameters"] = {n.removeprefix(self.PREFIX): d[n] for n in self.param_names}
        return kwargs

    def add_service_errors(self, error: ValidationError) -> None:
        """The rule's "name: reason" errors next to the parameter's field; the rest as usual."""
        if hasattr(error, "error_dict") and "parameters" in error.error_dict:
            for e in error.error_dict.pop("parameters"):
                text = " ".join(e.messages)
                field = self.PREFIX + text.split(":", 1)[0]
                self.add_error(field if field in self.fields else None, text)
            if not error.error_dict:
                return
        apply_errors(self, error)


class VoteForm(forms.Form):
    decision = forms.ChoiceField(choices=PolicyVote.Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class WaiverRequestForm(forms.Form):
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the product cannot comply yet, and until when.",
    )


class WaiverDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("grant", "Grant"), ("deny", "Deny")])
    decision_reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Needed to grant, e.g. 2026-12-31 00:00",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class GlossaryTermForm(forms.ModelForm):
    class Meta:
        model = GlossaryTerm
        fields = ["name", "slug", "definition", "synonyms", "domain", "status"]
