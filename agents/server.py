"""The MCP server: the mesh's tools for AI assistants, answering as the person whose API token
they carry.

Every call is authenticated with the portal's one token check (`meshportal.api.auth`), spends
the token's API budget, runs inside `audit_context(actor=user, door="mcp")` and answers through
`agents.tools` (the selectors, services and permission model the pages and the API use). A
refusal is a tool error with a reason; an unknown product and one the user may not see give the
same error.

Two transports: Streamable HTTP (`http_app()`, served by `python manage.py mcp --http` at
`/mcp`; a request without a valid token gets 401 before any MCP message is read) and stdio
(`python manage.py mcp`, for an assistant on the same machine; the token comes from
`MESH_TOKEN`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

from asgiref.sync import sync_to_async
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import close_old_connections, connections
from django.http import Http404
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agents import tools
from meshportal.api.auth import TokenRefused, token_from_header, token_throttle_wait
from meshportal.audit import audit_context
from meshportal.models import ApiToken, AuditEntry

logger = logging.getLogger(__name__)

# A hint, not a secret:
NO_TOKEN = "Send your API token from /profile/tokens/: `Authorization: Bearer mesh_…`."  # noqa: S105  # nosec B105
INSTRUCTIONS = """\
Mesh Portal's data mesh: data products (each named by a URN, urn:mesh:<domain>:<product>), their
schemas, ODCS contracts, lineage, quality and trust, governance policies and the glossary.
You act as the person whose token you carry and see what they may see. Start with
search_products, then get_product / get_contract / lineage with a result's URN. request_access
only asks: the product's owners decide in their inbox, nothing is granted by you."""

# Where the stdio transport's token comes from (set by `manage.py mcp`); HTTP never uses it.
_local = {"header": ""}


def use_local_token(key: str) -> None:
    _local["header"] = f"Bearer {key}" if key else ""


def _authenticate(ctx: Context | None) -> ApiToken:
    headers = ctx.headers if ctx is not None else None
    header = headers.get("authorization", "") if headers is not None else _local["header"]
    token = token_from_header(header)
    if token is None:
        raise TokenRefused(NO_TOKEN)
    return token


def _reason(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return " ".join(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _refuse_nul(kwargs: dict[str, Any]) -> None:
    """A NUL in any text argument is refused, as the API's fields and the pages' forms refuse
    it (PostgreSQL cannot store it: it would fail deep in a service instead)."""
    bad = {name: "Null characters are not allowed." for name, v in kwargs.items() if _has_nul(v)}
    if bad:
        raise ValidationError(bad)


def _call(ctx: Context | None, fn: Callable[..., dict], /, **kwargs: Any) -> dict[str, Any]:
    """Run one tool as the token's user, through the mcp door; refusals become tool errors."""
    close_old_connections()
    try:
        token = _authenticate(ctx)
        wait = token_throttle_wait(token)
        if wait is not None:
            raise ToolError(f"Rate limit reached for this token: try again in {round(wait)} s.")
        _refuse_nul(kwargs)
        with audit_context(actor=token.user, door=AuditEntry.Door.MCP):
            return fn(token.user, **kwargs)
    except TokenRefused as e:
        raise ToolError(str(e)) from None
    except (tools.NotFound, PermissionDenied) as e:
        raise ToolError(str(e) or "You may not do that.") from None
    except (Http404, ObjectDoesNotExist):
        raise ToolError("Not found, or you may not see it.") from None
    except ValidationError as e:
        raise ToolError(_reason(e)) from None
    finally:
        _release_connections()


def _release_connections() -> None:
    """Tools run on the SDK's worker threads, which come and go: keep no connection open
    between calls (as Django advises for async servers; use a pooler such as PgBouncer)."""
    connections.close_all()


# -- the tools -----------------------------------------------------------------------------------

Urn = Annotated[
    str,
    Field(
        description="The product's URN, urn:mesh:<domain>:<product> (as search_products gives).",
        max_length=300,
    ),
]
Page = Annotated[int, Field(description="Page number, from 1.", ge=1, le=10_000)]
PageSize = Annotated[
    int, Field(description=f"Results per page (at most {tools.MAX_PAGE_SIZE}).", ge=1, le=50)
]
Values = Annotated[list[str], Field(description="Any of these slugs (see the facets).")]

PolicyState = Annotated[
    Literal["", "proposed", "active", "rejected", "retired"],
    Field(description="Only policies in this state (empty: all)."),
]
RequestState = Annotated[
    Literal["", "pending", "approved", "denied", "revoked", "expired"],
    Field(description="Only requests in this state (empty: all)."),
]

IncidentState = Annotated[
    Literal["", "open", "acknowledged", "resolved"],
    Field(description="Only incidents in this state (empty: all)."),
]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def search_products(
    ctx: Context,
    query: Annotated[
        str,
        Field(
            description="Words or a question: matched as keywords (names, descriptions, fields,"
            " glossary terms) and, where semantic search is on, by meaning."
        ),
    ] = "",
    domain: Values | None = None,
    owner_team: Values | None = None,
    status: Annotated[
        list[Literal["draft", "published", "deprecated", "retired"]] | None,
        Field(description="Lifecycle states (drafts only of your own teams)."),
    ] = None,
    classification: Annotated[
        list[Literal["public", "internal", "confidential", "restricted"]] | None,
        Field(description="Data classifications."),
    ] = None,
    tag: Annotated[str, Field(description="A tag's slug.")] = "",
    port_kind: Annotated[
        list[Literal["table", "view", "file", "api", "stream", "dashboard"]] | None,
        Field(description="Kinds of output port the product offers."),
    ] = None,
    quality: Annotated[
        list[Literal["passing", "failing", "unchecked"]] | None,
        Field(description="Quality state of the product's checks."),
    ] = None,
    sort: Annotated[
        Literal["", "relevance", "trust", "newest", "name"],
        Field(description="Order; relevance when searching, else name."),
    ] = "",
    page: Page = 1,
    page_size: PageSize = tools.PAGE_SIZE,
) -> dict[str, Any]:
    """Find data products by keyword and by meaning (e.g. "why customers leave"), with facets
    (domain, owner team, status, classification, tag, port kind, quality). Returns one page of products (URN, name, summary, domain, team,
    status, trust score) and the facet counts to narrow by. Follow up with get_product."""
    return _call(
        ctx,
        tools.search_products,
        query=query,
        domain=domain,
        owner_team=owner_team,
        status=status,
        classification=classification,
        tag=tag,
        port_kind=port_kind,
        quality=quality,
        sort=sort,
        page=page,
        page_size=page_size,
    )


def get_product(ctx: Context, urn: Urn) -> dict[str, Any]:
    """One data product: summary, documentation, schema (ports and fields), owners, status,
    trust score with its breakdown, freshness against its SLO, the latest quality results, and
    what you may do (request access, connection details). Where the data lives (locations, data
    sources) is shown only to the owning team and approved consumers."""
    return _call(ctx, tools.get_product, urn=urn)


def get_contract(ctx: Context, urn: Urn) -> dict[str, Any]:
    """The product's data contract as an ODCS v3 YAML document (schema, quality rules, SLAs,
    terms). Servers and physical names are left out unless you may see connection details."""
    return _call(ctx, tools.get_contract, urn=urn)


def lineage(
    ctx: Context,
    urn: Urn,
    depth: Annotated[int, Field(description="Hops up- and downstream to show.", ge=1, le=6)] = 2,
    impact_limit: Annotated[
        int, Field(description="At most this many impacted products listed.", ge=1, le=50)
    ] = 25,
    observed: Annotated[
        bool,
        Field(
            description="Also follow dependencies seen in the warehouses' query logs but not "
            "declared; edges and impacted products reached that way say observed: true."
        ),
    ] = False,
) -> dict[str, Any]:
    """Where a product's data comes from and goes to: upstream and downstream products within
    `depth` hops, and the impact of a change (every product downstream, transitively, with its
    team's owners to tell). Products you may not see are left out, as if they did not exist."""
    return _call(
        ctx, tools.lineage, urn=urn, depth=depth, impact_limit=impact_limit, observed=observed
    )


def list_policies(
    ctx: Context,
    status: PolicyState = "active",
    page: Page = 1,
    page_size: PageSize = tools.PAGE_SIZE,
) -> dict[str, Any]:
    """The mesh's governance policies: key, title, severity (blocking policies stop
    publishing), scope (global or a domain), rule and rationale."""
    return _call(ctx, tools.list_policies, status=status, page=page, page_size=page_size)


def product_compliance(ctx: Context, urn: Urn) -> dict[str, Any]:
    """How a product stands against each policy that applies to it: pass, fail (with the
    reason and how to fix it), waived, or not yet evaluated."""
    return _call(ctx, tools.product_compliance, urn=urn)


def product_incidents(
    ctx: Context,
    urn: Urn,
    status: IncidentState = "",
    page: Page = 1,
    page_size: PageSize = tools.PAGE_SIZE,
) -> dict[str, Any]:
    """A product's incidents — failing quality checks and breached freshness SLOs — open first:
    status (open, acknowledged by its team, resolved), the check, failing runs, who acknowledged
    or resolved it, and its timeline with the team's notes."""
    return _call(
        ctx, tools.product_incidents, urn=urn, status=status, page=page, page_size=page_size
    )


def glossary_lookup(
    ctx: Context,
    query: Annotated[str, Field(description="A business term or synonym.", max_length=200)],
    page: Page = 1,
    page_size: PageSize = tools.PAGE_SIZE,
) -> dict[str, Any]:
    """Business glossary terms matching the query (name, synonyms, definition) and the schema
    fields, in products you may see, that are linked to each."""
    return _call(ctx, tools.glossary_lookup, query=query, page=page, page_size=page_size)


def my_access(
    ctx: Context,
    status: RequestState = "",
    page: Page = 1,
    page_size: PageSize = tools.PAGE_SIZE,
) -> dict[str, Any]:
    """Your access requests and grants, newest first: product, status, purpose, who decided,
    and when an approved grant expires."""
    return _call(ctx, tools.my_access, status=status, page=page, page_size=page_size)


def request_access(
    ctx: Context,
    urn: Urn,
    purpose: Annotated[
        str,
        Field(description="What the data will be used for; the owners read it to decide."),
    ],
    duration_days: Annotated[
        int, Field(description="How long the grant should last, in days.", ge=1, le=730)
    ] = 90,
    team: Annotated[
        str, Field(description="Ask for one of your teams (its slug) instead of yourself.")
    ] = "",
) -> dict[str, Any]:
    """Ask the product's owners for access to its data, with a purpose. Creates a pending
    request in their inbox, exactly as the portal's Request access button does; it grants
    nothing by itself. Follow it with my_access."""
    return _call(
        ctx, tools.request_access, urn=urn, purpose=purpose, duration_days=duration_days, team=team
    )


def watch_product(
    ctx: Context,
    urn: Urn,
    watch: Annotated[bool, Field(description="true to watch, false to stop watching.")] = True,
) -> dict[str, Any]:
    """Watch a product (or stop): you are notified when it changes, is deprecated, breaks its
    contract or its quality changes."""
    return _call(ctx, tools.watch_product, urn=urn, watch=watch)


TOOLS: list[tuple[Callable[..., dict[str, Any]], ToolAnnotations]] = [
    (search_products, READ),
    (get_product, READ),
    (get_contract, READ),
    (lineage, READ),
    (list_policies, READ),
    (product_compliance, READ),
    (product_incidents, READ),
    (glossary_lookup, READ),
    (my_access, READ),
    (request_access, WRITE),
    (watch_product, WRITE),
]


def build_server() -> MCPServer:
    server: MCPServer = MCPServer(name="mesh-portal", instructions=INSTRUCTIONS)
    for fn, hints in TOOLS:
        server.add_tool(fn, annotations=hints)
    return server


# -- Streamable HTTP -----------------------------------------------------------------------------


def _check_header(header: str) -> str | None:
    """None when the header carries a valid token, else why not."""
    close_old_connections()
    try:
        return None if token_from_header(header) is not None else NO_TOKEN
    except TokenRefused as e:
        return str(e)
    finally:
        _release_connections()


class TokenRequired:
    """ASGI middleware: an HTTP request without a valid token is answered 401 at the door."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Headers(scope=scope).get("authorization", "")
            refused = await sync_to_async(_check_header, thread_sensitive=False)(header)
            if refused is not None:
                body = json.dumps({"detail": refused}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="mcp"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _transport_security(host: str):
    """Host-header checks against DNS rebinding: on loopback the SDK's own (localhost only);
    elsewhere the portal's ALLOWED_HOSTS, any port (none when it allows every host)."""
    from django.conf import settings
    from mcp.server.transport_security import TransportSecuritySettings

    if host in ("127.0.0.1", "localhost", "::1"):
        return None  # the SDK protects loopback binds itself
    names = [h.lstrip(".") for h in settings.ALLOWED_HOSTS]
    if not names or "*" in names:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        allowed_hosts=[*names, *(f"{h}:*" for h in names)],
        allowed_origins=[f"https://{h}" for h in names],
    )


def http_app(*, host: str = "127.0.0.1") -> ASGIApp:
    """The Streamable HTTP app (the MCP endpoint at /mcp), behind the token check."""
    app = build_server().streamable_http_app(
        host=host, transport_security=_transport_security(host)
    )
    return TokenRequired(app)
