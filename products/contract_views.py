"""Contract pages: the product's Contract tab, the ODCS import form (preview, then apply) and
the diff between two contract versions. The work is in products.contracts."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from meshportal.permissions import EDIT, can

from . import contracts, tabs
from .views import _product_or_404

MAX_UPLOAD = 2 * 1024 * 1024


class ContractImportForm(forms.Form):
    file = forms.FileField(required=False, label="ODCS YAML file")
    document = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 14}), label="…or paste the document"
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload:
            if upload.size > MAX_UPLOAD:
                raise ValidationError("The file is larger than 2 MB.")
            data["document"] = upload.read().decode("utf-8", errors="replace")
        if not (data.get("document") or "").strip():
            raise ValidationError("Choose a file or paste an ODCS document.")
        return data


def _errors(e: ValidationError) -> list[str]:
    if hasattr(e, "error_dict"):
        return [f"{k}: {m}" if k != "__all__" else m for k, v in e.message_dict.items() for m in v]
    return e.messages


@require_http_methods(["GET", "POST"])
def contract_import(request):
    """Upload an ODCS document; the first submit previews the changes, the second applies."""
    form = ContractImportForm(request.POST or None, request.FILES or None)
    ctx: dict = {"form": form}
    status = 200
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["document"]
        apply = request.POST.get("apply") == "1"
        try:
            result = contracts.contract_import(text=text, user=request.user, dry_run=not apply)
        except ValidationError as e:
            ctx["errors"] = _errors(e)
        except PermissionDenied as e:  # e.g. a team.name that moves the product: as the API
            ctx["errors"], status = [str(e)], 403
        else:
            if apply:
                if result.changed:
                    messages.success(
                        request,
                        f"Applied the contract to {result.product.urn} "
                        f"(contract version {result.version.number}).",
                    )
                else:
                    messages.info(request, "The document matches the product: nothing changed.")
                return redirect(f"{result.product.get_absolute_url()}?tab=contract")
            ctx.update(result=result, document=text)
    return render(request, "products/contract_import.html", ctx, status=status)


def contract_diff(request, domain: str, product: str):
    from .api.views import diff_versions

    obj = _product_or_404(request, domain, product)
    try:
        a, b = diff_versions(obj, request.GET.get("from"), request.GET.get("to"))
    except Exception as e:  # noqa: BLE001 - DRF's ValidationError: show it as a message
        messages.error(
            request,
            " ".join(str(x) for x in getattr(e, "detail", {}).values()) or "Choose two versions.",
        )
        return redirect(f"{obj.get_absolute_url()}?tab=contract")
    changes = contracts.versions_diff(a, b)
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
    versions = list(product.contract_versions.select_related("created_by")[:50])
    return {
        "versions": versions,
        "contract_yaml": contracts.export_yaml(product),
        "can_import": can(request.user, EDIT, product),
    }


tabs.register_tab(
    tabs.Tab("contract", "Contract", "products/tabs/contract.html", _contract_context, order=80)
)
