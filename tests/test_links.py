"""meshportal.links: reverse() remembered per URLconf and script prefix, and `reversing()`, which
reads those two once for a block of many links (a list's rows)."""

import pytest
from django.urls import reverse, set_script_prefix

from meshportal.links import cached_reverse, reversing


@pytest.fixture
def prefix():
    yield set_script_prefix
    set_script_prefix("/")


def test_the_answer_follows_the_script_prefix(prefix):
    assert cached_reverse("domains:team", team="a") == reverse("domains:team", kwargs={"team": "a"})
    prefix("/portal/")
    assert cached_reverse("domains:team", team="a") == "/portal/teams/a/"


def test_reversing_binds_the_prefix_for_its_block_only(prefix):
    prefix("/portal/")
    with reversing():
        assert cached_reverse("domains:team", team="a") == "/portal/teams/a/"
        with reversing():  # nested: the inner block ends without unbinding the outer
            pass
        assert cached_reverse("products:tag", tag="b") == "/portal/tags/b/"
    prefix("/")
    assert cached_reverse("domains:team", team="a") == "/teams/a/"
    with pytest.raises(RuntimeError), reversing():
        raise RuntimeError  # an error inside still unbinds
    prefix("/other/")
    assert cached_reverse("domains:team", team="a") == "/other/teams/a/"
