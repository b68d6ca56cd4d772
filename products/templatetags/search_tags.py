from django import template
from django.utils.safestring import SafeString

from products.discovery import search
from products.templatetags.product_rows import _html, _html_join

register = template.Library()


@register.filter
def snippet(product, q=""):
    """The product's summary, or its matching passage, with the searched words marked."""
    return search.snippet(product, q or "")


@register.simple_tag(takes_context=True)
def query_with(context, **changes):
    """The current query string with some parameters replaced (None removes); page resets."""
    params = context["request"].GET.copy()
    params.pop("page", None)
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    return params.urlencode()


FACET = (
    '<fieldset class="mb-3 facet" data-facet="{}">\n'
    '    <legend class="h6 small text-uppercase text-body-secondary">{}</legend>\n{}'
    "  </fieldset>\n"
)
FACET_VALUE = (
    '    <div class="form-check">\n'
    '      <input class="form-check-input facet-input" type="checkbox" name="{}" value="{}"'
    ' id="f-{}-{}"{}>\n'
    '      <label class="form-check-label d-flex justify-content-between" for="f-{}-{}">'
    '<span>{}</span> <span class="badge rounded-pill text-bg-light border facet-count"{}>'
    "{}{}</span></label>\n"
    "    </div>\n"
)
SHOWN_VALUES = 12  # per facet, the most frequent first


@register.simple_tag
def facet_lists(facets, approximate=False) -> SafeString:
    """The search page's facets as checkboxes with their counts (an estimate marked "~" with a
    tooltip), rendered in Python: through the template's loops they took 8 ms a page."""

    def value(key, v):
        title = f"About {v['count']}: estimated from a sample" if approximate else None
        return (
            key,
            v["value"],
            key,
            v["value"],
            _html(" checked") if v["checked"] else "",
            key,
            v["value"],
            v["label"],
            _html(' title="{}"', title) if title else "",
            "~" if approximate else "",
            v["count"],
        )

    return _html_join(
        "",
        FACET,
        (
            (
                f["key"],
                f["label"],
                _html_join(
                    "", FACET_VALUE, (value(f["key"], v) for v in f["values"][:SHOWN_VALUES])
                ),
            )
            for f in facets
            if f["values"]
        ),
    )
