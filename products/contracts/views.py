"""Contract pages: the product's Contract tab, the ODCS and ODPS import forms (preview, then
apply) and the diff between two contract versions. The work is in products.contracts.services
and products.contracts.odps, which the API and the import commands call too."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from meshportal.permissions import EDIT, can
from products import connection, tabs
from products.contracts import odps
from products.contracts import services as contracts
from products.views import _product_or_404


class ContractImportForm(forms.Form):
    file = forms.FileField(required=False, label="ODCS YAML file")
    document = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 14}), label="…or paste the document"
    )
    domain = forms.SlugField(
        required=False,
        label="Domain (when the document names none)",
        help_text="The slug of the portal domain, e.g. orders. ODCS does not require `domain`.",
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload:
            # Size first (the upload handler knows it), then strict UTF-8: one rule with the API.
            if upload.size > contracts.max_bytes():
                raise ValidationError({"file": contracts.too_large_message(upload.size)})
            try:
                data["document"] = contracts.decode(upload.read())
            except ValidationError as e:
                raise ValidationError({"file": e.message_dict["document"]}) from None
        if not (data.get("document") or "").strip():
            raise ValidationError("Choose a file or paste an ODCS document.")
        return data


def _errors(e: ValidationError) -> list[str]:
    if hasattr(e, "error_dict"):
        return [f"{k}: {m}" if k != "__all__" else m for k, v in e.message_dict.items() for m in v]
    return e.messages


def _import_page(request, form, template: str, run, applied: str):
    """Preview, then apply: the first submit runs `run(text, cleaned, dry_run=True)` and shows
    what would change, the second applies and goes back to the product's Contract tab."""
    ctx: dict = {"form": form}
    status = 200
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["document"]
        apply = request.POST.get("apply") == "1"
        try:
            result = run(text, form.cleaned_data, dry_run=not apply)
        except ValidationError as e:
            ctx["errors"] = _errors(e)
        except PermissionDenied as e:  # e.g. a team.name that moves the product: as the API
            ctx["errors"], status = [str(e)], 403
        else:
            if apply:
                if result.changed:
                    messages.success(request, applied.format(result=result))
                else:
                    messages.info(request, "The document matches the product: nothing changed.")
                return redirect(f"{result.product.get_absolute_url()}?tab=contract")
            ctx.update(result=result, document=text)
    if request.method == "POST" and status == 200 and (form.errors or ctx.get("errors")):
        status = 400  # the document was refused: say so to scripts too
    return render(request, template, ctx, status=status)


@require_http_methods(["GET", "POST"])
def contract_import(request):
    """Upload an ODCS document; the first submit previews the changes, the second applies."""

    def run(text, cleaned, *, dry_run):
        return contracts.contract_import(
            text=text, user=request.user, dry_run=dry_run, domain_slug=cleaned.get("domain") or None
        )

    return _import_page(
        request,
        ContractImportForm(request.POST or None, request.FILES or None),
        "products/contract_import.html",
        run,
        "Applied the contract to {result.product.urn} (contract version {result.version.number}).",
    )


class OdpsImportForm(ContractImportForm):
    """The product itself as an ODPS v1.1.0 document: same size and encoding rules."""

    file = forms.FileField(required=False, label="ODPS YAML file")
    domain = forms.SlugField(
        required=False,
        label="Domain",
        help_text="Only when the document's id is not a portal URN (urn:mesh:<domain>:<product>).",
    )
    product = forms.SlugField(
        required=False, label="Product", help_text="Its slug, with the domain above."
    )
    field_order = ["file", "document", "domain", "product"]

    def clean(self):
        data = super().clean()
        if bool(data.get("domain")) != bool(data.get("product")):
            raise ValidationError("Give both the domain and the product, or neither.")
        return data


@require_http_methods(["GET", "POST"])
def odps_import(request):
    """Upload an ODPS document: the first submit previews the changes, the second applies.
    The same service and rules as `PUT /api/v1/products/…/odps` and `import_odps`."""

    def run(text, cleaned, *, dry_run):
        with contracts.enforcing():
            return odps.odps_import(
                text=text,
                user=request.user,
                domain_slug=cleaned.get("domain") or None,
                product_slug=cleaned.get("product") or None,
                dry_run=dry_run,
            )

    initial = {k: request.GET.get(k, "") for k in ("domain", "product")}
    return _import_page(
        request,
        OdpsImportForm(request.POST or None, request.FILES or None, initial=initial),
        "products/odps_import.html",
        run,
        "Applied the ODPS document to {result.product.urn}.",
    )


def contract_diff(request, domain: str, product: str):
    from products.api.views import diff_versions

    obj = _product_or_404(request, domain, product)
    try:
        a, b = diff_versions(obj, request.GET.get("from"), request.GET.get("to"))
    except Exception as e:  # noqa: BLE001 - DRF's ValidationError: show it as a message
        messages.error(
            request,
            " ".join(str(x) for x in getattr(e, "detail", {}).values()) or "Choose two versions.",
        )
        return redirect(f"{obj.get_absolute_url()}?tab=contract")
    changes = connection.hide_in_changes(request.user, obj, contracts.versions_diff(a, b))
    return render(
        request,
        "products/contract_diff.html",
        {
            "product": obj,
            "a": a,
            "b": b,
            "changes": changes,
            "breaking": any(c.breaking for c in changes),
        },
    )


def _contract_context(request, product):
    versions = product.contract_versions.select_related("created_by")[:50]
    return {
        "versions": connection.hide_in_versions(request.user, product, versions),
        "contract_yaml": connection.contract_yaml_for(request.user, product),
        "can_import": can(request.user, EDIT, product),
    }


tabs.register_tab(
    tabs.Tab(
        "contract",
        "Contract",
        "products/tabs/contract.html",
        _contract_context,
        order=80,
        fields=True,
    )
)
