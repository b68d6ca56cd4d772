"""How `make test` hands test files to its xdist workers: longest first.

`--dist loadfile` keeps a file on one worker (its module-scoped mesh or demo is built once),
but hands files out in order of their number of tests. The slowest files have few tests (the
schemathesis shards, the canary probe's roles, the browser walks), so they started last and
one worker ran them alone while the others had finished. Here each file weighs what it took
in the last recorded PostgreSQL run (`tests/durations.json`; files not in it count 0.2 s a
test), the heaviest go first, and the files in SPREAD hand out their tests one by one (they
share nothing worth keeping on one worker). Refresh the record after a change that moves a
file's time a lot:

    make test PYTEST_ARGS=--junitxml=/tmp/run.xml && python -m tests.schedule /tmp/run.xml
"""

import json
import sys
from collections import Counter
from pathlib import Path

from xdist.scheduler import LoadFileScheduling

DURATIONS = Path(__file__).with_name("durations.json")
PER_UNKNOWN_TEST = 0.2  # seconds
SPREAD = {
    "tests/test_api_schemathesis.py",
    "tests/ownership/test_canary_probe.py",
}


class LongestFirst(LoadFileScheduling):
    def __init__(self, config, log=None):
        super().__init__(config, log)
        self.seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
        self.ordered = False

    def _split_scope(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        return nodeid if file in SPREAD else file

    def _weight(self, scope: str, tests: int) -> float:
        file = scope.split("::", 1)[0]
        if file not in self.seconds:
            return PER_UNKNOWN_TEST * tests
        share = 1 / self._tests_in[file] if file in SPREAD else 1
        return self.seconds[file] * share

    def _assign_work_unit(self, node) -> None:
        if not self.ordered:  # the first assignment: the queue is complete, order it once
            self.ordered = True
            self._tests_in = Counter(s.split("::", 1)[0] for s in self.workqueue)
            units = sorted(
                self.workqueue.items(), key=lambda unit: -self._weight(unit[0], len(unit[1]))
            )
            self.workqueue.clear()
            self.workqueue.update(units)
        super()._assign_work_unit(node)


def record(junit_xml: str) -> dict[str, float]:
    """Seconds per test file from a JUnit report (set-up and tear-down included)."""
    import xml.etree.ElementTree as ET  # nosec B405

    seconds: Counter = Counter()
    for case in ET.parse(junit_xml).iter("testcase"):  # noqa: S314  # nosec B314
        seconds[case.get("classname", "").replace(".", "/") + ".py"] += float(case.get("time", 0))
    return {file: round(s, 1) for file, s in sorted(seconds.items()) if s >= 1}


if __name__ == "__main__":
    DURATIONS.write_text(json.dumps(record(sys.argv[1]), indent=1) + "\n")
