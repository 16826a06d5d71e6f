"""The pieces the docs tests stand on: if these misread a page, a broken page would pass."""

from __future__ import annotations

from stratum.testing.docs import (
    anchors,
    code_blocks,
    console_steps,
    links,
    missing_lines,
    section,
    shell_commands,
)

PAGE = """# Title

Intro with a [link](other.md#a-heading) and `[not a link](x.md)` in code.

## A heading

1. Step:

   ```yaml file=t.yaml
   kind: Tenant
   metadata:
     name: t
   ```

   ```console
   $ stratum apply -f t.yaml
   tenant/t created
   $ stratum get tenants \\
       -o name
   ...
   tenant/t
   ```

## A heading

```sh
export X=1   # a comment
# only a comment
echo "$X" \\
  done
```
"""


def test_blocks_in_list_items_lose_their_indentation_and_keep_attributes() -> None:
    yaml_block, console, sh = code_blocks(PAGE)
    assert (yaml_block.lang, yaml_block.attribute("file")) == ("yaml", "t.yaml")
    assert yaml_block.text == "kind: Tenant\nmetadata:\n  name: t\n"
    steps = console_steps(console.text)
    assert [s.command for s in steps] == ["stratum apply -f t.yaml", "stratum get tenants -o name"]
    assert steps[1].shown == ("...", "tenant/t")
    assert shell_commands(sh.text) == ["export X=1   # a comment", 'echo "$X" done']


def test_shown_lines_must_each_be_printed_whitespace_aside() -> None:
    printed = "NAME   QUOTA\nspeech-lab    4\n"
    assert missing_lines(["NAME QUOTA", "...", "speech-lab 4"], printed) == []
    assert missing_lines(["speech-lab 5"], printed) == ["speech-lab 5"]
    assert missing_lines(["speech"], printed) == ["speech"], "a line matches whole, not a part"


def test_links_outside_code_and_github_anchors() -> None:
    assert links(PAGE) == [(3, "other.md#a-heading")]
    assert anchors(PAGE) == {"title", "a-heading", "a-heading-1"}
    assert anchors("## `stratum up`: the demo\n") == {"stratum-up-the-demo"}
    assert section(PAGE, "## A heading").startswith("## A heading\n\n1. Step:")
