"""The governance and quality API: thin viewsets over policy_services and quality_services,
permission-checked by the one permission model (see governance/*_permissions.py)."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from governance.api.serializers import (
    ComplianceChangeSerializer,
    ComplianceSerializer,
    EvaluationQueuedSerializer,
    IncidentAcknowledgeSerializer,
    IncidentDetailSerializer,
    IncidentResolveSerializer,
    IncidentSerializer,
    PolicyDetailSerializer,
    PolicySerializer,
    QualityCheckSerializer,
    QualityRunSerializer,
    VoteRequestSerializer,
    WaiverDenySerializer,
    WaiverGrantSerializer,
    WaiverSerializer,
)
from governance.filters import (
    ComplianceChangeFilter,
    ComplianceFilter,
    IncidentFilter,
    PolicyFilter,
    QualityCheckFilter,
    QualityRunFilter,
    WaiverFilter,
)
from governance.models import (
    Compliance,
    ComplianceChange,
    Incident,
    Policy,
    PolicyVote,
    QualityCheck,
    QualityRun,
    Waiver,
)
from governance.policies import selectors as policy_selectors
from governance.policies import services as policy_services
from governance.policies.permissions import REQUEST_WAIVER, VOTE
from governance.quality import incidents as incident_services
from governance.quality import selectors as quality_selectors
from governance.quality import services as quality_services
from governance.quality.permissions import ACKNOWLEDGE, RESOLVE
from meshportal.api.common import ERROR_RESPONSES, ErrorSerializer
from meshportal.permissions import DECIDE, EDIT, RETIRE, can, visible
from products.api.views import _PermsPrefetchMixin

# -- policies ----------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(
        summary="Propose a global policy, or adopt one for your own domain",
        responses={201: PolicyDetailSerializer, **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(responses={200: PolicyDetailSerializer, **ERROR_RESPONSES}),
)
class PolicyViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Governance policies. Any domain owner or council delegate proposes a global policy
    (the council votes; a quorum of approvals activates it); a domain's owners adopt policies
    scoped to their domain at once. Council delegates vote; the council (global) or the
    domain's owners retire."""

    lookup_field = "key"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    filterset_class = PolicyFilter
    ordering_fields = ["key", "title", "status", "created_at", "activated_at"]
    object_actions = {"vote": VOTE, "retire": RETIRE}
    queryset = Policy.objects.none()

    def get_serializer_class(self):
        return PolicySerializer if self.action == "list" else PolicyDetailSerializer

    def get_queryset(self):
        qs = policy_selectors.policy_list()
        if self.action != "list":
            qs = qs.prefetch_related(
                Prefetch("votes", queryset=PolicyVote.objects.select_related("voter"))
            )
        return qs

    def perform_create(self, serializer):
        # Who may propose is the service's to say (403 with its message, as on the page).
        policy = policy_services.policy_propose(
            by=self.request.user, **dict(serializer.validated_data)
        )
        serializer.instance = self.get_queryset().get(pk=policy.pk)

    def _detail(self, policy):
        fresh = self.get_queryset().get(pk=policy.pk)
        return Response(PolicyDetailSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Vote approve or reject (council delegates, proposed global policies)",
        request=VoteRequestSerializer,
        responses={200: PolicyDetailSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def vote(self, request, key=None):
        policy = self.get_object()
        s = VoteRequestSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        policy_services.policy_vote(policy=policy, by=request.user, **s.validated_data)
        return self._detail(policy)

    @extend_schema(
        summary="Retire a policy",
        request=None,
        responses={200: PolicyDetailSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request, key=None):
        policy = self.get_object()
        policy_services.policy_retire(policy=Policy.objects.get(pk=policy.pk), by=request.user)
        return self._detail(policy)


class ComplianceViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Each active policy's current outcome on each product you may see, with the reason for
    a failure and whether an active waiver covers it."""

    serializer_class = ComplianceSerializer
    filterset_class = ComplianceFilter
    ordering_fields = ["changed_at", "outcome"]
    queryset = Compliance.objects.none()

    def get_queryset(self):
        return (
            policy_selectors.compliance(user=self.request.user)
            .select_related("policy", "product__domain")
            .order_by("policy__key", "product__domain__slug", "product__slug")
        )

    @extend_schema(
        summary="Evaluate every active policy now (council delegates and platform staff)",
        request=None,
        responses={202: EvaluationQueuedSerializer, **ERROR_RESPONSES},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def evaluate(self, request):
        result = policy_services.evaluate_on_demand(by=request.user)
        detail = (
            "Evaluation queued; results appear in a moment." if result.queued else (result.message)
        )
        return Response({"queued": result.queued, "detail": detail}, status=202)


class ComplianceChangeViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Evaluation history, newest first: a row each time a policy's outcome on a product, or
    its reason, changed (products you may see)."""

    serializer_class = ComplianceChangeSerializer
    filterset_class = ComplianceChangeFilter
    ordering_fields = ["created_at"]
    queryset = ComplianceChange.objects.none()

    def get_queryset(self):
        return policy_selectors.compliance_changes(user=self.request.user).order_by(
            "-created_at", "-pk"
        )


# -- waivers -----------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(
        summary="Ask for a waiver (owners of the product)",
        responses={201: WaiverSerializer, **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(responses={200: WaiverSerializer, **ERROR_RESPONSES}),
)
class WaiverViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Waivers of a policy for one product: its owners ask, council delegates grant (with a
    reason and an expiry) or deny. A granted waiver counts as passing until it expires."""

    serializer_class = WaiverSerializer
    filterset_class = WaiverFilter
    ordering_fields = ["created_at", "status", "expires_at"]
    object_actions = {"grant": DECIDE, "deny": DECIDE}
    queryset = Waiver.objects.none()

    def get_queryset(self):
        return policy_selectors.waiver_queue(user=self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        probe = Waiver(policy=data["policy"], product=data["product"])
        if not can(self.request.user, REQUEST_WAIVER, probe):
            raise PermissionDenied(f"Only owners of {data['product']} ask for its waivers.")
        waiver = policy_services.waiver_request(by=self.request.user, **data)
        serializer.instance = self.get_queryset().get(pk=waiver.pk)

    def _decide(self, request, serializer_class, grant: bool):
        waiver = self.get_object()
        s = serializer_class(data=request.data)
        s.is_valid(raise_exception=True)
        policy_services.waiver_decide(
            waiver=waiver,
            by=request.user,
            grant=grant,
            reason=s.validated_data["decision_reason"],
            expires_at=s.validated_data.get("expires_at"),
        )
        # Read back without the visibility filter: a delegate's sight of a draft ends with the
        # decision (policy_permissions.delegate_sees_draft), but they are answered with it.
        fresh = Waiver.objects.select_related(
            "policy", "product__domain", "requested_by", "decided_by"
        ).get(pk=waiver.pk)
        return Response(WaiverSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Grant a pending waiver (council delegates, not your own request)",
        request=WaiverGrantSerializer,
        responses={200: WaiverSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def grant(self, request, pk=None):
        return self._decide(request, WaiverGrantSerializer, grant=True)

    @extend_schema(
        summary="Deny a pending waiver (council delegates)",
        request=WaiverDenySerializer,
        responses={200: WaiverSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        return self._decide(request, WaiverDenySerializer, grant=False)


# -- quality -----------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(responses={201: QualityCheckSerializer, **ERROR_RESPONSES}),
    retrieve=extend_schema(responses={200: QualityCheckSerializer, **ERROR_RESPONSES}),
    update=extend_schema(responses={200: QualityCheckSerializer, **ERROR_RESPONSES}),
    partial_update=extend_schema(responses={200: QualityCheckSerializer, **ERROR_RESPONSES}),
    destroy=extend_schema(responses={204: None, **ERROR_RESPONSES}),
)
class QualityCheckViewSet(viewsets.ModelViewSet):
    """Quality checks on output ports that have a data source. The owning team defines,
    changes, deletes and runs them; parameters are validated per type as on the check form."""

    serializer_class = QualityCheckSerializer
    filterset_class = QualityCheckFilter
    ordering_fields = ["name", "created_at", "last_run_at", "last_status"]
    object_actions = {"destroy": EDIT, "run": EDIT}
    queryset = QualityCheck.objects.none()

    def get_queryset(self):
        return visible(
            self.request.user,
            QualityCheck.objects.select_related("port__product__domain", "port__data_source"),
        ).order_by("port_id", "name")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        port = data.pop("port")
        if not can(self.request.user, EDIT, port):
            raise PermissionDenied(f"You may not edit {port.product}.")
        check = quality_services.check_create(port=port, by=self.request.user, **data)
        quality_services.run_now(checks=[check], by=self.request.user)  # as the form does
        serializer.instance = self.get_queryset().get(pk=check.pk)

    def perform_update(self, serializer):
        check = quality_services.check_update(
            check=serializer.instance, by=self.request.user, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=check.pk)

    def perform_destroy(self, instance):
        quality_services.check_delete(check=instance, by=self.request.user)

    @extend_schema(
        summary="Run the check now",
        request=None,
        responses={
            202: QualityRunSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Already queued or running."),
            **ERROR_RESPONSES,
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        check = self.get_object()
        runs = quality_services.run_now(checks=[check], by=request.user)
        if not runs:
            return Response(
                {"detail": f"“{check.name}” is already queued or running."},
                status=status.HTTP_409_CONFLICT,
            )
        run = QualityRun.objects.select_related("quality_check__port__product__domain").get(
            pk=runs[0].pk
        )
        return Response(
            QualityRunSerializer(run, context=self.get_serializer_context()).data,
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema_view(
    retrieve=extend_schema(responses={200: QualityRunSerializer, **ERROR_RESPONSES})
)
class QualityRunViewSet(_PermsPrefetchMixin, viewsets.ReadOnlyModelViewSet):
    """Runs of quality checks, newest first: a check's history is `?check=<id>`."""

    def product_of(self, obj):
        return obj.quality_check.port.product

    serializer_class = QualityRunSerializer
    filterset_class = QualityRunFilter
    ordering_fields = ["queued_at", "finished_at", "status"]
    queryset = QualityRun.objects.none()

    def get_queryset(self):
        return visible(
            self.request.user,
            QualityRun.objects.select_related("quality_check__port__product__domain"),
        ).order_by("-queued_at", "-pk")


# -- incidents ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Incidents of the products you may see, open first"),
    retrieve=extend_schema(
        summary="One incident with its timeline",
        responses={200: IncidentDetailSerializer, **ERROR_RESPONSES},
    ),
)
class IncidentViewSet(_PermsPrefetchMixin, viewsets.ReadOnlyModelViewSet):
    """Incidents: a failing quality check or a breached freshness SLO of a product. Opened and
    resolved automatically with the check's state; the product's team acknowledges them and
    resolves them with a note. Filter with `?product=<urn>` and `?status=open`."""

    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    ordering_fields = ["opened_at", "resolved_at", "status"]
    object_actions = {"acknowledge": ACKNOWLEDGE, "resolve": RESOLVE}
    queryset = Incident.objects.none()

    def product_of(self, obj):
        return obj.product

    def get_queryset(self):
        return quality_selectors.incidents_visible(user=self.request.user)

    def get_serializer_class(self):
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentSerializer

    def _answer(self, incident):
        fresh = self.get_queryset().get(pk=incident.pk)
        return Response(IncidentDetailSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Acknowledge an open incident (the product's team)",
        request=IncidentAcknowledgeSerializer,
        responses={200: IncidentDetailSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        incident = self.get_object()
        s = IncidentAcknowledgeSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        incident_services.incident_acknowledge(
            incident=incident, by=request.user, note=s.validated_data.get("note", "")
        )
        return self._answer(incident)

    @extend_schema(
        summary="Resolve an incident with a note (the product's team)",
        request=IncidentResolveSerializer,
        responses={200: IncidentDetailSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        incident = self.get_object()
        s = IncidentResolveSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        incident_services.incident_resolve(
            incident=incident, by=request.user, note=s.validated_data["note"]
        )
        return self._answer(incident)
