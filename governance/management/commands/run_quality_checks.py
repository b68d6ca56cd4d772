import time

from django.core.management.base import BaseCommand, CommandError

from governance.models import QualityCheck, QualityRun
from governance.quality import services
from meshportal.audit import audit_context
from products import urns

DONE = {"passed", "failed", "error"}


class Command(BaseCommand):
    help = (
        "Run quality checks once (every enabled check, or one product's) through the same "
        "services as the 'Run now' button, and print the results. Without --here or --wait the "
        "runs are queued for the workers. Exits 1 when a check failed or could not run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--product", metavar="URN", help="urn:mesh:<domain>:<product>")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--here", action="store_true", help="run in this process (no worker needed)"
        )
        mode.add_argument(
            "--wait", action="store_true", help="queue for the workers and wait for the results"
        )
        parser.add_argument(
            "--timeout", type=float, default=300, help="seconds --wait waits (default 300)"
        )

    def handle(self, *args, product=None, here=False, wait=False, timeout=300.0, **options):
        checks = QualityCheck.objects.filter(enabled=True).select_related("port__product__domain")
        if product:
            ref = urns.parse(product, path_form=False)
            if ref is None:
                raise CommandError(f"Not a product URN: {product} (urn:mesh:<domain>:<product>).")
            checks = checks.filter(port__product__domain__slug=ref[0], port__product__slug=ref[1])
        checks = list(checks.order_by("port__product__domain__slug", "port__product__slug", "pk"))
        if not checks:
            self.stdout.write("No enabled quality checks to run.")
            return
        with audit_context(door="command"):
            runs = services.run_now(checks=checks)
            ids = [r.pk for r in runs]
            skipped = len(checks) - len(ids)
            if here:
                services.execute_runs(run_ids=ids)
        if skipped:
            self.stdout.write(f"{skipped} check(s) already queued or running: not run again.")
        if not (here or wait):
            self.stdout.write(f"Queued {len(ids)} run(s) for the workers.")
            return
        deadline = time.monotonic() + timeout
        while wait and QualityRun.objects.filter(pk__in=ids).exclude(status__in=DONE).exists():
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Timed out after {timeout:.0f} s waiting for the workers "
                    "(is `celery worker` running?); the runs stay queued."
                )
            time.sleep(0.5)  # polling the database for results the workers write
        self._report(ids)

    def _report(self, ids: list[int]) -> None:
        bad = 0
        runs = QualityRun.objects.filter(pk__in=ids).select_related("quality_check__port__product")
        for run in runs.order_by("quality_check__port__product__name", "quality_check__name"):
            product = run.quality_check.port.product
            line = f"{run.status.upper():7} {product.urn} · {run.quality_check.name}"
            if run.threshold:
                line += f" (observed {run.observed}, expected {run.threshold})"
            if run.status != "passed":
                bad += 1
                line += f": {run.message}" if run.message else ""
            style = self.style.SUCCESS if run.status == "passed" else self.style.ERROR
            self.stdout.write(style(line))
        self.stdout.write(f"{len(ids) - bad} passed, {bad} failed or could not run.")
        if bad:
            raise SystemExit(1)
