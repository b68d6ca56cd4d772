"""The OpenAPI schema class (its own module: drf-spectacular imports DRF's settings, which import
meshportal.api.common)."""

from drf_spectacular.openapi import AutoSchema


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's schema, with readable operation ids for the URN twins of the product
    routes (`products_by_urn_retrieve` rather than `products_urn:mesh::_retrieve`)."""

    def get_operation_id(self):
        return super().get_operation_id().replace("urn:mesh::_", "by_urn_")
