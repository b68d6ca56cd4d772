"""The product row of every list, rendered in Python (products/templatetags/product_rows.py):
the same markup the template rendered, every value escaped, the basket button where offered."""

import re

import pytest
from django.template import engines
from django.template.loader import get_template
from django.test import RequestFactory

from governance.models import ProductQuality
from products import selectors
from products.models import DataProduct, Tag

# The row as a template (badges and trust badge included), before it was rendered in Python:
# the reference the row must match.
TEMPLATE_ROW = """{% load search_tags %}<li class="list-group-item product-row">
  <div class="d-flex justify-content-between flex-wrap gap-2">
    <div>
      <a class="fw-semibold" href="{{ p.get_absolute_url }}">{{ p.name }}</a>
      <span class="text-body-secondary small">in <a href="{{ p.domain.get_absolute_url }}">{{ p.domain.name }}</a> · {{ p.owner_team.name }}</span>
      <div class="small text-body-secondary snippet">{% if q %}{{ p|snippet:q }}{% else %}{{ p.summary }}{% endif %}</div>
      {% for t in p.tags.all %}<a class="badge text-bg-light border me-1" href="{{ t.get_absolute_url }}">{{ t.name }}</a>{% endfor %}
    </div>
    <div><span class="badge badge-status-{{ p.status }}">{{ p.get_status_display }}</span>
<span class="badge badge-class-{{ p.classification }}">{{ p.get_classification_display }}</span>
{% if p.quality_state.freshness_breached %}<span class="badge text-bg-danger badge-freshness-breached" title="The newest data is older than the freshness SLO of {{ p.freshness_slo_hours }} h">Freshness SLO breached</span>{% endif %}
{% with q=p.quality_state %}{% if q %}<details class="trust-score d-inline-block align-middle">
<summary class="badge text-bg-primary" title="Trust {{ q.trust_score }} of 100: show how it is computed">Trust {{ q.trust_score }}<span class="visually-hidden"> of 100</span></summary>
<div class="trust-breakdown small border rounded p-2 mt-1 bg-body">
<div>Trust {{ q.trust_score }}/100, the weighted mean of:</div>
<ul class="mb-1 ps-3">{% for k, c in q.components.items %}<li>{{ k|capfirst }}: {% widthratio c.value 1 100 %}% × weight {{ c.weight }}</li>{% empty %}<li>no results yet</li>{% endfor %}</ul>
<a href="{% url 'governance:trust_help' %}">How trust is computed</a></div>
</details>{% endif %}{% endwith %}
      {% if show_basket and p.owner_team_id not in own_team_ids %}{% if p.status == "published" or p.status == "deprecated" %}<div class="mt-1 text-end">{% if p.pk in basket_ids %}<a class="btn btn-sm btn-outline-success" href="{% url 'products:basket' %}">In basket</a>{% else %}<form method="post" action="{% url 'products:basket_add' %}" class="d-inline">{% csrf_token %}
  <input type="hidden" name="product" value="{{ p.pk }}"><input type="hidden" name="next" value="{{ basket_next|default:request.get_full_path }}">
  <button class="btn btn-sm btn-outline-primary" type="submit">Add to basket<span class="visually-hidden">: {{ p.name }}</span></button></form>{% endif %}</div>{% endif %}{% endif %}</div>
  </div>
</li>"""

HOSTILE = "<script>alert('x')</script> & \"quotes\""


def _norm(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).strip()


def _products(mesh):
    product = mesh.products[("orders", "published")]
    DataProduct.objects.filter(pk=product.pk).update(name=f"Orders {HOSTILE}", summary=HOSTILE)
    tag, _ = Tag.objects.get_or_create(slug="pii", defaults={"name": f"pii {HOSTILE}"})
    product.tags.add(tag)
    ProductQuality.objects.update_or_create(
        product=product,
        defaults={
            "trust_score": 73,
            "freshness_breached": True,
            "components": {"checks": {"value": 0.666, "weight": 2}, "fresh<b>": {"value": "x"}},
        },
    )
    qs = selectors.product_list(user=mesh.owner).prefetch_related("tags").order_by("name")
    return list(qs)


def test_rows_match_the_template_they_replace_and_escape_every_value(mesh):
    request = RequestFactory().get("/products/?q=orders")
    request.user = mesh.owner
    new = get_template("includes/product_row.html")
    old = engines["django"].from_string(TEMPLATE_ROW)
    products = _products(mesh)
    assert len(products) > 2
    for context in (
        {},
        {"q": "orders"},
        {"show_basket": True, "own_team_ids": set(), "basket_ids": {products[0].pk}},
        {"show_basket": True, "own_team_ids": {mesh.orders_team.pk}, "basket_ids": set()},
        {"show_basket": True, "own_team_ids": set(), "basket_ids": set(), "csrf_token": "tok<"},
        {"show_basket": True, "own_team_ids": set(), "basket_next": "/back/?a=1&b=<2>"},
    ):
        for p in products:
            want = old.render({"p": p, "request": request, **context})
            got = new.render({"p": p, "request": request, **context})
            assert _norm(got) == _norm(want)
            assert "<script>" not in got
    row = _norm(new.render({"p": products[0], "request": request}))
    assert "Trust 73" in "".join(_norm(new.render({"p": p, "request": request})) for p in products)
    assert row.startswith('<li class="list-group-item product-row">')


def test_list_rows_render_as_the_instances_do(mesh):
    """The list pages read their rows as plain values (selectors.list_rows): each renders as
    the model instance it stands for, badges, tags, trust breakdown and basket button alike."""
    request = RequestFactory().get("/products/?q=orders")
    request.user = mesh.owner
    products = _products(mesh)
    no_quality = next(p for p in products if not hasattr(p, "quality_state"))
    DataProduct.objects.filter(pk=no_quality.pk).update(summary="", description="d" * 300)
    products = list(selectors.product_list(user=mesh.owner).order_by("name"))
    rows = selectors.list_rows(selectors.product_list(user=mesh.owner).order_by("name"))
    assert [r.pk for r in rows] == [p.pk for p in products]
    row = get_template("includes/product_row.html")
    for context in (
        {},
        {"q": "orders"},
        {"show_basket": True, "own_team_ids": set(), "basket_ids": {products[0].pk}},
        {"show_basket": True, "own_team_ids": {mesh.orders_team.pk}, "csrf_token": "tok<"},
    ):
        for p, r in zip(products, rows, strict=True):
            want = row.render({"p": p, "request": request, **context})
            assert row.render({"p": r, "request": request, **context}) == want
    by_pk = {r.pk: r for r in rows}
    assert by_pk[no_quality.pk].quality_state is None
    assert by_pk[no_quality.pk].description == "d" * 200  # as far as a snippet reads it
    hostile = next(r for r in rows if r.summary == HOSTILE)
    assert [t.slug for t in hostile.tags] == sorted(t.slug for t in hostile.tags)
    assert hostile.quality_state.trust_score == 73


def test_list_rows_keep_a_sliced_querysets_order_and_bounds(mesh):
    qs = selectors.product_list(user=mesh.owner).order_by("-name")
    assert [r.pk for r in selectors.list_rows(qs[1:3])] == [p.pk for p in qs[1:3]]
    assert selectors.list_rows(qs.none()) == []


@pytest.mark.postgres
def test_a_page_of_rows_reads_its_tags_in_the_same_statement(mesh, django_assert_num_queries):
    """On PostgreSQL the rows of a list page and of the API list carry their tags as a column of
    each row: one statement, the tags by slug whatever their names, none for an untagged one."""
    product = mesh.products[("orders", "published")]
    product.tags.add(
        Tag.objects.create(slug="b-second", name="A second"),
        Tag.objects.create(slug="a-first", name="Z first"),
    )
    untagged = mesh.products[("users", "published")]
    untagged.tags.clear()
    qs = selectors.product_list(user=mesh.owner).order_by("name")
    with django_assert_num_queries(1):
        rows = {r.pk: r for r in selectors.list_rows(qs)}
    assert [(t.slug, t.name) for t in rows[product.pk].tags] == [
        ("a-first", "Z first"),
        ("b-second", "A second"),
    ]
    assert rows[untagged.pk].tags == []
    with django_assert_num_queries(1):
        api = selectors.product_rows([untagged.pk, product.pk], columns=("slug",))
    assert [r["tags"] for r in api] == [[], ["Z first", "A second"]]


def test_a_list_of_rows_is_each_row_as_the_include_wrote_it(mesh):
    request = RequestFactory().get("/teams/x/")
    request.user = mesh.owner
    products = _products(mesh)
    context = {"request": request, "show_basket": True, "own_team_ids": set(), "q": "orders"}
    listed = engines["django"].from_string("{% load product_rows %}{% product_rows products %}")
    looped = engines["django"].from_string(
        '{% for p in products %}{% include "includes/product_row.html" %}{% endfor %}'
    )
    got = listed.render({"products": products, **context})
    assert got == looped.render({"products": products, **context})
    assert got.count('<li class="list-group-item product-row">') == len(products)


def test_a_list_page_renders_rows_with_their_links(client, mesh):
    client.force_login(mesh.owner)
    product = mesh.products[("orders", "published")]
    html = client.get(f"/teams/{mesh.orders_team.slug}/").text
    assert f'href="{product.get_absolute_url()}"' in html
    assert f'href="/domains/{product.domain.slug}/"' in html


# The search page's facet lists as a template, before they were rendered in Python.
TEMPLATE_FACETS = """{% for facet in facets %}{% if facet.values %}
  <fieldset class="mb-3 facet" data-facet="{{ facet.key }}">
    <legend class="h6 small text-uppercase text-body-secondary">{{ facet.label }}</legend>
    {% for v in facet.values|slice:":12" %}
    <div class="form-check">
      <input class="form-check-input facet-input" type="checkbox" name="{{ facet.key }}" value="{{ v.value }}"
             id="f-{{ facet.key }}-{{ v.value }}"{% if v.checked %} checked{% endif %}>
      <label class="form-check-label d-flex justify-content-between" for="f-{{ facet.key }}-{{ v.value }}">
        <span>{{ v.label }}</span> <span class="badge rounded-pill text-bg-light border facet-count"{% if approximate %} title="About {{ v.count }}: estimated from a sample"{% endif %}>{% if approximate %}~{% endif %}{{ v.count }}</span></label>
    </div>
    {% endfor %}
  </fieldset>
  {% endif %}{% endfor %}"""


def test_facet_lists_match_the_template_they_replace_and_escape_every_value(mesh):
    from products.discovery import facets

    result = facets.search(user=mesh.owner, data={"status": ["published"]})
    hostile = {
        "key": "tag",
        "label": "Tag",
        "values": [
            {"value": f"v{i}", "label": HOSTILE, "count": i, "checked": i == 3} for i in range(14)
        ],
        "active": True,
    }
    empty = {"key": "quality", "label": "Quality", "values": [], "active": False}
    old = engines["django"].from_string(TEMPLATE_FACETS)
    new = engines["django"].from_string(
        "{% load search_tags %}{% facet_lists facets approximate %}"
    )
    for approximate in (False, True):
        context = {"facets": [*result.facets, hostile, empty], "approximate": approximate}
        got = new.render(context)
        assert _norm(got) == _norm(old.render(context))
        assert "<script>" not in got
        assert got.count('data-facet="tag"') == 1 and 'data-facet="quality"' not in got
        assert got.count('name="tag"') == 12  # the twelve most frequent values
