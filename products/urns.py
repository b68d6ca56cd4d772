"""A data product's URN, `urn:mesh:<domain>:<product>`: formatted and parsed here and nowhere
else (model, API routes and filters, serializers, contract import and export)."""

PREFIX = "urn:mesh:"
SLUG = r"[-a-zA-Z0-9_]+"
# For URL patterns: the same named groups as the path form /<domain>/<product>/.
PATTERN = rf"urn:mesh:(?P<domain>{SLUG}):(?P<product>{SLUG})"


def format_urn(domain: str, product: str) -> str:
    return f"{PREFIX}{domain}:{product}"


def parse(ref: str | None, *, path_form: bool = True) -> tuple[str, str] | None:
    """(domain, product) from `urn:mesh:<domain>:<product>` — or, with path_form, from
    `<domain>/<product>` — else None. Says nothing about whether the product exists."""
    ref = (ref or "").strip()
    if ref.startswith(PREFIX):
        parts = ref[len(PREFIX) :].split(":")
    elif path_form:
        parts = ref.strip("/").split("/")
    else:
        return None
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]
