"""What each MCP tool answers, as plain data, for one user.

Every read goes through the products and governance selectors (so `visible()` and `can()`
decide what the user sees), every change through their services; connection details through
`products.connection`. Nothing here is specific to the MCP protocol: `agents.server` wraps these
functions as tools (authentication, the audit door, errors as tool errors).

A product the user may not see answers exactly like one that does not exist (`NotFound`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import QueryDict

from domains.models import Membership, Team
from governance.models import Policy, ProductQuality
from governance.policies import selectors as policy_selectors
from governance.policies import services as policy_services
from governance.quality import selectors as quality_selectors
from meshportal.pagination import StablePaginator
from meshportal.permissions import REQUEST_ACCESS, can, visible
from products import connection, selectors, services, urns
from products.discovery import facets
from products.lineage import graph
from products.lineage import services as lineage_services
from products.models import AccessRequest, DataProduct

PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
MAX_TEXT = 4000  # characters of a product's documentation in one answer
MAX_FIELDS = 60  # schema fields per port in one answer


class NotFound(Exception):
    """The thing asked for does not exist, or the user may not see it (one answer for both)."""


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + " …(truncated)"


def _page(items, *, page: int, page_size: int) -> tuple[list, dict]:
    """One page of a queryset or list, and what a caller needs to ask for the next one."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    paginator = StablePaginator(items, page_size)
    number = max(1, page)
    rows = list(paginator.page(number).object_list) if number <= paginator.num_pages else []
    return rows, {
        "total": paginator.count,
        "page": number,
        "page_size": page_size,
        "next_page": number + 1 if number < paginator.num_pages else None,
    }


def _in_state(qs: QuerySet, status: str, states: list[str]) -> QuerySet:
    """qs narrowed to one status (all when empty); an unknown one is refused with the list."""
    if not status:
        return qs
    if status not in states:
        raise ValidationError({"status": f"One of: {', '.join(states)}."})
    return qs.filter(status=status)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def product_for(user, ref: str) -> DataProduct:
    """The product `ref` names (`urn:mesh:<domain>:<product>`, or `<domain>/<product>`), with its
    ports and fields, if the user may see it."""
    parts = urns.parse(ref)
    product = selectors.product_get(user=user, domain=parts[0], product=parts[1]) if parts else None
    if product is None:
        raise NotFound(f"No data product {ref}, or you may not see it.")
    return product


def _trust(products: list[DataProduct]) -> dict[int, ProductQuality]:
    return {
        q.product_id: q for q in ProductQuality.objects.filter(product__in=[p.pk for p in products])
    }


def _row(p: DataProduct, quality: ProductQuality | None) -> dict[str, Any]:
    return {
        "urn": p.urn,
        "name": p.name,
        "summary": p.summary,
        "domain": p.domain.slug,
        "owner_team": p.owner_team.slug,
        "status": p.status,
        "classification": p.classification,
        "tags": [t.name for t in p.tags.all()],
        "trust_score": quality.trust_score if quality else None,
        "quality": quality.state if quality else "unchecked",
    }


# -- finding products ----------------------------------------------------------------------------

FILTERS = ("domain", "owner_team", "status", "classification", "tag", "port_kind", "quality")


def search_products(
    user, *, query: str = "", page: int = 1, page_size: int = PAGE_SIZE, sort: str = "", **filters
) -> dict[str, Any]:
    data = QueryDict(mutable=True)
    data["q"] = query
    data["sort"] = sort or "relevance"
    for name in FILTERS:
        values = filters.get(name) or []
        data.setlist(name, [values] if isinstance(values, str) else list(values))
    if sort and sort not in facets.sort_choices():
        raise ValidationError({"sort": f"One of: {', '.join(facets.sort_choices())}."})
    result = facets.search(user=user, data=data)
    if result.filterset.errors:  # the pages ignore a bad value; a caller here wants to know
        raise ValidationError({k: [str(m) for m in v] for k, v in result.filterset.errors.items()})
    rows, meta = _page(result.queryset, page=page, page_size=page_size)
    quality = _trust(rows)
    return {
        "query": result.q,
        **meta,
        "results": [_row(p, quality.get(p.pk)) for p in rows],
        "facets": {
            f["key"]: {str(v["value"]): v["count"] for v in f["values"][:10]} for f in result.facets
        },
        # past settings.MESH_EXACT_COUNTS matches the facet counts are estimates from a sample
        "facets_approximate": result.approximate,
    }


def _quality(user, product: DataProduct, state: ProductQuality | None) -> dict[str, Any]:
    checks = quality_selectors.product_checks(product=product)
    latest = connection.hide_in_runs(
        user,
        product,
        [c.recent[0] if c.recent else None for c in checks],  # type: ignore[attr-defined]
    )
    return {
        "trust": {
            "score": state.trust_score if state else None,
            "breakdown": state.components if state else {},
        },
        "freshness": {
            "slo_hours": product.freshness_slo_hours,
            "newest_data_at": _iso(state.newest_data_at) if state else None,
            "breached": state.freshness_breached if state else False,
        },
        "quality_checks": {
            "state": state.state if state else "unchecked",
            "checks": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "port": c.port.slug,
                    "enabled": c.enabled,
                    "last_status": c.last_status or "never run",
                    "latest_run": None
                    if run is None
                    else {
                        "status": run.status,
                        "observed": run.observed,
                        "threshold": run.threshold,
                        "message": _clip(run.message, 500),
                        "finished_at": _iso(run.finished_at),
                        "sample": run.sample[:5],
                    },
                }
                for c, run in zip(checks, latest, strict=True)
            ],
        },
    }


def get_product(user, *, urn: str) -> dict[str, Any]:
    product = product_for(user, urn)
    sees = connection.sees_connection(user, product)
    state = quality_selectors.product_state(product=product)
    owners = list(
        Membership.objects.filter(team_id=product.owner_team_id, role=Membership.Role.OWNER)
        .order_by("user__username")
        .values_list("user__username", flat=True)
    )
    ports = []
    for port in product.ports.all():
        fields = list(port.fields.all())
        ports.append(
            {
                "slug": port.slug,
                "name": port.name,
                "kind": port.kind,
                "format": port.format,
                "description": _clip(port.description, 1000),
                **(
                    {
                        "location": port.location,
                        "data_source": port.data_source.name if port.data_source else None,
                    }
                    if sees
                    else {}
                ),
                "fields": [
                    {
                        "name": f.name,
                        "type": f.logical_type,
                        "description": _clip(f.description, 300),
                        "required": f.required,
                        "primary_key": f.primary_key,
                        "pii": f.pii,
                        "glossary_term": f.glossary_term.name if f.glossary_term else None,
                    }
                    for f in fields[:MAX_FIELDS]
                ],
                "fields_total": len(fields),
            }
        )
    return {
        **_row(product, state),
        "version": product.version,
        "description": _clip(product.description),
        "owner_team": {"slug": product.owner_team.slug, "name": product.owner_team.name},
        "owners": owners,
        "published_at": _iso(product.published_at),
        "sunset_date": _iso(product.sunset_date),
        "url": product.get_absolute_url(),
        "ports": ports,
        **_quality(user, product, state),
        "your_access": {
            "connection_details": sees,
            "may_request_access": can(user, REQUEST_ACCESS, product),
            "watching": lineage_services.is_watching(user, product=product),
        },
        **(
            {}
            if sees
            else {"connection_details": "Hidden: ask for access (request_access) to see them."}
        ),
    }


def get_contract(user, *, urn: str) -> dict[str, Any]:
    product = product_for(user, urn)
    return {
        "urn": product.urn,
        "format": "ODCS v3 (YAML)",
        "connection_details_included": connection.sees_connection(user, product),
        "contract": connection.contract_yaml_for(user, product),
    }


def _urn_of(key: str) -> str:
    """A graph's `<domain>/<product>` label as a URN."""
    parts = urns.parse(key)
    return urns.format_urn(*parts) if parts else key


def lineage(
    user, *, urn: str, depth: int = 2, impact_limit: int = 25, observed: bool = False
) -> dict[str, Any]:
    product = product_for(user, urn)
    g = graph.product_graph(user=user, product=product, depth=depth, observed=observed)
    by_id = {n["id"]: n for n in g["nodes"]}

    def node(n: dict) -> dict:
        return {
            "urn": _urn_of(n["key"]),
            "name": n["label"],
            "status": n["status"],
            "team": n["team"],
            "hops": abs(n["depth"]),
        }

    effect = graph.impact(user=user, product=product, observed=observed).as_json()
    affected = effect["products"]
    return {
        "urn": product.urn,
        "depth": g["depth"],
        "upstream": [node(n) for n in g["nodes"] if n["depth"] < 0],
        "downstream": [node(n) for n in g["nodes"] if n["depth"] > 0],
        "edges": [
            {
                "from": node(by_id[e["source"]])["urn"],
                "to": node(by_id[e["target"]])["urn"],
                "approved": e["approved"],
                "observed": bool(e.get("observed")),
            }
            for e in g["edges"]
        ],
        "impact": {
            "total": len(affected),
            "products": [
                {
                    "urn": _urn_of(i["product"]),
                    "name": i["name"],
                    "team": i["team"],
                    "owners": i["owners"],
                    "hops": i["depth"],
                    "observed": i["observed"],
                }
                for i in affected[: max(1, min(impact_limit, MAX_PAGE_SIZE))]
            ],
            "teams": effect["teams"],
        },
    }


# -- governance ----------------------------------------------------------------------------------


def list_policies(
    user, *, status: str = "active", page: int = 1, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    qs = _in_state(visible(user, policy_selectors.policy_list()), status, Policy.Status.values)
    rows, meta = _page(qs, page=page, page_size=page_size)
    return {
        **meta,
        "results": [
            {
                "key": p.key,
                "title": p.title,
                "status": p.status,
                "severity": p.severity,
                "scope": p.domain.slug if p.domain else "global",
                "rule_type": p.rule_type,
                "parameters": p.parameters,
                "rationale": _clip(p.rationale, 500),
            }
            for p in rows
        ],
    }


def product_compliance(user, *, urn: str) -> dict[str, Any]:
    product = product_for(user, urn)
    rows = policy_selectors.product_compliance(product=product)
    return {
        "urn": product.urn,
        "compliant": sum(1 for r in rows if r["state"] in ("pass", "waived")),
        "applicable": len(rows),
        "policies": [
            {
                "key": r["policy"].key,
                "title": r["policy"].title,
                "severity": r["policy"].severity,
                "state": r["state"],
                "reason": r["status"].reason if r["status"] else "",
                "how_to_fix": r["fix"],
                "waiver_expires_at": _iso(r["waiver"].expires_at) if r["waiver"] else None,
                "waiver_pending": r["pending"],
            }
            for r in rows
        ],
    }


INCIDENT_STATES = ["open", "acknowledged", "resolved"]


def product_incidents(
    user, *, urn: str, status: str = "", page: int = 1, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """The product's incidents (failing checks, breached freshness SLOs), open first, with
    their timelines; the product as get_product sees it (hidden drafts answer NotFound)."""
    product = product_for(user, urn)
    qs = _in_state(quality_selectors.product_incidents_qs(product=product), status, INCIDENT_STATES)
    rows, meta = _page(qs, page=page, page_size=page_size)
    timelines = quality_selectors.incident_timelines(incidents=rows)
    return {
        "urn": product.urn,
        **meta,
        "incidents": [
            {
                "id": i.pk,
                "title": i.title,
                "kind": i.kind,
                "status": i.status,
                "check": i.quality_check.name if i.quality_check else None,
                "failing_runs": i.failures,
                "opened_at": _iso(i.opened_at),
                "acknowledged_at": _iso(i.acknowledged_at),
                "acknowledged_by": i.acknowledged_by.get_username() if i.acknowledged_by else None,
                "resolved_at": _iso(i.resolved_at),
                "resolved_by": i.resolved_by.get_username() if i.resolved_by else None,
                "timeline": [
                    {
                        "at": _iso(e.at),
                        "event": e.kind,
                        "by": e.by.get_username() if e.by else None,
                        "note": _clip(e.note, 500),
                    }
                    for e in timelines.get(i.pk, [])
                ],
            }
            for i in rows
        ],
    }


def glossary_lookup(
    user, *, query: str, page: int = 1, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    if not query.strip():
        raise ValidationError({"query": "Say which term to look up."})
    terms = policy_services.glossary_search(query, limit=MAX_PAGE_SIZE * 4)
    rows, meta = _page(terms, page=page, page_size=page_size)
    results = []
    for term in rows:
        fields = policy_selectors.term_fields(term=term, user=user)
        results.append(
            {
                "name": term.name,
                "slug": term.slug,
                "status": term.status,
                "definition": _clip(term.definition, 1000),
                "synonyms": term.synonym_list,
                "domain": term.domain.slug if term.domain else None,
                "fields": [
                    {"product": f.port.product.urn, "port": f.port.slug, "field": f.name}
                    for f in fields[:10]
                ],
                "fields_total": fields.count(),
            }
        )
    return {"query": query, **meta, "results": results}


# -- access and watching -------------------------------------------------------------------------


def _request_row(r: AccessRequest) -> dict[str, Any]:
    return {
        "id": r.pk,
        "product": r.product.urn,
        "status": r.status,
        "purpose": _clip(r.purpose, 500),
        "team": r.team.slug if r.team else None,
        "duration_days": r.duration_days,
        "requested_at": _iso(r.created_at),
        "decided_by": r.decided_by.get_username() if r.decided_by else None,
        "decision_comment": r.decision_comment,
        "expires_at": _iso(r.expires_at),
    }


def my_access(
    user, *, status: str = "", page: int = 1, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    qs = _in_state(
        selectors.my_requests(user=user).order_by("-created_at"),
        status,
        AccessRequest.Status.values,
    )
    rows, meta = _page(qs, page=page, page_size=page_size)
    return {
        **meta,
        "active_grants": selectors.my_requests(user=user)
        .filter(status=AccessRequest.Status.APPROVED)
        .count(),
        "results": [_request_row(r) for r in rows],
    }


def request_access(
    user, *, urn: str, purpose: str, duration_days: int = 90, team: str = ""
) -> dict[str, Any]:
    product = product_for(user, urn)
    on_behalf = None
    if team:
        on_behalf = Team.objects.filter(slug=team).first()
        if on_behalf is None:
            raise ValidationError({"team": f"No team {team}."})
    req = services.access_request_create(
        product=product,
        requester=user,
        purpose=purpose,
        duration_days=duration_days,
        team=on_behalf,
    )
    return {
        **_request_row(req),
        "next": f"The owners of {product.owner_team} decide in their inbox; you are notified. "
        "Nothing is granted until they approve.",
    }


def watch_product(user, *, urn: str, watch: bool = True) -> dict[str, Any]:
    product = product_for(user, urn)
    watching = lineage_services.watch_set(user=user, on=watch, product=product)
    return {"urn": product.urn, "watching": watching}
