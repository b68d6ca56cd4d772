from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse, reverse_lazy
from django.utils.text import slugify

from domains.models import Team
from meshportal.forms import SuggestInput
from products.models import AccessRequest, DataProduct, OutputPort, SchemaField
from products.selectors import data_sources_for


class ProductForm(forms.ModelForm):
    tags = forms.CharField(
        required=False,
        help_text="Comma-separated, e.g. orders, finance",
    )
    # Not a model field of the form: a change is a transfer (products.views._editor_page).
    owner_team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"),
        required=False,
        empty_label=None,
        help_text="Moving the product to another team takes an owner of both teams.",
    )

    class Meta:
        model = DataProduct
        fields = [
            "name",
            "slug",
            "summary",
            "description",
            "version",
            "classification",
            "freshness_slo_hours",
            "availability_slo",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 8})}
        labels = {
            "freshness_slo_hours": "Freshness SLO (hours)",
            "availability_slo": "Availability SLO (%)",
        }

    def __init__(self, *args, domain=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.domain = domain or getattr(self.instance, "domain", None)
        self.fields["slug"].required = False
        self.fields["slug"].help_text = "Part of the URL and URN; made from the name if empty."
        if self.instance.pk and "tags" not in self.initial:
            self.initial["tags"] = ", ".join(t.name for t in self.instance.tags.all())
        if self.instance.pk:
            self.initial.setdefault("owner_team", self.instance.owner_team_id)
        else:  # a new product belongs to its domain's team
            del self.fields["owner_team"]

    def clean_tags(self):
        from products.services import clean_tag_names

        try:
            return clean_tag_names(self.cleaned_data["tags"].split(","))
        except ValidationError as e:
            raise ValidationError(e.message_dict["tags"]) from None

    def clean(self):
        data = super().clean()
        slug = data.get("slug") or slugify(data.get("name", ""))
        data["slug"] = slug
        if (
            slug
            and self.domain is not None
            and DataProduct.objects.filter(domain=self.domain, slug=slug)
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            self.add_error("slug", f"{self.domain} already has a product “{slug}”.")
        return data


class PortForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, required=False, help_text="From the name if empty.")
    kind = forms.ChoiceField(choices=OutputPort.Kind.choices, initial=OutputPort.Kind.TABLE)
    location = forms.CharField(
        max_length=500, required=False, help_text="schema.table, a path or a URL."
    )
    format = forms.CharField(max_length=50, required=False)
    # The registered warehouses this product's team may read (DataSource.open_to): a port
    # with one and a table location gets quality checks. Typed by name with suggestions
    # (products.views.data_source_suggest); only its name and kind are ever shown here.
    data_source = forms.CharField(
        required=False,
        max_length=200,
        help_text="Where quality checks read the location: type part of its name and pick "
        "from the list; empty for no quality checks.",
        widget=SuggestInput(url=""),
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, team_id=None, sources=None, suggest_url="", team_name="", **kwargs):
        super().__init__(*args, **kwargs)
        self.team_id, self.team_name = team_id, team_name
        self.sources = sources  # read once for every port of the editor (ProductEditor)
        widget = self.fields["data_source"].widget
        widget.url = suggest_url
        widget.attrs["aria-describedby"] = f"{self['data_source'].id_for_label}-help"

    def clean_data_source(self):
        """The source named (its name, or its slug) among those open to the product's team:
        the same answer for one that does not exist and one kept for other teams."""
        typed = self.cleaned_data["data_source"].strip()
        if not typed:
            return None
        sources = self.sources if self.sources is not None else data_sources_for(self.team_id)
        found = [s for s in sources if s.slug == typed] or [
            s for s in sources if s.name.casefold() == typed.casefold()
        ]
        if len(found) == 1:
            return found[0]
        if found:
            slugs = ", ".join(s.slug for s in found)
            raise ValidationError(f"Several data sources are named “{typed}”: type one of {slugs}.")
        raise ValidationError(
            f"No data source “{typed}” is open to {self.team_name or 'this team'}: pick one "
            "from the list, or ask the platform team."
        )


class FieldForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(max_length=200)
    logical_type = forms.ChoiceField(choices=SchemaField.LogicalType.choices, label="Type")
    description = forms.CharField(max_length=1000, required=False)
    required = forms.BooleanField(required=False)
    unique = forms.BooleanField(required=False)
    primary_key = forms.BooleanField(required=False, label="Key")
    pii = forms.BooleanField(required=False, label="PII")


class _UniqueNames(forms.BaseFormSet):
    """Rows of one formset must have distinct names (ports per product, fields per port)."""

    def clean(self):
        seen = set()
        for form in self.forms:
            if not form.is_valid() or self._should_delete_form(form):
                continue
            key = form.cleaned_data.get("slug") or slugify(form.cleaned_data.get("name", ""))
            if form.prefix.count("fields"):
                key = form.cleaned_data.get("name")
            if key in seen:
                form.add_error("name", "Another row already uses this name.")
            seen.add(key)


PortFormSet = forms.formset_factory(PortForm, formset=_UniqueNames, extra=0, can_delete=True)
FieldFormSet = forms.formset_factory(FieldForm, formset=_UniqueNames, extra=0, can_delete=True)


class ProductEditor:
    """The self-serve form: the product, its ports (a formset) and each port's fields (a
    formset per port, prefix ports-<i>-fields). Valid only when every part is."""

    def __init__(self, data=None, *, domain, instance=None, initial=None, ports=None):
        self.product = ProductForm(
            data, instance=instance or DataProduct(domain=domain), domain=domain, initial=initial
        )
        ports = ports or []
        instance = self.product.instance
        team = instance.owner_team if instance.owner_team_id else domain.owner_team
        team_id = getattr(team, "pk", None)
        if instance.pk:
            suggest_url = reverse("products:data_source_suggest", args=[domain.slug, instance.slug])
        else:
            suggest_url = reverse("products:data_source_suggest_new", args=[domain.slug])
        # A post without the ports formset (a script editing only the product) leaves them be.
        self.with_ports = data is None or "ports-TOTAL_FORMS" in data
        if not self.with_ports:
            data = None
        self.ports = PortFormSet(
            data,
            prefix="ports",
            form_kwargs={
                "team_id": team_id,
                "team_name": str(team or ""),
                # read once for every port's check, and only when there is something to check
                "sources": list(data_sources_for(team_id)) if data is not None else [],
                "suggest_url": suggest_url,
            },
            initial=[{k: v for k, v in p.items() if k != "fields"} for p in ports],
        )
        self.port_rows = []
        for i, form in enumerate(self.ports.forms):
            fields_initial = ports[i]["fields"] if i < len(ports) and data is None else []
            self.port_rows.append(
                (form, FieldFormSet(data, prefix=f"ports-{i}-fields", initial=fields_initial))
            )
        # What the browser copies to add rows (static/js/product_form.js).
        self.empty_port = self.ports.empty_form
        self.empty_port_fields = FieldFormSet(prefix="ports-__prefix__-fields")
        self.empty_field = FieldFormSet(prefix="ports-__port__-fields").empty_form

    def _live(self):
        for port, fields in self.port_rows:
            if not self.ports._should_delete_form(port):
                yield port, fields

    def is_valid(self) -> bool:
        ok = self.product.is_valid()
        if not self.with_ports:
            return ok
        ok &= self.ports.is_valid()
        for _, fields in self._live():
            ok &= fields.is_valid()
        return bool(ok)

    def cleaned(self) -> dict:
        data = dict(self.product.cleaned_data)
        if not self.with_ports:
            return data
        ports = []
        for port, fields in self._live():
            p = {k: v for k, v in port.cleaned_data.items() if k != "DELETE"}
            p["fields"] = [
                {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
                for f in fields.forms
                if not fields._should_delete_form(f)
            ]
            ports.append(p)
        data["ports"] = ports
        return data

    def forms(self):
        yield self.product
        for port, fields in self.port_rows:
            yield port
            yield from fields.forms

    def apply_errors(self, error) -> None:
        """A service's ValidationError onto the form whose input name matches its key."""
        from meshportal.forms import apply_errors

        if not hasattr(error, "error_dict"):
            self.product.add_error(None, error)
            return
        names = {}
        for form in self.forms():
            for name in form.fields:
                names[form.add_prefix(name)] = (form, name)
        for key, errors in error.error_dict.items():
            if key in names:
                form, name = names[key]
                form.add_error(name, errors)
            elif key in self.product.fields:
                apply_errors(self.product, error.__class__({key: errors}))
            else:
                self.product.add_error(None, errors)

    @staticmethod
    def from_product(product, *, copy=False):
        """Initial data of the ports and fields of `product` (ids dropped when copying)."""
        ports = []
        for port in product.ports.all():
            p = {
                k: getattr(port, k)
                for k in (
                    "id",
                    "name",
                    "slug",
                    "kind",
                    "location",
                    "format",
                    "description",
                )
            }
            p["data_source"] = port.data_source.name if port.data_source_id else ""
            p["fields"] = [
                {
                    k: getattr(f, k)
                    for k in (
                        "id",
                        "name",
                        "logical_type",
                        "description",
                        "required",
                        "unique",
                        "primary_key",
                        "pii",
                    )
                }
                for f in port.fields.all()
            ]
            if copy:
                p.pop("id")
                for f in p["fields"]:
                    f.pop("id")
            ports.append(p)
        return ports


class AccessRequestForm(forms.ModelForm):
    duration_days = forms.IntegerField(
        label="Duration (days)",
        min_value=1,
        max_value=730,
        initial=90,
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
    replacement = forms.CharField(
        required=False,
        help_text="Type part of its domain or name and pick from the list (domain/product).",
        widget=SuggestInput(url=reverse_lazy("products:suggest"), list_id="product-options"),
    )

    def __init__(self, *args, product, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user  # the product itself is refused by services.product_deprecate

    def clean_replacement(self):
        from products.selectors import pickable_products

        raw = self.cleaned_data["replacement"].strip().strip("/")
        if not raw:
            return None
        domain, _, slug = raw.partition("/")
        found = (
            pickable_products(self.user)
            .filter(domain__slug=domain, slug=slug)
            .select_related("domain")
            .first()
        )
        if found is None:
            raise ValidationError(f"No published product {raw} that you may see.")
        return found
