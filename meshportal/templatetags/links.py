"""`{% url %}` with each distinct link reversed once per process (meshportal.links).

Django reverses a link afresh on every render (the resolver walk, the script prefix, quoting:
~40-60 µs a link); the base layout alone has a dozen, a product page about twenty. Loaded as
a template builtin (settings.TEMPLATES), so every template's `{% url %}` is this one. A link
whose arguments are not all strings and numbers (a model instance) is reversed as Django does.
"""

from django import template
from django.template import defaulttags
from django.urls import NoReverseMatch
from django.utils.html import conditional_escape

from meshportal.links import reverse_once

register = template.Library()


class CachedURLNode(defaulttags.URLNode):
    def render(self, context):
        args = tuple(arg.resolve(context) for arg in self.args)
        kwargs = {k: v.resolve(context) for k, v in self.kwargs.items()}
        if any(type(v) not in (str, int) for v in (*args, *kwargs.values())):
            return super().render(context)
        view_name = self.view_name.resolve(context)
        try:  # as Django's URLNode: the request's app namespace, if any
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = reverse_once(view_name, args, kwargs, current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    """Django's `{% url %}`, its answers remembered (see the module's docstring)."""
    node = defaulttags.url(parser, token)
    node.__class__ = CachedURLNode
    return node
