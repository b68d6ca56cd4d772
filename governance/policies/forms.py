import json

from django import forms

from domains.models import Domain
from governance.models import GlossaryTerm, Policy, PolicyVote
from governance.policies import rules


class PolicyForm(forms.Form):
    key = forms.SlugField(max_length=80, help_text="Short unique name, e.g. snake-case-fields.")
    title = forms.CharField(max_length=200)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Markdown: why the mesh wants this.",
    )
    rule_type = forms.ChoiceField(choices=rules.choices)
    parameters = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        initial="{}",
        help_text="JSON object; empty uses the rule type's defaults (see the list below).",
    )
    severity = forms.ChoiceField(choices=Policy.Severity.choices)
    domain = forms.ModelChoiceField(
        Domain.objects.order_by("name"),
        required=False,
        empty_label="Global (the council votes)",
        help_text="A domain's owners adopt policies for their own domain without the council.",
    )

    def clean_parameters(self):
        raw = self.cleaned_data["parameters"].strip() or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise forms.ValidationError(f"Not valid JSON: {e.msg}.") from e
        if not isinstance(value, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {"min_members": 2}.')
        return value


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
