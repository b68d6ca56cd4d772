"""The API's dry run of a contract that would create a product says which product: its URN
(issue 20, item 8), as the real upload's answer does."""

import pytest
from rest_framework.test import APIClient

from products.models import DataProduct

pytestmark = pytest.mark.django_db

CONTRACT = """\
apiVersion: v3.0.2
kind: DataContract
id: returns-contract
version: 1.0.0
status: draft
domain: orders
dataProduct: returns
schema:
  - name: returns
    physicalType: table
    physicalName: sales.returns
    properties:
      - {name: return_id, logicalType: integer, required: true, primaryKey: true}
"""


def test_a_dry_run_names_the_urn_the_product_would_get(mesh):
    ci = APIClient()
    ci.force_login(mesh.member)
    url = "/api/v1/products/orders/returns/contract"
    preview = ci.put(url + "?dry_run=true", data=CONTRACT, content_type="application/yaml")
    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert not body["applied"] and body["created"]
    assert body["urn"] == "urn:mesh:orders:returns"
    assert not DataProduct.objects.filter(slug="returns").exists()
    # The upload itself answers with the same URN; a dry run on the existing product too.
    assert ci.put(url, data=CONTRACT, content_type="application/yaml").json()["urn"] == body["urn"]
    again = ci.put(url + "?dry_run=true", data=CONTRACT, content_type="application/yaml")
    assert again.json()["urn"] == body["urn"]
