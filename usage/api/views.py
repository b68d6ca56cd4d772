"""The usage API: send query logs (OTLP/JSON or the portal's JSON batch) and read a product's
usage. Thin: formats read the body, services write, selectors read."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from meshportal.api.common import ERROR_RESPONSES
from products import selectors as product_selectors
from usage import formats, selectors, services
from usage.analytics import analytics_json, portal_analytics
from usage.permissions import may_ingest, may_see_analytics


class IngestResultSerializer(serializers.Serializer):
    ingest = serializers.IntegerField(help_text="The ingest run's id.")
    events = serializers.IntegerField(help_text="Queries received (an event's count included).")
    unparsed = serializers.IntegerField(help_text="Queries whose SQL could not be parsed.")
    matched = serializers.IntegerField(help_text="Queries that read or wrote a product's port.")


def _invalid(errors: list[dict], detail: str) -> Response:
    return Response({"detail": detail, "errors": errors}, status=status.HTTP_400_BAD_REQUEST)


class IngestView(generics.GenericAPIView):
    """Send one batch of query logs of a data source (`?source=<slug>`).

    The body is OpenTelemetry OTLP/JSON (`resourceSpans` with database spans carrying
    `db.query.text` or `db.statement`, `db.user`, `startTimeUnixNano` and optionally
    `db.response.returned_rows`; or `resourceLogs`), or the portal's batch
    `{"events": [{"user", "query", "timestamp", "rows"?, "count"?}]}`. A batch with any bad
    record is refused as a whole (400, each bad record named with its reason); SQL that cannot
    be parsed is counted, not refused. Platform staff, or accounts holding the
    `usage.ingest_queryevent` permission.
    """

    serializer_class = IngestResultSerializer

    def check_permissions(self, request):
        super().check_permissions(request)
        if not may_ingest(request.user):
            raise exceptions.PermissionDenied(
                "Only the platform team, or an account it allows to send query logs "
                "(usage.ingest_queryevent), may ingest usage."
            )

    @extend_schema(
        summary="Ingest query logs (OTLP/JSON or JSON batch)",
        parameters=[
            OpenApiParameter(
                "source", str, OpenApiParameter.QUERY, required=True,
                description="The data source's slug (its kind gives the SQL dialect).",
            )
        ],
        request=OpenApiTypes.OBJECT,
        responses={201: IngestResultSerializer, **ERROR_RESPONSES},
    )  # fmt: skip
    def post(self, request):
        source = services.source_for(request.query_params.get("source", ""))
        data = request.data
        if isinstance(data, dict) and ({"resourceSpans", "resourceLogs"} & set(data)):
            records, errors = formats.read_otlp(data)
        else:
            records, errors = formats.read_batch(data)
        if errors:
            return _invalid(
                [e.as_dict() for e in errors],
                f"{len(errors)} bad record{'s' if len(errors) != 1 else ''}; nothing was stored.",
            )
        limit = settings.MESH_USAGE_MAX_BATCH_EVENTS
        if len(records) > limit:
            return _invalid(
                [{"field": "events", "reason": f"At most {limit} events per request."}],
                f"At most {limit} events per request; nothing was stored.",
            )
        run = services.usage_ingest(source=source, records=records, door="api", by=request.user)
        return Response(
            {
                "ingest": run.pk,
                "events": run.events,
                "unparsed": run.unparsed,
                "matched": run.matched,
            },
            status=status.HTTP_201_CREATED,
        )


class ProductUsageView(generics.GenericAPIView):
    """A product's usage over the last 30 days: queries per day and distinct consumers for
    whoever sees the product; the consumers by name (and the unmanaged ones) for its owners;
    their own principals' usage for everyone else."""

    @extend_schema(
        summary="A product's usage",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **ERROR_RESPONSES},
    )
    def get(self, request, domain, product):
        obj = product_selectors.product_get(user=request.user, domain=domain, product=product)
        if obj is None:
            raise exceptions.NotFound("No such data product, or you may not see it.")
        usage = selectors.product_usage(user=request.user, product=obj)
        body: dict = {
            "product": obj.urn,
            "days": [{"day": d.isoformat(), "queries": n} for d, n in usage["days"]],
            "total_queries": usage["total_queries"],
            "distinct_consumers": usage["distinct_consumers"],
        }
        if usage["may_see_consumers"]:
            body["consumers"] = [
                {
                    "principal": c.principal,
                    "maps_to": c.who or None,
                    "queries": c.queries,
                    "last_day": c.last_day.isoformat(),
                    "managed": c.managed,
                }
                for c in usage["consumers"]
            ]
        else:
            body["own"] = [
                {
                    "principal": r["principal"],
                    "queries": r["queries"],
                    "last_day": r["last_day"].isoformat(),
                }
                for r in usage["own"]
            ]
        return Response(body)


class AnalyticsView(generics.GenericAPIView):
    """Portal analytics (the `/analytics/` page's figures): active people, top products by page
    views, queries, watchers and access requests, top searches and searches that found nothing,
    time from access request to decision, policy compliance per evaluation run. Platform staff
    only."""

    def check_permissions(self, request):
        super().check_permissions(request)
        if not may_see_analytics(request.user):
            raise exceptions.PermissionDenied("Portal analytics are the platform team's.")

    @extend_schema(
        summary="Portal analytics",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **ERROR_RESPONSES},
    )
    def get(self, request):
        return Response(analytics_json(portal_analytics()))
