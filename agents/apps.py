from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """The MCP server: AI assistants and agents use the mesh as the person whose token they
    carry. No models; `python manage.py mcp` serves it (stdio, or Streamable HTTP)."""

    name = "agents"
    verbose_name = "AI assistants (MCP)"
