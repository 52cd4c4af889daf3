"""Safe YAML loading in two steps, compose then construct, so a budget can look in between.

Scanning and parsing use libyaml when PyYAML was built with it (several times faster on a large
document); composing stays in Python, whose recursion limit turns absurd nesting into a
``RecursionError`` (libyaml's own composer recurses in C and would crash the process instead).
Only the safe constructor is used: no Python tags.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

CParser: Any
try:  # libyaml's parser, when PyYAML was built with it
    from yaml import cyaml

    CParser = getattr(cyaml, "CParser", None)
except ImportError:  # pragma: no cover
    CParser = None


class _Composer(Composer, Resolver):
    """PyYAML's composer and resolver over libyaml's event stream."""

    def __init__(self, text: str) -> None:
        parser = CParser(text)
        # Bound straight to the parser's methods: the composer calls them once per event.
        self.check_event = parser.check_event
        self.peek_event = parser.peek_event
        self.get_event = parser.get_event
        self.dispose = parser.dispose
        Composer.__init__(self)
        Resolver.__init__(self)


def compose(text: str) -> yaml.Node | None:
    """The node graph of a single-document ``text`` (None when it holds no document).

    Aliases are the very node their anchor names, so the graph is as big as the text.
    """
    composer: Any = _Composer(text) if CParser is not None else yaml.SafeLoader(text)
    try:
        node: yaml.Node | None = composer.get_single_node()
        return node
    finally:
        composer.dispose()


def construct(root: yaml.Node) -> Any:
    """Python data from a composed node graph, with the safe constructor only."""
    return SafeConstructor().construct_document(root)
