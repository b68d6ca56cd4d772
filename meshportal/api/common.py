"""What every API endpoint shares: permissions from the one permission model, pagination with
counts, and errors as JSON naming the field and the reason (400, never a 500)."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, pagination, parsers, permissions, serializers

from meshportal.pagination import IdsFirstPaginator
from meshportal.permissions import DELETE, EDIT, VIEW, can, refusal


class PortalPermission(permissions.BasePermission):
    """Signed-in users only; object access asks `can()`.

    Views name the action for each of their actions in `object_actions` (default: reads need
    VIEW, writes EDIT, destroy DELETE). Invisible objects are 404, visible but refused 403.
    """

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, obj):
        action = object_action(request, view)
        if can(request.user, action, obj):
            return True
        if action != VIEW and can(request.user, VIEW, obj):
            self.message = refusal(request.user, action, obj)
            return False
        raise exceptions.NotFound()


def object_action(request, view) -> str:
    name = getattr(view, "action", None)
    actions = getattr(view, "object_actions", {})
    if name in actions:
        return actions[name]
    if name == "destroy":
        return DELETE
    return VIEW if request.method in permissions.SAFE_METHODS else EDIT


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, which builds and validates the view's filterset only when the
    request has a parameter other than paging, ordering and format. Without one no filter can
    change the list (a filter given no value leaves the queryset as it is, and none of ours is
    required), and building the filterset's form was ~1 ms of CPU of every unfiltered page."""

    NOT_FILTERS = frozenset({"page", "page_size", "ordering", "format"})

    def filter_queryset(self, request, queryset, view):
        if self.NOT_FILTERS.issuperset(request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


class Pagination(pagination.PageNumberPagination):
    django_paginator_class = IdsFirstPaginator
    page_size_query_param = "page_size"
    max_page_size = 200


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="Path of the bad input, or null.")
    reason = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    # mypy sees Serializer.errors here, but DRF's metaclass takes declared fields off the class.
    errors = ErrorItemSerializer(many=True, required=False)  # type: ignore[assignment]


def flatten_errors(data, path: str = "") -> list[dict]:
    """DRF's nested error structure as a flat list of {field, reason}."""
    out: list[dict] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("non_field_errors", "__all__"):
                sub = path
            elif path:
                sub = f"{path}.{key}"
            else:
                sub = str(key)
            out += flatten_errors(value, sub)
    elif isinstance(data, list):
        if all(not isinstance(v, dict | list) for v in data):
            out += [{"field": path or None, "reason": str(v)} for v in data]
        else:
            for i, value in enumerate(data):
                if value:
                    out += flatten_errors(value, f"{path}[{i}]")
    else:
        out.append({"field": path or None, "reason": str(data)})
    return out


def django_errors(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {k: [m for e in v for m in e.messages] for k, v in exc.error_dict.items()}
    return {"non_field_errors": exc.messages}


def exception_handler(exc, context):
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_errors(exc))
    elif isinstance(exc, IntegrityError):
        exc = exceptions.ValidationError(
            {"non_field_errors": ["This conflicts with an existing object (it must be unique)."]}
        )
    elif isinstance(exc, DataError):
        # e.g. a NUL byte or an over-long value the database refuses: the caller's input.
        exc = exceptions.ValidationError(
            {"non_field_errors": ["A value contains characters or a size the database refuses."]}
        )
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(response.data)
        detail = "; ".join(
            f"{e['field']}: {e['reason']}" if e["field"] else e["reason"] for e in errors
        )
        response.data = {"detail": detail or "Invalid input.", "errors": errors}
    return response


ERROR_RESPONSES = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
}


MAX_JSON_DEPTH = 50  # far deeper than any request body of this API (contracts use the same)


def json_depth_exceeds(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether value nests deeper than limit (iterative: no recursion to exhaust)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def nul_path(value) -> str | None:
    """The path (`params.sql`, `tags[2]`, as flatten_errors writes it) of the first key or string in value that holds
    a NUL byte, or None. Iterative, like json_depth_exceeds."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for k, v in item.items():
                where = f"{path}.{k}" if path else str(k)
                if "\x00" in str(k):
                    return where
                stack.append((v, where))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a depth limit: a 100,000-deep body is a 400 with the reason,
    quickly, not a RecursionError (500) here or in code that walks the data later. A NUL byte
    anywhere (text never holds one; PostgreSQL refuses it) is refused here with its path, so a
    nested value (a check's `params`, a JSON field) is named as a top-level field would be."""

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(too_deep) from None
        if json_depth_exceeds(data):
            raise exceptions.ParseError(too_deep)
        where = nul_path(data)
        if where is not None:
            raise exceptions.ValidationError(
                {where or "non_field_errors": ["Contains a NUL byte, which text may not hold."]}
            )
        return data
