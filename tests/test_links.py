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


# -- {% url %} in every template (meshportal.templatetags.links, a template builtin) ----------


def _render(text: str, **context) -> str:
    from django.template import engines

    return engines["django"].from_string(text).render(context)


def test_the_url_tag_gives_djangos_links_and_follows_the_prefix(prefix):
    assert _render("{% url 'domains:team' team='a-b' %}") == "/teams/a-b/"
    assert _render("{% url 'domains:team' t %}", t="x") == reverse("domains:team", args=["x"])
    prefix("/portal/")
    assert _render("{% url 'domains:team' team='a' %}") == "/portal/teams/a/"


def test_the_url_tag_keeps_djangos_errors_and_as_var():
    from django.urls import NoReverseMatch

    with pytest.raises(NoReverseMatch):
        _render("{% url 'domains:team' %}")
    # `as var`: a link that does not exist is empty, not an error
    assert _render("{% url 'domains:team' as link %}[{{ link }}]") == "[]"
    assert _render("{% url 'domains:team' team='a' as link %}[{{ link }}]") == "[/teams/a/]"


def test_the_url_tag_reverses_an_object_argument_as_django_does():
    """An argument that is not a string or number (it names itself with str()) is not kept."""

    class Named:
        def __str__(self) -> str:
            return "named"

    assert _render("{% url 'domains:team' team=t %}", t=Named()) == "/teams/named/"
