"""The product row of every list (home, domain, team, tag and search pages), rendered in Python.

A list page shows 25-50 rows; through the template engine each cost about 0.5 ms of CPU (variable
lookups, nested includes, a URL reversed per link), most of a list page's time. This renders
the same markup as the template did, escaping every value. The basket button (also on the
product page) is rendered here too: through its template it was a third of a row's time.
"""

import functools
import html

from django import template
from django.utils.safestring import SafeData, SafeString, mark_safe

from meshportal.links import cached_reverse, reversing
from products.discovery import search
from products.models import DataProduct
from products.selectors import ListRow

register = template.Library()

ROW = (
    '<li class="list-group-item product-row">\n'
    '  <div class="d-flex justify-content-between flex-wrap gap-2">\n'
    "    <div>\n"
    '      <a class="fw-semibold" href="{}">{}</a>\n'
    '      <span class="text-body-secondary small">in <a href="{}">{}</a> · {}</span>\n'
    '      <div class="small text-body-secondary snippet">{}</div>\n'
    "      {}\n"
    "    </div>\n"
    "    <div>{}{}</div>\n"
    "  </div>\n"
    "</li>"
)
TRUST = (
    '<details class="trust-score d-inline-block align-middle">\n'
    '<summary class="badge text-bg-primary" title="Trust {} of 100: show how it is computed">'
    'Trust {}<span class="visually-hidden"> of 100</span></summary>\n'
    '<div class="trust-breakdown small border rounded p-2 mt-1 bg-body">\n'
    "<div>Trust {}/100, the weighted mean of:</div>\n"
    '<ul class="mb-1 ps-3">{}</ul>\n'
    '<a href="{}">How trust is computed</a></div>\n'
    "</details>"
)


def _escape(value) -> str:
    """conditional_escape without its lazy-string wrapper (a third of a row's time): markup we
    built stays, anything else is escaped as Django escapes it (html.escape); a whole number's
    digits need no escaping (ids, scores)."""
    if type(value) is int:
        return str(value)
    return str(value) if isinstance(value, SafeData) else _escaped(str(value))


# Most of a list page's ~1,700 escaped values repeat (the trust breakdown's names and weights,
# facet keys, statuses, links): each escaped once per process. Bounded: names and summaries
# that do not repeat only cycle through it.
_escaped = functools.lru_cache(maxsize=4096)(html.escape)


# SafeString(...) rather than mark_safe(), whose lazy-string wrapper was a tenth of a row's time:
# every value in these strings went through _escape.
def _html(template_: str, *args) -> SafeString:
    return SafeString(template_.format(*map(_escape, args)))  # nosec B703  # each value escaped


def _html_join(sep: str, template_: str, rows) -> SafeString:
    return SafeString(sep.join(_html(template_, *row) for row in rows))  # nosec B703  # rows are _html


def _percent(value) -> str:
    """`{% widthratio value 1 100 %}`: a share as a whole percentage ("" when not a number)."""
    try:
        return str(round(float(value) * 100))
    except (ValueError, TypeError, OverflowError):
        return ""


def _trust_badge(quality) -> SafeString:
    """The trust score with its breakdown: a disclosure that opens on click or Enter, without
    JS. Reads the quality state the list already joined (products.selectors.for_lists)."""
    if not quality:
        return mark_safe("")  # nosec B703, B308  # an empty string
    components = quality.components if isinstance(quality.components, dict) else {}
    items = _html_join(
        "",
        "<li>{}: {}% × weight {}</li>",
        (
            (
                key[:1].upper() + key[1:],  # capfirst, without its lazy-string wrapper
                _percent(c.get("value") if isinstance(c, dict) else None),
                (c.get("weight", "") if isinstance(c, dict) else ""),
            )
            for key, c in components.items()
        ),
    ) or mark_safe("<li>no results yet</li>")  # nosec B703, B308  # a constant
    score = quality.trust_score
    return _html(TRUST, score, score, score, items, cached_reverse("governance:trust_help"))


BASKET_FORM = (
    '<form method="post" action="{}" class="d-inline">{}\n'
    '  <input type="hidden" name="product" value="{}">'
    '<input type="hidden" name="next" value="{}">\n'
    '  <button class="btn btn-sm btn-outline-primary" type="submit">Add to basket'
    '<span class="visually-hidden">: {}</span></button></form>'
)


@register.simple_tag(takes_context=True)
def basket_button(context, p) -> SafeString:
    """The "In basket" link when it is, else the form that adds it (with the CSRF token, as
    {% csrf_token %} writes it), returning to `basket_next` or this page."""
    if p.pk in (context.get("basket_ids") or ()):
        return _html(
            '<a class="btn btn-sm btn-outline-success" href="{}">In basket</a>',
            cached_reverse("products:basket"),
        )
    token = context.get("csrf_token")
    csrf = (
        _html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)
        if token and token != "NOTPROVIDED"  # noqa: S105  # nosec B105  # Django's "no token" marker
        else ""
    )
    back = context.get("basket_next") or context["request"].get_full_path()
    return _html(BASKET_FORM, cached_reverse("products:basket_add"), csrf, p.pk, back, p.name)


_STATUS = dict(DataProduct.Status.choices)
_CLASSIFICATION = dict(DataProduct.Classification.choices)


def _tags(p) -> list:
    """p.tags.all(), from the list's prefetch when it has one without building the related
    manager (which, per row, cost more than the tags' markup); a ListRow has them already."""
    if isinstance(p, ListRow):
        return p.tags
    cached = getattr(p, "_prefetched_objects_cache", {}).get("tags")
    return list(cached) if cached is not None else list(p.tags.all())


@register.simple_tag(name="product_badges")
def _badges(p) -> SafeString:
    """A product's badges: status, classification, freshness and trust (with its breakdown), on
    its rows, its page and the home page's "My products"."""
    quality = getattr(p, "quality_state", None)
    freshness = (
        _html(
            '<span class="badge text-bg-danger badge-freshness-breached" title="The newest data '
            'is older than the freshness SLO of {} h">Freshness SLO breached</span>',
            p.freshness_slo_hours,
        )
        if quality and quality.freshness_breached
        else ""
    )
    return _html(
        '<span class="badge badge-status-{}">{}</span>\n'
        '<span class="badge badge-class-{}">{}</span>\n{}{}',
        p.status,
        _STATUS.get(p.status, p.status),  # get_status_display(), without its dict per call
        p.classification,
        _CLASSIFICATION.get(p.classification, p.classification),
        freshness,
        _trust_badge(quality),
    )


@register.simple_tag(takes_context=True)
def product_row(context, p) -> SafeString:
    """One product in a list: name, domain, team, summary (or the matched passage), tags,
    badges and, where the page offers it, the basket button."""
    q = context.get("q")
    text = search.snippet(p, q) if q else p.summary
    tags = _html_join(
        "",
        '<a class="badge text-bg-light border me-1" href="{}">{}</a>',
        ((t.get_absolute_url(), t.name) for t in _tags(p)),
    )
    basket = ""
    own = context.get("own_team_ids")
    if (
        context.get("show_basket")
        and own is not None
        and p.owner_team_id not in own
        and p.status in ("published", "deprecated")
    ):
        basket = _html('<div class="mt-1 text-end">{}</div>', basket_button(context, p))
    return _html(
        ROW,
        p.get_absolute_url(),
        p.name,
        p.domain.get_absolute_url(),
        p.domain.name,
        p.owner_team.name,
        text,
        tags,
        _badges(p),
        basket,
    )


@register.simple_tag(takes_context=True)
def product_rows(context, products) -> SafeString:
    """product_row for each of `products`, as `{% for p in products %}` with the row's include
    wrote them (the include and the loop cost about a fifth of a 50-row list's rows)."""
    with reversing():  # ~6 links a row
        return SafeString("".join(f"{product_row(context, p)}\n" for p in products))  # nosec B703
