"""`python manage.py mcp`: the MCP server for AI assistants (docs/agents.md).

stdio (default) for an assistant on this machine, as the person whose token is in MESH_TOKEN;
`--http --port 8001` serves Streamable HTTP at /mcp, each client with its own Bearer token.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from agents import server
from meshportal.api.auth import TokenRefused, token_from_header


class Command(BaseCommand):
    help = "Serve the MCP server: stdio (token in MESH_TOKEN), or Streamable HTTP with --http."

    def add_arguments(self, parser):
        parser.add_argument("--http", action="store_true", help="Serve Streamable HTTP at /mcp.")
        parser.add_argument("--host", default=os.environ.get("MESH_MCP_HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("MESH_MCP_PORT", "8001"))
        )

    def handle(self, *args, **options):
        if options["http"]:
            import uvicorn

            self.stderr.write(
                f"MCP server on http://{options['host']}:{options['port']}/mcp "
                "(Authorization: Bearer <API token>)"
            )
            uvicorn.run(
                server.http_app(host=options["host"]),
                host=options["host"],
                port=options["port"],
                log_level="info",
                proxy_headers=True,
            )
            return
        key = os.environ.get("MESH_TOKEN", "")
        try:
            token = token_from_header(f"Bearer {key}") if key else None
        except TokenRefused as e:
            raise CommandError(f"MESH_TOKEN: {e}") from None
        if token is None:
            raise CommandError("Set MESH_TOKEN to your API token (from /profile/tokens/).")
        server.use_local_token(key)
        server.build_server().run("stdio")
