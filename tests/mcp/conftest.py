"""The MCP server over real HTTP: uvicorn serving `agents.server.http_app()` on a free port in
a thread of the test process (so it reads the test database on SQLite too), driven by the
SDK's own client."""

import json
import re
import socket
import threading
from typing import Any

import anyio
import pytest
import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from agents import server
from meshportal.api.auth import token_create
from tests.conftest import wait_for


@pytest.fixture
def mcp_url(transactional_db):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(server.http_app(), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: srv.started or not thread.is_alive(), timeout=30, interval=0.02)
    assert srv.started, "the MCP server did not start"
    yield f"http://127.0.0.1:{port}/mcp"
    srv.should_exit = True
    thread.join(30)
    sock.close()


def token_for(user) -> str:
    return token_create(user=user, name="assistant")[1]


class Result:
    """A tool's answer as the caller reads it: `error` (the reason) or `data` (the JSON)."""

    def __init__(self, raw):
        self.raw = raw
        text = "".join(getattr(c, "text", "") for c in raw.content)
        # The SDK puts "Error executing tool <name>: " before the tool's reason.
        self.error = re.sub(r"^Error executing tool \w+: ", "", text) if raw.is_error else None
        self.data: Any = None
        if not raw.is_error:
            self.data = raw.structured_content or json.loads(text)

    def __repr__(self) -> str:
        return f"Result(error={self.error!r}, data={self.data!r})"


class Agent:
    """An assistant connected with one person's token: each call opens a session (initialize,
    then the request), as a client would after a restart."""

    def __init__(self, url: str, token: str | None):
        self.url, self.token = url, token

    def _run(self, fn):
        async def main():
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            async with (
                create_mcp_http_client(headers=headers) as http,
                streamable_http_client(self.url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await fn(session)

        return anyio.run(main)

    def tools(self):
        return self._run(lambda s: s.list_tools()).tools

    def call(self, name: str, **arguments) -> Result:
        return Result(self._run(lambda s: s.call_tool(name, arguments)))

    def calls(self, *calls: tuple[str, dict]) -> list[Result]:
        """Several calls in one session."""

        async def run(session):
            return [Result(await session.call_tool(n, a)) for n, a in calls]

        return self._run(run)


@pytest.fixture
def agent(mcp_url):
    def connect(user_or_token) -> Agent:
        if user_or_token is None or isinstance(user_or_token, str):
            return Agent(mcp_url, user_or_token)
        return Agent(mcp_url, token_for(user_or_token))

    return connect
