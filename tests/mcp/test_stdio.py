"""`python manage.py mcp` over stdio: an assistant on the same machine, as the person whose
token is in MESH_TOKEN."""

import os
import sys

import anyio
import pytest
from django.core.management import CommandError, call_command
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.conftest import ROOT, database_url_for_subprocess
from tests.factories import build_mesh
from tests.mcp.conftest import Result, token_for


def test_the_stdio_command_refuses_to_start_without_a_valid_token(db, monkeypatch):
    monkeypatch.delenv("MESH_TOKEN", raising=False)
    with pytest.raises(CommandError, match="Set MESH_TOKEN"):
        call_command("mcp")
    monkeypatch.setenv("MESH_TOKEN", "mesh_not-a-token")
    with pytest.raises(CommandError, match="MESH_TOKEN: Invalid or revoked token."):
        call_command("mcp")


@pytest.mark.postgres
def test_stdio_answers_as_the_tokens_person(transactional_db, tmp_path):
    mesh = build_mesh()
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp"],
        cwd=str(ROOT),
        env={
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "MESH_TOKEN": token_for(mesh.consumer),
        },
    )

    async def main():
        with open(tmp_path / "stderr.log", "w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                found = await session.call_tool("search_products", {"status": ["draft"]})
                draft = await session.call_tool(
                    "get_product", {"urn": "urn:mesh:orders:draft-product"}
                )
                asked = await session.call_tool(
                    "request_access",
                    {"urn": "urn:mesh:users:published-product", "purpose": "stdio check"},
                )
                return Result(found), Result(draft), Result(asked)

    found, draft, asked = anyio.run(main)

    assert found.data["total"] == 0
    assert "may not see it" in draft.error
    assert asked.data["status"] == "pending"
    from meshportal.models import AuditEntry

    entry = AuditEntry.objects.get(
        content_type__model="accessrequest", object_id=str(asked.data["id"]), action="create"
    )
    assert (entry.door, entry.actor_name) == ("mcp", "consumer")


@pytest.mark.postgres
def test_the_procfiles_http_process_serves_the_tools(transactional_db, tmp_path):
    """`manage.py mcp --http` as `make run` starts it, against the test database."""
    import socket
    import subprocess

    from tests.conftest import wait_for
    from tests.mcp.conftest import Agent

    mesh = build_mesh()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "mcp.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "mcp", "--http", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url_for_subprocess()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: (
                "Uvicorn running" in (tmp_path / "mcp.log").read_text() or proc.poll() is not None
            )
        )
        assert proc.poll() is None, (tmp_path / "mcp.log").read_text()
        found = Agent(f"http://127.0.0.1:{port}/mcp", token_for(mesh.approved)).call(
            "get_product", urn="urn:mesh:orders:published-product"
        )
        assert found.data["ports"][0]["location"] == "sales.secret_table"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
