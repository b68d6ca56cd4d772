"""A git-friendly backup of the whole mesh, and its lossless restore into an empty portal.

`export_mesh(directory)` writes:

    mesh.yaml                          format and version of the backup
    users.yaml                         people (no passwords) and their non-team groups
    teams.yaml                         teams with members and roles
    domains.yaml                       domains, parents and owning teams
    datasources.yaml                   data sources (the password is an environment variable name)
    glossary.yaml                      glossary terms
    products/<domain>/<product>.yaml   each product's ODCS v3 contract, as the API exports it
    products/<domain>/<product>.odps.yaml  the product itself as ODPS v1.1.0, as the API exports
                                       it to its owners (for dataproduct-cli and catalogs)
    product_state.yaml                 per product, what a contract does not carry: lifecycle,
                                       port data sources, field glossary links, quality checks
                                       with their schedules, inputs (lineage), access requests
                                       and grants, watchers
    policies.yaml                      policies with their votes and waivers

Every list is sorted by natural keys and no export time is written, so exporting an unchanged
mesh gives byte-identical files. `import_mesh(directory)` restores all of it in one transaction;
bad input raises `BackupError` naming the file and line, and nothing is changed.

The ODPS documents carry nothing the contracts and product_state.yaml do not, except when each
product was created and the ODPS content the portal keeps as it came (`odps_kept`): import_mesh
checks each one (the official ODPS schema, the product its file is named after) and takes back
`productCreatedTs` and the kept content; the rest is restored from the other files.

History is not part of the backup: contract versions (a restored product starts at version 1),
the audit log, quality runs, policy evaluations, notifications. Nor are secrets: passwords (people
sign in by single sign-on or get a new password), API tokens and webhooks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery

from domains import services as domain_services
from domains.models import Domain, Membership, Team
from governance.models import (
    DataSource,
    GlossaryTerm,
    Policy,
    PolicyVote,
    QualityCheck,
    Waiver,
)
from governance.policies import rules
from governance.quality import services as quality_services
from meshportal import bulk, parallel
from meshportal.audit import audit_context
from products.contracts import odps
from products.contracts import services as contracts
from products.discovery.search import deferred_indexing, index_product
from products.models import (
    AccessRequest,
    ContractVersion,
    DataProduct,
    InputPort,
    OutputPort,
    SchemaField,
    Watch,
)
from products.services import CONSUME

FORMAT = {"format": "mesh-portal-backup", "version": 1}
PRODUCTS_DIR = "products"
ODPS_SUFFIX = ".odps.yaml"


class BackupError(Exception):
    """Bad backup input: which file, which line (when known) and why."""

    def __init__(self, file: Path | str, line: int | None, message: str):
        self.file, self.line, self.message = str(file), line, message
        super().__init__(f"{self.file}{f':{line}' if line else ''}: {message}")


# -- YAML helpers --------------------------------------------------------------------------------


class _Map(dict):
    line: int | None = None


class _LineLoader(contracts._Loader):
    """The contracts' safe loader (dates stay strings) that remembers each mapping's line."""


def _construct_map(loader, node):
    loader.flatten_mapping(node)
    m = _Map(loader.construct_pairs(node, deep=True))
    m.line = node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def _when(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _drop_empty(d: dict) -> dict:
    """Leave out empty and default-valued keys so that files stay short and diffs small."""
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(contracts.dump(data), encoding="utf-8")


# -- export --------------------------------------------------------------------------------------


def export_mesh(directory: Path | str) -> dict[str, int]:
    """Write the mesh to directory (created if needed); product files of products that no
    longer exist are removed. Returns counts of what was written."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    User = get_user_model()
    team_groups = set(Team.objects.values_list("group_id", flat=True))
    users = [
        _drop_empty(
            {
                "username": u.username,
                "email": u.email,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "is_active": u.is_active,
                "is_staff": u.is_staff or None,
                "is_superuser": u.is_superuser or None,
                "groups": sorted(g.name for g in u.groups.all() if g.pk not in team_groups),
            }
        )
        for u in User.objects.order_by("username").prefetch_related("groups")
    ]
    teams = [
        _drop_empty(
            {
                "slug": t.slug,
                "name": t.name,
                "description": t.description,
                "contact_email": t.contact_email,
                "members": [
                    {"user": m.user.username, "role": m.role}
                    for m in sorted(t.memberships.all(), key=lambda m: m.user.username)
                ],
            }
        )
        for t in Team.objects.order_by("slug").prefetch_related("memberships__user")
    ]
    domains = [
        _drop_empty(
            {
                "slug": d.slug,
                "name": d.name,
                "description": d.description,
                "parent": d.parent.slug if d.parent else None,
                "owner_team": d.owner_team.slug,
            }
        )
        for d in Domain.objects.order_by("slug").select_related("parent", "owner_team")
    ]
    sources = [
        _drop_empty(
            {
                **{
                    f.name: getattr(s, f.name)
                    for f in DataSource._meta.concrete_fields
                    if f.name not in ("id", "created_at")
                },
                "teams": sorted(t.slug for t in s.teams.all()),  # who may use it; none: all
            }
        )
        for s in DataSource.objects.order_by("slug").prefetch_related("teams")
    ]
    glossary = [
        _drop_empty(
            {
                "slug": g.slug,
                "name": g.name,
                "definition": g.definition,
                "synonyms": g.synonyms,
                "domain": g.domain.slug if g.domain else None,
                "status": g.status,
            }
        )
        for g in GlossaryTerm.objects.order_by("slug").select_related("domain")
    ]
    _write(root / "mesh.yaml", FORMAT)
    _write(root / "users.yaml", users)
    _write(root / "teams.yaml", teams)
    _write(root / "domains.yaml", domains)
    _write(root / "datasources.yaml", sources)
    _write(root / "glossary.yaml", glossary)
    n_products = _export_products(root)
    _write(root / "policies.yaml", _export_policies())
    return {
        "users": len(users),
        "teams": len(teams),
        "domains": len(domains),
        "data sources": len(sources),
        "glossary terms": len(glossary),
        "products": n_products,
    }


def _export_products(root: Path) -> int:
    # Everything an export reads is fetched per chunk of products, not per product: the
    # contract's kept extras (latest version), ports, fields, tags and quality checks.
    latest_extras = Subquery(
        ContractVersion.objects.filter(product=OuterRef("pk"))
        .order_by("-number")
        .values("extras")[:1]
    )
    products = (
        DataProduct.objects.order_by("domain__slug", "slug")
        .annotate(latest_extras=latest_extras)
        .select_related("domain", "owner_team", "replacement__domain")
        .prefetch_related(
            "tags",
            Prefetch(
                "ports",
                OutputPort.objects.order_by("slug").select_related("data_source"),
            ),
            Prefetch(
                "ports__fields",
                SchemaField.objects.order_by("ordinal", "name").select_related("glossary_term"),
            ),
            Prefetch("ports__quality_checks", QualityCheck.objects.order_by("name")),
            Prefetch(
                "input_ports",
                InputPort.objects.select_related("source_port__product__domain"),
            ),
            Prefetch(
                "access_requests",
                AccessRequest.objects.select_related("requester", "team", "decided_by"),
            ),
            Prefetch("watches", Watch.objects.select_related("user")),
            Prefetch(
                "owner_team__memberships",
                Membership.objects.select_related("user").order_by("user__username"),
            ),
        )
    )
    state: dict[str, dict] = {}
    written: set[Path] = set()
    for p in products.iterator(chunk_size=500):
        key = f"{p.domain.slug}/{p.slug}"
        path = root / PRODUCTS_DIR / p.domain.slug / f"{p.slug}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        extras = json.loads(p.latest_extras) if p.latest_extras else {}
        text = contracts.dump(contracts.export_document(p, extras))
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.add(path)
        odps_path = path.with_name(p.slug + ODPS_SUFFIX)
        text = odps.export_yaml(p)
        if not odps_path.exists() or odps_path.read_text(encoding="utf-8") != text:
            odps_path.write_text(text, encoding="utf-8")
        written.add(odps_path)
        state[key] = _product_state(p)
    for old in (root / PRODUCTS_DIR).glob("*/*.yaml"):
        if old not in written:
            old.unlink()
    for folder in (root / PRODUCTS_DIR).glob("*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    _write(root / "product_state.yaml", state)
    return len(state)


def _product_state(p: DataProduct) -> dict:
    ports, checks = {}, []
    for port in p.ports.all():
        fields = {f.name: f.glossary_term.slug for f in port.fields.all() if f.glossary_term}
        entry = _drop_empty(
            {"data_source": port.data_source.slug if port.data_source else None, "glossary": fields}
        )
        if entry:
            ports[port.slug] = entry
        checks += [
            {
                "port": port.slug,
                "name": c.name,
                "kind": c.kind,
                "columns": c.columns,
                "params": c.params,
                "enabled": c.enabled,
                "interval_minutes": c.interval_minutes,
                "cron": c.cron,
                "timeout_seconds": c.timeout_seconds,
            }
            for c in port.quality_checks.all()
        ]
    inputs = sorted(
        (
            _drop_empty(
                {
                    "source": (
                        f"{i.source_port.product.domain.slug}/{i.source_port.product.slug}"
                        f"/{i.source_port.slug}"
                        if i.source_port
                        else None
                    ),
                    "external_name": i.external_name,
                    "external_kind": i.external_kind,
                    "description": i.description,
                    "approved": i.approved,
                }
            )
            for i in p.input_ports.all()
        ),
        key=lambda d: (d.get("source", ""), d.get("external_name", "")),
    )
    requests = sorted(
        (
            _drop_empty(
                {
                    "requester": r.requester.username,
                    "team": r.team.slug if r.team else None,
                    "purpose": r.purpose,
                    "duration_days": r.duration_days,
                    "status": r.status,
                    "decided_by": r.decided_by.username if r.decided_by else None,
                    "decided_at": _when(r.decided_at),
                    "decision_comment": r.decision_comment,
                    "expires_at": _when(r.expires_at),
                    "ended_at": _when(r.ended_at),
                    "created_at": _when(r.created_at),
                }
            )
            for r in p.access_requests.all()
        ),
        key=lambda d: (d["created_at"], d["requester"], d["status"], d["purpose"]),
    )
    return _drop_empty(
        {
            "status": p.status,
            "published_at": _when(p.published_at),
            "sunset_date": _when(p.sunset_date),
            "replacement": (
                f"{p.replacement.domain.slug}/{p.replacement.slug}" if p.replacement else None
            ),
            "ports": ports,
            "checks": checks,
            "inputs": inputs,
            "access_requests": requests,
            "watchers": sorted(w.user.username for w in p.watches.all()),
        }
    )


def _export_policies() -> list[dict]:
    out = []
    policies = (
        Policy.objects.order_by("key")
        .select_related("domain", "proposed_by")
        .prefetch_related(
            Prefetch("votes", PolicyVote.objects.select_related("voter")),
            Prefetch(
                "waivers",
                Waiver.objects.select_related("product__domain", "requested_by", "decided_by"),
            ),
        )
    )
    for pol in policies:
        votes = sorted(
            (
                _drop_empty(
                    {"voter": v.voter.username, "decision": v.decision, "comment": v.comment}
                )
                for v in pol.votes.all()
            ),
            key=lambda d: d["voter"],
        )
        waivers = sorted(
            (
                _drop_empty(
                    {
                        "product": f"{w.product.domain.slug}/{w.product.slug}",
                        "requested_by": w.requested_by.username if w.requested_by else None,
                        "justification": w.justification,
                        "status": w.status,
                        "decided_by": w.decided_by.username if w.decided_by else None,
                        "decided_at": _when(w.decided_at),
                        "decision_reason": w.decision_reason,
                        "expires_at": _when(w.expires_at),
                        "created_at": _when(w.created_at),
                    }
                )
                for w in pol.waivers.all()
            ),
            key=lambda d: (d["product"], d["created_at"], d["justification"]),
        )
        out.append(
            _drop_empty(
                {
                    "key": pol.key,
                    "title": pol.title,
                    "rationale": pol.rationale,
                    "rule_type": pol.rule_type,
                    "parameters": pol.parameters,
                    "severity": pol.severity,
                    "domain": pol.domain.slug if pol.domain else None,
                    "status": pol.status,
                    "proposed_by": pol.proposed_by.username if pol.proposed_by else None,
                    "activated_at": _when(pol.activated_at),
                    "retired_at": _when(pol.retired_at),
                    "votes": votes,
                    "waivers": waivers,
                }
            )
        )
    return out


# -- import --------------------------------------------------------------------------------------


def portal_is_empty() -> bool:
    return not any(
        m.objects.exists() for m in (Team, Domain, DataProduct, Policy, GlossaryTerm, DataSource)
    )


@dataclass
class _Ctx:
    root: Path
    actor: Any
    users: dict[str, Any]
    file: Path
    line: int | None = None

    def fail(self, message: str, line: int | None = None) -> BackupError:
        return BackupError(self.file, line or self.line, message)

    def user(self, name: str | None):
        if not name:
            return None
        if name not in self.users:
            raise self.fail(f"unknown user “{name}” (not in users.yaml)")
        return self.users[name]


def _load(ctx: _Ctx, name: str, kind: type = list) -> Any:
    ctx.file, ctx.line = ctx.root / name, None
    try:
        # _LineLoader is a (C)SafeLoader subclass.
        data = yaml.load(ctx.file.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506  # nosec B506
    except FileNotFoundError:
        raise ctx.fail("missing from the backup") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise BackupError(
            ctx.file, mark.line + 1 if mark else None, f"YAML syntax error: {e.problem}"
        ) from e
    if data is None:
        data = kind()
    if not isinstance(data, kind):
        raise ctx.fail(f"expected a {'list' if kind is list else 'mapping'} at the top")
    return data


def _item(ctx: _Ctx, item: Any, required: tuple[str, ...]) -> dict:
    if not isinstance(item, dict):
        raise ctx.fail(f"expected a mapping, got {item!r}")
    ctx.line = getattr(item, "line", None)
    missing = [k for k in required if not item.get(k)]
    if missing:
        raise ctx.fail(f"missing {', '.join(missing)}")
    return item


def _at(ctx: _Ctx, item: Any) -> Any:
    """Errors from here on point at item's line."""
    ctx.line = getattr(item, "line", ctx.line)
    return item


def _errors(e: ValidationError) -> str:
    if hasattr(e, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in e.message_dict.items())
    return " ".join(e.messages)


def _dt(ctx: _Ctx, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ctx.fail(f"“{value}” is not an ISO date and time") from None


def import_mesh(directory: Path | str, *, user: str | None = None, force: bool = False) -> dict:
    """Restore a backup written by export_mesh, all or nothing. Refuses a portal that already
    holds teams, domains, products, policies, glossary terms or data sources unless force
    (conflicts then fail with the file and line). Acts as `user` (default: the backup's first
    superuser) for the audit log and the contract rules."""
    root = Path(directory)
    ctx = _Ctx(root=root, actor=None, users={}, file=root / "mesh.yaml")
    meta = _load(ctx, "mesh.yaml", dict)
    if meta.get("format") != FORMAT["format"] or meta.get("version") != FORMAT["version"]:
        raise ctx.fail(f"not a Mesh Portal backup of version {FORMAT['version']}")
    if not force and not portal_is_empty():
        raise BackupError(
            root, None, "the portal is not empty: restore into a fresh database (or use --force)"
        )
    try:
        # Each product's search document is built once at the end, not after every field.
        # YAML read and written again in spare processes (meshportal.parallel).
        with transaction.atomic(), deferred_indexing(), parallel.workers():
            counts = _import_all(ctx, user)
    except ValidationError as e:  # a rule the services enforce, at the place we were reading
        raise ctx.fail(_errors(e)) from e
    except KeyError as e:
        raise ctx.fail(f"missing {e.args[0]}") from e
    except (TypeError, AttributeError) as e:  # a list where a mapping belongs, and the like
        raise ctx.fail(f"unexpected shape: {e}") from e
    return counts


def _import_all(ctx: _Ctx, username: str | None) -> dict:
    User = get_user_model()
    for item in _load(ctx, "users.yaml"):
        item = _item(ctx, item, ("username",))
        u = User.objects.filter(username=item["username"]).first()
        if u is None:
            u = User(username=item["username"])
            u.set_unusable_password()
        for attr in ("email", "first_name", "last_name"):
            setattr(u, attr, item.get(attr, ""))
        u.is_active = item.get("is_active", False)
        u.is_staff = bool(item.get("is_staff"))
        u.is_superuser = bool(item.get("is_superuser"))
        u.save()
        u.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in item.get("groups", [])])
        ctx.users[u.username] = u
    ctx.line = None
    if username:  # someone in the backup, or already in the portal (the new installation's admin)
        ctx.actor = ctx.users.get(username) or User.objects.filter(username=username).first()
        if ctx.actor is None:
            raise ctx.fail(f"unknown user “{username}” (--user)")
    else:
        ctx.actor = next((u for u in ctx.users.values() if u.is_superuser and u.is_active), None)
    if ctx.actor is None:
        raise ctx.fail("no active superuser in the backup to restore as: name one with --user")
    with audit_context(actor=ctx.actor, door="command"):
        return _import_mesh_objects(ctx)


def _import_mesh_objects(ctx: _Ctx) -> dict:
    counts: dict[str, int] = {"users": len(ctx.users)}
    source_teams: dict = {}  # a source's teams, set once teams.yaml is read

    for item in _load(ctx, "datasources.yaml"):
        item = _item(ctx, item, ("slug", "name", "kind"))
        known = {f.name for f in DataSource._meta.concrete_fields} - {"id", "created_at"}
        if unknown := set(item) - known - {"teams"}:
            raise ctx.fail(f"unknown keys {', '.join(sorted(unknown))}")
        open_to = item.pop("teams", [])
        source = DataSource(**item)
        source.full_clean()
        source.save()
        if open_to:
            source_teams[source] = (open_to, getattr(item, "line", None))
    counts["data sources"] = DataSource.objects.count()

    teams = {}
    for item in _load(ctx, "teams.yaml"):
        item = _item(ctx, item, ("slug", "name"))
        team = domain_services.team_create(
            slug=item["slug"],
            name=item["name"],
            description=item.get("description", ""),
            contact_email=item.get("contact_email", ""),
        )
        members = []
        for m in item.get("members", []):
            _at(ctx, m)
            if not m.get("user"):
                raise ctx.fail("a member without a user")
            domain_services.check_role(m["role"])  # an unknown role: this member's line
            members.append((ctx.user(m["user"]), m["role"]))
        domain_services.members_add(team=team, members=members)
        teams[team.slug] = team
    counts["teams"] = len(teams)
    for source, (slugs, line) in source_teams.items():
        ctx.line = line
        if missing := [t for t in slugs if t not in teams]:
            raise ctx.fail(f"unknown team “{missing[0]}” (not in teams.yaml)")
        source.teams.set([teams[t] for t in slugs])

    items = {}
    for item in _load(ctx, "domains.yaml"):
        item = _item(ctx, item, ("slug", "name", "owner_team"))
        items[item["slug"]] = item
    domains: dict[str, Domain] = {}

    def make_domain(slug: str, chain: tuple[str, ...] = ()) -> Domain:
        if slug in domains:
            return domains[slug]
        item = items[slug]
        ctx.line = getattr(item, "line", None)
        parent = item.get("parent")
        if parent and parent not in items:
            raise ctx.fail(f"unknown parent domain “{parent}”")
        if parent in chain:
            raise ctx.fail(f"domain parents form a cycle: {' → '.join((*chain, slug))}")
        if item["owner_team"] not in teams:
            raise ctx.fail(f"unknown team “{item['owner_team']}” (not in teams.yaml)")
        domains[slug] = domain_services.domain_create(
            slug=slug,
            name=item["name"],
            description=item.get("description", ""),
            owner_team=teams[item["owner_team"]],
            parent=make_domain(parent, (*chain, slug)) if parent else None,
        )
        return domains[slug]

    for slug in items:
        make_domain(slug)
    counts["domains"] = len(domains)

    from governance.policies.services import glossary_term_save

    terms = {}
    for item in _load(ctx, "glossary.yaml"):
        item = _item(ctx, item, ("slug", "name", "definition"))
        if item.get("domain") and item["domain"] not in domains:
            raise ctx.fail(f"unknown domain “{item['domain']}”")
        terms[item["slug"]] = glossary_term_save(
            **{**item, "domain": domains.get(item.get("domain", ""))}
        )
    counts["glossary terms"] = len(terms)

    state = _load(ctx, "product_state.yaml", dict)
    state_file = ctx.file
    products = _import_contracts(ctx, state)
    counts["products"] = len(products)
    # The worker reads the ODPS files while this process restores the state (they need it).
    odps_paths = sorted((ctx.root / PRODUCTS_DIR).glob(f"*/*{ODPS_SUFFIX}"))
    odps_reads = parallel.ordered_map(_read_odps, odps_paths, ahead=len(odps_paths))
    _import_state(ctx, state_file, state, products, domains, teams, terms)
    _import_odps(ctx, products, zip(odps_paths, odps_reads, strict=True))
    _import_policies(ctx, domains, products)
    for product in products.values():
        index_product(product)  # glossary links are part of the search text
    return counts


def _line_of(text: str, path: str) -> int | None:
    """The line of an ODCS error path such as schema[0].properties[2].logicalType."""
    try:
        node = yaml.compose(text, Loader=contracts._Loader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node else None
    for part in re.findall(r"[^.\[\]]+", path):
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


# New products are written this many at a time: a few statements per table for each batch.
RESTORE_BATCH = 250


def _contract_error(ctx: _Ctx, e: ValidationError, text: str) -> BackupError:
    errors = getattr(e, "message_dict", {"document": e.messages})
    where = next(iter(errors))
    return ctx.fail(_errors(e), _line_of(text, where) if where != "document" else None)


def _import_contracts(ctx: _Ctx, state: dict) -> dict[str, DataProduct]:
    """Each contract file through the upload's checks (contracts.contract_prepare and
    contract_build: schema, the portal's rules, the restoring user's rights, every model's
    validation), new products written in batches (contracts.contracts_create_many); one that
    already exists (--force) is updated by contract_import, as an upload would."""
    products: dict[str, DataProduct] = {}
    pending: list[tuple[str, contracts.Prepared]] = []
    folder = ctx.root / PRODUCTS_DIR

    def flush():
        ctx.file, ctx.line = folder, None  # a batch's name clash: no one file to blame
        created = contracts.contracts_create_many([p for _, p in pending])
        products.update(zip((key for key, _ in pending), created, strict=True))
        pending.clear()

    # The ODPS files beside them are read by _import_odps.
    paths = [p for p in sorted(folder.glob("*/*.yaml")) if not p.name.endswith(ODPS_SUFFIX)]
    # Each batch's contract versions are written while the next batch is checked.
    with contracts.lookups_remembered(), contracts.versions_overlapped():
        for path, read in zip(paths, parallel.ordered_map(_read_contract, paths), strict=True):
            _import_contract(ctx, path, read, products, pending, flush)
        if pending:
            flush()
    return products


def _read_contract(path: Path) -> tuple[str, dict | None]:
    """A contract file's text and document (None when it does not parse: the caller parses
    it again for the error). Pure, so it may run in a worker process."""
    text = path.read_text(encoding="utf-8")
    try:
        return text, contracts.parse(text)
    except ValidationError:
        return text, None


def _import_contract(
    ctx: _Ctx, path: Path, read: tuple[str, dict | None], products: dict, pending: list, flush
) -> None:
    ctx.file, ctx.line = path, None
    text, doc = read
    try:
        doc = contracts.parse(text) if doc is None else doc
    except ValidationError as e:
        match = re.search(r"line (\d+)", _errors(e))
        raise ctx.fail(_errors(e), int(match.group(1)) if match else None) from e
    key = f"{doc.get('domain')}/{doc.get('dataProduct')}"
    if key != f"{path.parent.name}/{path.stem}":
        raise ctx.fail(f"the document describes {key}, but the file is named after it", 1)
    try:
        # The document parsed above goes through the upload's validation as it is.
        prepared = contracts.contract_prepare(text=text, doc=doc, user=ctx.actor)
        if prepared.existing is None:
            contracts.contract_build(prepared)
            pending.append((key, prepared))
            if len(pending) >= RESTORE_BATCH:
                flush()
            return
        # The contract keeps its quality rules and SLAs as they came (their metadata, the
        # rules the portal does not run) but makes no checks of them: the checks, with
        # their schedules, come back from product_state.yaml, so nothing is made twice.
        result = contracts.contract_import(text=text, doc=doc, user=ctx.actor, make_checks=False)
    except PermissionDenied as e:  # --user may not give the product to its team
        raise ctx.fail(str(e)) from e
    except ValidationError as e:
        raise _contract_error(ctx, e, text) from e
    if result.product is None:  # only a dry run has none
        raise ctx.fail("the contract was not applied")
    products[key] = result.product


def _import_odps(ctx: _Ctx, products: dict[str, DataProduct], reads: Iterable) -> None:
    """Check each product's ODPS document and take back when the product was created and the
    ODPS content kept as it came (what it holds that the contract and product_state.yaml do
    not). Optional: a backup without ODPS files (an older export) restores all the rest.
    `reads`: (path, _read_odps(path)) for each ODPS file, in order."""
    kept: list[tuple[DataProduct, dict]] = []
    when: dict[int, datetime] = {}
    for path, read in reads:
        ctx.file, ctx.line = path, None
        key = f"{path.parent.name}/{path.name.removesuffix(ODPS_SUFFIX)}"
        text = ""
        try:
            if read is None:  # it failed in _read_odps: again here, for the error
                text = path.read_text(encoding="utf-8")
                doc = odps.parse(text)
                odps.validate(doc)
            else:
                doc = json.loads(read)
        except ValidationError as e:
            errors = getattr(e, "message_dict", {"document": e.messages})
            where = next(iter(errors))
            match = re.search(r"line (\d+)", _errors(e))
            line = int(match.group(1)) if match else None
            raise ctx.fail(
                _errors(e), line or (_line_of(text, where) if where != "document" else None)
            ) from e
        if key not in products:
            raise ctx.fail(f"unknown product “{key}” (no {PRODUCTS_DIR}/{key}.yaml)", 1)
        if doc.get("id") != products[key].urn:
            raise ctx.fail(
                f"the document describes {doc.get('id')}, but the file is named {key}", 1
            )
        created = _dt(ctx, doc.get("productCreatedTs"))
        if created is not None:
            when[products[key].pk] = created
        kept.append((products[key], doc))
    odps.kept_restore_many(kept, created=when)


def _read_odps(path: Path) -> str | None:
    """An ODPS file's document checked against the ODPS schema, as JSON text (None when it
    fails). Pure, so it may run in a worker process. JSON: a tenth of the parsed document's
    memory while the restore has not taken it yet, and exact (the reading accepts JSON data only)."""
    try:
        doc = odps.parse(path.read_text(encoding="utf-8"))
        odps.validate(doc)
    except ValidationError:
        return None
    return json.dumps(doc)


def _team(ctx: _Ctx, teams: dict, slug: str | None) -> Team | None:
    if slug and slug not in teams:
        raise ctx.fail(f"unknown team “{slug}” (not in teams.yaml)")
    return teams[slug] if slug else None


def _import_state(ctx, state_file, state, products, domains, teams, terms) -> None:
    """product_state.yaml: each product's lifecycle, port data sources and glossary links,
    checks, access requests and grants, watchers and inputs; checked entry by entry (errors
    point at the entry's line), written together at the end."""
    from django.contrib.auth.models import Permission

    from products.models import DataProductGroupObjectPermission, DataProductUserObjectPermission

    ctx.file = state_file

    def product(key: str) -> DataProduct:
        if key not in products:
            raise ctx.fail(f"unknown product “{key}” (no {PRODUCTS_DIR}/{key}.yaml)")
        return products[key]

    ids = [p.pk for p in products.values()]
    ports_of: dict[int, dict[str, OutputPort]] = {pk: {} for pk in ids}
    for chunk in bulk.chunks(ids):
        for port in OutputPort.objects.filter(product_id__in=chunk).select_related("data_source"):
            ports_of[port.product_id][port.slug] = port
    for p in products.values():
        for port in ports_of[p.pk].values():
            port.product = p
    sources = {s.slug: s for s in DataSource.objects.prefetch_related("teams")}
    consume = Permission.objects.get(content_type__app_label="products", codename=CONSUME)

    lifecycle, sourced, glossary, checks, requests, created_at, watches = [], [], {}, [], [], {}, []
    grants: list = []
    check_names: set[tuple[int, str]] = set()
    for key, st in state.items():
        ctx.line = getattr(st, "line", None)
        p = product(key)
        if not isinstance(st, dict):
            raise ctx.fail("expected a mapping")
        status = st.get("status", DataProduct.Status.DRAFT)
        if status not in DataProduct.Status.values:
            raise ctx.fail(f"unknown status “{status}”")
        # A restore puts back the recorded lifecycle as it was: no transitions, no announcements.
        p.status = status
        p.published_at = _dt(ctx, st.get("published_at"))
        p.sunset_date = st.get("sunset_date") or None
        p.replacement = product(st["replacement"]) if st.get("replacement") else None
        lifecycle.append(p)
        ports = ports_of[p.pk]
        specs = st.get("ports") or {}
        for slug, port in ports.items():
            if port.data_source_id and not (specs.get(slug) or {}).get("data_source"):
                # The contract's servers name the product's source for each of its ports;
                # this one had none.
                port.data_source = None
                sourced.append(port)
        for slug, spec in specs.items():
            if slug not in ports:
                raise ctx.fail(f"{key} has no port “{slug}”")
            port, spec = ports[slug], spec or {}
            if spec.get("data_source"):
                if spec["data_source"] not in sources:
                    raise ctx.fail(f"unknown data source “{spec['data_source']}”")
                port.data_source = sources[spec["data_source"]]
                try:
                    port.clean()  # the source is open to the product's team
                except ValidationError as e:
                    raise ctx.fail(_errors(e)) from e
                sourced.append(port)
            for field, term in (spec.get("glossary") or {}).items():
                if term not in terms:
                    raise ctx.fail(f"unknown glossary term “{term}”")
                glossary[(port.pk, field)] = (terms[term], key, slug)
        for c in st.get("checks") or []:
            c = dict(_at(ctx, c))
            check_port = ports.get(c.pop("port", None))
            if check_port is None:
                raise ctx.fail(f"a check of {key} names no port of it")
            check = quality_services.check_build(
                port=check_port, by=ctx.actor, verify_columns=False, **c
            )
            if (check_port.pk, check.name) in check_names:
                raise ctx.fail(f"{key}/{check_port.slug} has two checks named “{check.name}”")
            check_names.add((check_port.pk, check.name))
            checks.append(check)
        for r in st.get("access_requests") or []:
            _at(ctx, r)
            req = AccessRequest(
                product=p,
                requester=ctx.user(r["requester"]),
                team=_team(ctx, teams, r.get("team")),
                purpose=r["purpose"],
                duration_days=r.get("duration_days", 90),
                status=r["status"],
                decided_by=ctx.user(r.get("decided_by")),
                decided_at=_dt(ctx, r.get("decided_at")),
                decision_comment=r.get("decision_comment", ""),
                expires_at=_dt(ctx, r.get("expires_at")),
                ended_at=_dt(ctx, r.get("ended_at")),
            )
            requests.append(req)
            if when := _dt(ctx, r.get("created_at")):
                created_at[id(req)] = when
            if req.status == AccessRequest.Status.APPROVED:
                grants.append(req)
        watches += [Watch(user=ctx.user(name), product=p) for name in st.get("watchers") or []]

    bulk.update(lifecycle, ["status", "published_at", "sunset_date", "replacement"])
    bulk.update(sourced, ["data_source"])
    if glossary:
        linked = []
        port_ids = list({port_id for port_id, _ in glossary})
        for chunk in bulk.chunks(port_ids):
            for f in SchemaField.objects.filter(port_id__in=chunk).only("id", "port_id", "name"):
                if (f.port_id, f.name) in glossary:
                    f.glossary_term = glossary.pop((f.port_id, f.name))[0]
                    linked.append(f)
        if glossary:
            _term, key, slug = next(iter(glossary.values()))
            field = next(iter(glossary))[1]
            ctx.line = getattr(state[key], "line", None)
            raise ctx.fail(f"{key}/{slug} has no field “{field}”")
        bulk.update(linked, ["glossary_term"])
    try:
        quality_services.checks_create_many(checks)
    except ValidationError as e:
        ctx.line = None
        raise ctx.fail(_errors(e)) from e
    bulk.insert(requests, ids=True)
    for req in requests:
        if id(req) in created_at:
            req.created_at = created_at[id(req)]
    bulk.update([r for r in requests if id(r) in created_at], ["created_at"])
    # Approved requests are grants: the same object permission assign_perm gives.
    bulk.insert(
        [
            DataProductGroupObjectPermission(
                group_id=r.team.group_id, permission=consume, content_object=r.product
            )
            for r in grants
            if r.team
        ]
    )
    bulk.insert(
        [
            DataProductUserObjectPermission(
                user=r.requester, permission=consume, content_object=r.product
            )
            for r in grants
            if not r.team
        ]
    )
    bulk.insert(watches)

    # Inputs point at other products' ports: all products exist by now.
    inputs, read = [], set()
    for key, st in state.items():
        ctx.line = getattr(st, "line", None)
        for i in st.get("inputs") or []:
            _at(ctx, i)
            source_port: OutputPort | None = None
            if i.get("source"):
                src_key, _, port_slug = i["source"].rpartition("/")
                source_port = ports_of[product(src_key).pk].get(port_slug)
                if source_port is None:
                    raise ctx.fail(f"unknown input port “{i['source']}”")
                if (key, source_port.pk) in read:
                    raise ctx.fail(f"{key} reads “{i['source']}” twice")
                read.add((key, source_port.pk))
            elif not i.get("external_name"):
                raise ctx.fail("an input names neither a source port nor an external name")
            inputs.append(
                InputPort(
                    product=products[key],
                    source_port=source_port,
                    source_product=source_port.product if source_port else None,
                    external_name=i.get("external_name", ""),
                    external_kind=i.get("external_kind", ""),
                    description=i.get("description", ""),
                    approved=i.get("approved", False),
                )
            )
    bulk.insert(inputs)


def _import_policies(ctx: _Ctx, domains: dict, products: dict) -> None:
    for item in _load(ctx, "policies.yaml"):
        item = _item(ctx, item, ("key", "title", "rule_type"))
        if item.get("domain") and item["domain"] not in domains:
            raise ctx.fail(f"unknown domain “{item['domain']}”")
        rules.get(item["rule_type"]).clean_params(item.get("parameters"))
        policy = Policy(
            key=item["key"],
            title=item["title"],
            rationale=item.get("rationale", ""),
            rule_type=item["rule_type"],
            parameters=item.get("parameters", {}),
            severity=item.get("severity", Policy.Severity.ADVISORY),
            domain=domains.get(item.get("domain", "")),
            status=item.get("status", Policy.Status.PROPOSED),
            proposed_by=ctx.user(item.get("proposed_by")),
            activated_at=_dt(ctx, item.get("activated_at")),
            retired_at=_dt(ctx, item.get("retired_at")),
        )
        policy.full_clean()
        policy.save()
        for v in item.get("votes") or []:
            _at(ctx, v)
            PolicyVote.objects.create(
                policy=policy,
                voter=ctx.user(v["voter"]),
                decision=v["decision"],
                comment=v.get("comment", ""),
            )
        for w in item.get("waivers") or []:
            _at(ctx, w)
            if w["product"] not in products:
                raise ctx.fail(f"unknown product “{w['product']}”")
            waiver = Waiver.objects.create(
                policy=policy,
                product=products[w["product"]],
                requested_by=ctx.user(w.get("requested_by")),
                justification=w.get("justification", ""),
                status=w.get("status", Waiver.Status.REQUESTED),
                decided_by=ctx.user(w.get("decided_by")),
                decided_at=_dt(ctx, w.get("decided_at")),
                decision_reason=w.get("decision_reason", ""),
                expires_at=_dt(ctx, w.get("expires_at")),
            )
            if w.get("created_at"):
                Waiver.objects.filter(pk=waiver.pk).update(created_at=_dt(ctx, w["created_at"]))
