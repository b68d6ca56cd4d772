from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """whitenoise's hashed, compressed storage, minus source-map rewriting.

    The vendored Bootstrap files name source maps we do not ship; rewriting those comments
    would make collectstatic fail on the missing .map files. Browsers ignore a missing map.
    """

    patterns = tuple(
        (glob, tuple(p for p in rules if "sourceMappingURL" not in str(p)))
        for glob, rules in CompressedManifestStaticFilesStorage.patterns
    )
