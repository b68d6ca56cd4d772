from django import forms

from domains.models import Team

from .models import AccessRequest, DataProduct


class ProductForm(forms.ModelForm):
    tags = forms.CharField(
        required=False, help_text="Comma-separated, e.g. orders, finance",
    )

    class Meta:
        model = DataProduct
        fields = [
            "name", "slug", "summary", "description", "version", "classification",
            "freshness_slo_hours", "availability_slo",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(t.name for t in self.instance.tags.all())

    def clean_tags(self):
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class AccessRequestForm(forms.ModelForm):
    duration_days = forms.IntegerField(
        label="Duration (days)", min_value=1, max_value=730, initial=90,
        help_text="Up to two years; you can ask again later.",
    )

    class Meta:
        model = AccessRequest
        fields = ["purpose", "team", "duration_days"]
        widgets = {"purpose": forms.Textarea(attrs={"rows": 3})}
        labels = {"team": "For team (optional)"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.filter(memberships__user=user)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class DeprecateForm(forms.Form):
    sunset_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    replacement = forms.ModelChoiceField(queryset=DataProduct.objects.none(), required=False)

    def __init__(self, *args, product, user, **kwargs):
        super().__init__(*args, **kwargs)
        from meshportal.permissions import visible

        self.fields["replacement"].queryset = visible(
            user, DataProduct.objects.exclude(pk=product.pk).exclude(status="draft")
        ).select_related("domain")
