"""Every relative link and anchor in the README and docs/*.md resolves.

The README is a front page that links into docs/ for each topic; a section renamed or
moved must not leave a link dangling. Anchors follow GitHub's rule for heading ids.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's id for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = text.replace("`", "").replace("*", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(paths: list[Path]) -> list[str]:
    problems = []
    for path in paths:
        for number, line in prose_lines(path.read_text(encoding="utf-8")):
            for target in LINK.findall(INLINE_CODE.sub("", line)):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}: {target}"
                linked = (path.parent / file_part).resolve() if file_part else path
                if not linked.exists():
                    problems.append(f"{where}: no such file")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    problems.append(f"{where}: no heading with id {anchor!r} in {linked.name}")
    return problems


def test_every_relative_link_and_anchor_in_the_docs_resolves() -> None:
    # GIVEN the README and every page under docs/
    paths = documents()
    assert len(paths) > 1, "docs/*.md are missing"

    # WHEN each relative link is followed
    problems = broken_links(paths)

    # THEN each names a file that exists and, with an anchor, a heading in it
    assert problems == []


def test_the_readme_links_every_page_under_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {Path(target.partition("#")[0]).name for target in LINK.findall(readme)}
    assert sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name not in linked) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("See [gone](missing.md).", "missing.md: no such file"),
        ("See [there](#nowhere).", "#nowhere: no heading with id 'nowhere'"),
        ("See [a page](other.md#not-there).", "other.md#not-there: no heading with id 'not-there'"),
    ],
)
def test_a_broken_link_or_anchor_is_reported(tmp_path: Path, text: str, problem: str) -> None:
    # GIVEN a page with one broken link, beside a page whose headings it may name
    (tmp_path / "other.md").write_text("# Other\n\n## Time: a delivery starts only if it can finish\n")
    page = tmp_path / "page.md"
    page.write_text(f"# Page\n\n{text}\n\n```\n[ignored](inside-a-fence.md)\n```\n")

    # WHEN the pages are checked THEN that link, and only it, is reported
    problems = broken_links([page])
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_github_heading_ids() -> None:
    assert slug("Locally: `make run FORWARD_TO=...`") == "locally-make-run-forward_to"
    assert slug("Operate it: the `inqueue` CLI") == "operate-it-the-inqueue-cli"
    assert slug("Authentication: IAM (SigV4)") == "authentication-iam-sigv4"
    assert slug("`QueuedStatus=false`") == "queuedstatusfalse"
