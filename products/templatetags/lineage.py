from django import template

from products.lineage.services import is_watching

register = template.Library()


@register.inclusion_tag("products/lineage/domain_watch.html", takes_context=True)
def domain_watch_button(context, domain):
    user = context["request"].user
    return {
        "domain": domain,
        "watching": is_watching(user, domain=domain),
        "csrf_token": context.get("csrf_token"),
    }
