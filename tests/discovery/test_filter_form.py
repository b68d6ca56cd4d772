"""The product filters' form is built once per class (products.filters.DataProductFilter): each
request still validates its own values, and a bad value in one never shows in another's."""

import pytest

from products.filters import DataProductFilter
from products.models import DataProduct
from tests import factories

pytestmark = pytest.mark.django_db


def test_each_request_validates_its_own_values_with_one_form_class():
    domain = factories.build_mesh().orders
    products = DataProduct.objects.all()
    good = DataProductFilter({"status": ["published"], "domain": [domain.slug]}, queryset=products)
    bad = DataProductFilter({"status": ["nonsense"], "domain": ["nowhere"]}, queryset=products)
    assert good.is_valid()
    assert not bad.is_valid()
    assert set(bad.errors) == {"status", "domain"}
    assert good.form.cleaned_data["status"] == ["published"]
    assert list(good.form.cleaned_data["domain"]) == [domain]
    assert type(good.form) is type(bad.form)  # built once
    # the first form's fields are its own, not changed by the second's validation
    assert not good.errors
    assert good.form.fields is not bad.form.fields
