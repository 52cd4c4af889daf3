"""Every YAML block in docs/ does what the docs say it does (see docs/workflows.md, the end)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from chameleon_workflow.domain.errors import DefinitionInvalid
from chameleon_workflow.engine.templates import validate_yaml

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"(?:^<!-- (?P<mark>[^>]*?) -->\n)?^```ya?ml\n(?P<body>.*?)^```$", re.M | re.S)
MISSING_SECTION = re.compile(r"the workflow has no '(roles|interactions|components)' section$")


def _blocks() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text[: match.start("body")].count("\n")
            found.append((f"{path.name}:{line}", match["mark"] or "valid", match["body"]))
    return found


BLOCKS = _blocks()


def test_the_docs_have_yaml_blocks_of_every_kind() -> None:
    kinds = {mark.split(":")[0] for _, mark, _ in BLOCKS}
    assert {"valid", "invalid", "warns", "excerpt"} <= kinds


def _listed(mark: str) -> set[str]:
    return {word.strip() for word in mark.split(":", 1)[1].split(",")}


@pytest.mark.parametrize(("where", "mark", "body"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_a_docs_yaml_block_behaves_as_marked(where: str, mark: str, body: str) -> None:
    kind = mark.split(":")[0]
    if kind == "valid":
        assert [str(w) for w in validate_yaml(body).warnings] == []
    elif kind == "warns":
        assert _listed(mark) <= {w.code for w in validate_yaml(body).warnings}
    elif kind == "invalid":
        with pytest.raises(DefinitionInvalid) as caught:
            validate_yaml(body)
        assert _listed(mark) <= {v.rule for v in caught.value.violations}
    elif kind == "excerpt":
        with pytest.raises(DefinitionInvalid) as caught:
            validate_yaml(body)
        others = [str(v) for v in caught.value.violations if not MISSING_SECTION.search(v.message)]
        assert others == []
    elif kind == "config":
        assert isinstance(yaml.safe_load(body), dict)
    else:
        pytest.fail(f"{where}: unknown mark <!-- {mark} --> (see docs/workflows.md)")
