"""Words the portal builds from values: one place for past tenses and plurals, so that messages
never say "denyed", "Watchs" or "1 fields"."""

# Verbs whose past tense is not the verb plus "ed" / "d".
_IRREGULAR_PAST = {"deny": "denied", "apply": "applied", "retry": "retried", "set": "set"}


def past_tense(verb: str) -> str:
    """grant → granted, deny → denied, publish → published, retire → retired."""
    word = verb.lower()
    if word in _IRREGULAR_PAST:
        past = _IRREGULAR_PAST[word]
    elif word.endswith("e"):
        past = word + "d"
    elif word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        past = word[:-1] + "ied"
    else:
        past = word + "ed"
    return past.capitalize() if verb[:1].isupper() else past


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """'1 field', '3 fields', '2 policies' (plural_form when it is not singular + 's')."""
    if n == 1:
        return f"{n} {singular}"
    if plural_form is None:
        if singular.endswith(("s", "x", "ch", "sh")):
            plural_form = singular + "es"
        elif singular.endswith("y") and singular[-2:-1] not in tuple("aeiou"):
            plural_form = singular[:-1] + "ies"
        else:
            plural_form = singular + "s"
    return f"{n} {plural_form}"
