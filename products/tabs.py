"""The product page's tabs. Other apps add theirs with `register_tab` (quality, governance,
lineage, contract) so the product view never needs to know about them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    template: str
    context: Callable[[Any, Any], dict] | None = None  # (request, product) -> extra context
    order: int = 50
    # Whether the tab shows the ports' schema fields: only then does the page load them.
    fields: bool = False


_tabs: dict[str, Tab] = {}


def register_tab(tab: Tab) -> None:
    _tabs[tab.key] = tab


def tabs() -> list[Tab]:
    return sorted(_tabs.values(), key=lambda t: t.order)


def get(key: str) -> Tab | None:
    return _tabs.get(key)
