"""The load test's users (run by `python -m bench.load`, which writes the plan this reads).

Each simulated person is a different signed-in portal user (their own session cookie, so the
per-user API throttle applies to each as in real life). They browse (home, search, domain and
product pages) and call the API (product list, detail, contract export), with a think time
between requests. The plan file (LOAD_PLAN) holds the sessions and the objects to visit.
"""

import itertools
import json
import os
import random

from locust import HttpUser, between, task

PLAN = json.loads(open(os.environ["LOAD_PLAN"]).read())  # noqa: SIM115
WAIT = [float(x) for x in os.environ.get("LOAD_WAIT", "2,8").split(",")]
_sessions = itertools.cycle(PLAN["sessions"])


class PortalUser(HttpUser):
    wait_time = between(*WAIT)

    def on_start(self):
        self.client.cookies.set(PLAN["cookie_name"], next(_sessions))
        self.rng = random.Random()  # noqa: S311 - picking pages, not secrets

    def product(self) -> tuple[str, str]:
        return tuple(self.rng.choice(PLAN["products"]))

    def get(self, url: str, name: str):
        with self.client.get(url, name=name, catch_response=True, allow_redirects=False) as r:
            # A redirect (to the sign-in page) is a failure too: every user is signed in.
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")

    @task(2)
    def home(self):
        self.get("/", "home")

    @task(3)
    def search(self):
        self.get(f"{PLAN['search']}?{self.rng.choice(PLAN['searches'])}", "search")

    @task(1)
    def domain(self):
        self.get(f"/domains/{self.rng.choice(PLAN['domains'])}/", "domain page")

    @task(3)
    def product_page(self):
        domain, product = self.product()
        self.get(f"/products/{domain}/{product}/", "product page")

    @task(1)
    def api_list(self):
        self.get(f"/api/v1/products/?page={self.rng.randint(1, 20)}", "API product list")

    @task(1)
    def api_detail(self):
        domain, product = self.product()
        self.get(f"/api/v1/products/{domain}/{product}/", "API product detail")

    @task(1)
    def contract(self):
        domain, product = self.product()
        self.get(f"/api/v1/products/{domain}/{product}/contract", "API contract export")
