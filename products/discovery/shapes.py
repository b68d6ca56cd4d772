"""A filtered search's filters as a statement's parameters (meshportal.statements): a search
or list with filters chosen is compiled once per shape (which filters, how many values each),
the chosen values parameters, like its words and the reader's drafts."""

import django_filters


def shape_of(fs, cleaned: dict) -> tuple[tuple[tuple[str, int], ...], dict] | None:
    """The chosen filters' shape ((name, number of values), ...) and their values as a
    statement's parameters ({"<name>_<i>": text}); None when a filter's values cannot be
    parameters of a compiled statement (a kind of filter not below). `cleaned`: the filterset's
    valid values, those that narrow nothing left out by the caller or here."""
    shape, values = [], {}
    for name, value in cleaned.items():
        if name == "q" or not chosen(value):
            continue
        texts = _texts(fs.filters[name], value)
        if texts is None:
            return None
        shape.append((name, len(texts)))
        values.update({f"{name}_{i}": text for i, text in enumerate(texts)})
    return tuple(shape), values


def chosen(value) -> bool:
    """Whether a cleaned filter value narrows anything (an empty multiple choice is a none())."""
    from django.db.models.query import EmptyQuerySet

    if isinstance(value, EmptyQuerySet):
        return False
    return value not in (None, "", [], ())


def cleaned(fs, shape: tuple[tuple[str, int], ...], values: dict) -> dict:
    """The inverse of shape_of: the cleaned values the filters of `fs` take for these
    parameters (markers when a statement is compiled, the texts when it cannot be)."""
    return {
        name: _value(fs.filters[name], [values[f"{name}_{i}"] for i in range(n)])
        for name, n in shape
    }


def filtered(qs, fs, shape: tuple[tuple[str, int], ...], values: dict):
    """`qs` narrowed by each filter of the shape, as the search page narrows its matches."""
    for name, value in cleaned(fs, shape, values).items():
        qs = fs.filters[name].filter(qs, value)
    return qs


def _texts(f, value) -> list[str] | None:
    """A filter's cleaned value as the texts its query compares (a model choice by the field
    it is chosen by: a domain's slug)."""
    if isinstance(f, django_filters.ModelMultipleChoiceFilter):
        to_field = f.extra.get("to_field_name")
        return [getattr(obj, to_field) for obj in value] if to_field else None
    if isinstance(f, django_filters.MultipleChoiceFilter):
        return [str(v) for v in value]
    if type(f) is django_filters.CharFilter:
        return [value]
    return None


def _value(f, texts: list[str]):
    if isinstance(f, django_filters.ModelMultipleChoiceFilter):
        # Unsaved rows with a key each: the filter puts them in a set (they hash by their key)
        # and compares the field they are chosen by.
        model, to_field = f.queryset.model, f.extra["to_field_name"]
        return [model(pk=-1 - i, **{to_field: text}) for i, text in enumerate(texts)]
    if isinstance(f, django_filters.MultipleChoiceFilter):
        return texts
    return texts[0]
