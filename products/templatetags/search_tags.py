from django import template

from products.discovery import search

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
