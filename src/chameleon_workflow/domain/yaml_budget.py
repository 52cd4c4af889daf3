"""A budget on how far YAML aliases and merge keys may expand a document.

PyYAML shares the node an alias points to, so composing is linear; but everything that walks
the loaded data afterwards (reading, storing, exporting) sees each alias as a full copy, and
ten nested aliases of ten make 10^10 leaves from a few hundred bytes. :func:`expansion` sizes
the composed node graph as if every alias were copied out, in time linear in the graph (each
node's size is computed once), so a document over budget is refused before it is constructed.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Documents smaller than this are measured as if they had this size, so a short document
# may still reuse an anchor a few dozen times.
MIN_MEASURED_CHARS = 4096


@dataclass(frozen=True)
class YamlBudget:
    """How big a document may become once its aliases and merge keys are expanded.

    ``*_setting`` name the knob that raises each limit, for the refusal message.
    """

    max_nodes: int = 500_000
    max_expansion: float = 10.0
    nodes_setting: str = "max_nodes"
    expansion_setting: str = "max_expansion"

    def max_chars(self, source_chars: int) -> int:
        return int(self.max_expansion * max(source_chars, MIN_MEASURED_CHARS))


DEFAULT_BUDGET = YamlBudget()


@dataclass(frozen=True)
class Expansion:
    """The expanded size of a document: its nodes, and its text (the characters of its
    scalars plus one per node, so empty collections count too)."""

    nodes: int
    chars: int


def expansion(root: yaml.Node, cap: Expansion) -> Expansion:
    """The size of ``root`` with every alias copied out (each figure saturates just past
    ``cap``). A node reached again while it is being sized (an anchor cycle) counts as one
    node; the cycle itself is reported later, when the data is read.
    """
    done: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    while stack:
        node, children = stack.pop()
        key = id(node)
        if children is None:
            if key in done:
                continue
            if isinstance(node, yaml.ScalarNode):
                own = 0 if node.tag == _MERGE_TAG else len(node.value)
                done[key] = (1, 1 + own)
                continue
            children = _children(node)
            open_nodes.add(key)
            stack.append((node, children))
            stack.extend((c, None) for c in children if id(c) not in open_nodes)
            continue
        open_nodes.discard(key)
        nodes = chars = 1
        for child in children:
            n, c = done.get(id(child), (1, 1))
            nodes += n
            chars += c
        done[key] = (min(nodes, cap.nodes + 1), min(chars, cap.chars + 1))
    nodes, chars = done[id(root)]
    return Expansion(nodes, chars)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        # A merge key (``<<: *base``) copies the merged mapping's pairs into this one: its
        # value counts in full, like any other value; the ``<<`` key itself adds one node.
        return [part for pair in node.value for part in pair]
    return list(node.value)


def over_budget(root: yaml.Node, source_chars: int, budget: YamlBudget) -> str | None:
    """Why ``root`` is over ``budget`` (a message naming the limit), or None when within it."""
    cap = Expansion(budget.max_nodes, budget.max_chars(source_chars))
    size = expansion(root, cap)
    how = "once its YAML aliases and merge keys (<<) are expanded"
    fix = "write the repeated parts out, or raise the limit"
    if size.nodes > cap.nodes:
        return (
            f"the document has more than {cap.nodes} nodes {how} (the limit is "
            f"{budget.max_nodes} nodes, setting {budget.nodes_setting}); {fix}"
        )
    if size.chars > cap.chars:
        return (
            f"the document's text grows to more than {cap.chars} characters {how} (the limit "
            f"is {budget.max_expansion:g} times the document's {source_chars} characters, "
            f"counted as at least {MIN_MEASURED_CHARS}; setting {budget.expansion_setting}); {fix}"
        )
    return None
