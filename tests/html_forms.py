"""Read a page's form the way a browser would submit it, so that walkthrough tests can change
a few values and post the rest untouched."""

from html.parser import HTMLParser


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, str]] = []
        self._form: dict[str, str] | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {}
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._form[a["name"]] = a.get("value", "on" if kind == "checkbox" else "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form[self._textarea] = ""
        elif tag == "select" and a.get("name"):
            self._select, self._select_first = a["name"], None
        elif tag == "option" and self._select:
            if self._select_first is None:
                self._select_first = a.get("value", "")
            if "selected" in a:
                self._form[self._select] = a.get("value", "")

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form[self._textarea] += data

    def handle_endtag(self, tag):
        if self._form is None:
            return
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            self._form.setdefault(self._select, self._select_first or "")
            self._select = None
        elif tag == "form":
            self.forms.append(self._form)
            self._form = None


def form_data(html: str, *, containing: str) -> dict[str, str]:
    """The fields of the page's form that has a field named `containing`."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if containing in form:
            return form
    raise AssertionError(f"no form with a field {containing!r}")
