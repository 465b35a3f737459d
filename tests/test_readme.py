"""The README and the prose docs are real: every `jaxgen ...` line in their code blocks parses with the CLI's
own parser (and its `--set` keys and values are valid for its task), every `python -m MODULE` names a module
that exists, the README's Python API example runs as written (docs/usage.md holds the same copy), the keys
docs/usage.md names exist, and every relative link in them points at an existing file (and heading)."""

import importlib.util
import os
import re
import shlex
from pathlib import Path

import pytest

from jaxgen import cli

REPO = Path(__file__).resolve().parents[1]
# The hand-written pages; docs/walkthrough.md and docs/bench/** are generated and checked by their own tests.
PAGES = ["README.md", "docs/usage.md", "docs/long-runs.md", "docs/results.md", "docs/speed.md"]
TEXT = {page: (REPO / page).read_text() for page in PAGES}
FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.S)
README = TEXT["README.md"]
BLOCKS = FENCE.findall(README)


def block_lines(page, prefix):
    for _, body in FENCE.findall(TEXT[page]):
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(prefix):
                yield line


def jaxgen_lines(pages=PAGES):
    return sorted({(page, line) for page in pages for line in block_lines(page, "jaxgen ")})


def test_readme_has_commands_for_every_task():
    lines = [line for _, line in jaxgen_lines(["README.md"])]
    for task in ("mlp", "ae", "gan"):
        assert any(line.startswith(f"jaxgen train {task} ") for line in lines), task
    assert any(line.startswith("jaxgen sample ") for line in lines)


def test_every_page_with_commands_has_some():
    # a regex that stopped matching would otherwise pass every parametrized test vacuously
    for page in ("README.md", "docs/usage.md", "docs/long-runs.md"):
        assert any(p == page for p, _ in jaxgen_lines()), page


@pytest.mark.parametrize(("page", "line"), jaxgen_lines())
def test_command_parses(page, line):
    argv = shlex.split(line)[1:]
    if "--help" in argv:
        with pytest.raises(SystemExit) as done:
            cli.build_parser().parse_args(argv)
        assert done.value.code == 0
        return
    args = cli.build_parser().parse_args(argv)  # a UserError here means the page is out of date
    if args.command == "train" and args.set:
        from jaxgen import config, tasks

        cls = tasks.config_class(args.task)
        config.make(cls, config.parse_sets(cls, args.set))  # unknown key or bad value: one UserError line


@pytest.mark.parametrize(
    ("page", "line"), sorted({(p, line) for p in PAGES for line in block_lines(p, "python -m ")})
)
def test_python_m_module_exists(page, line):
    module = shlex.split(line)[2]
    assert importlib.util.find_spec(module) is not None, f"{page}: {line}"


def test_readme_python_example_runs(tmp_path, capsys):
    (code,) = [body for lang, body in BLOCKS if lang == "python"]
    # the example as written, on 20 steps (what it shows does not depend on how long it trains)
    assert '"steps": 300, "ckpt_every": 300' in code
    code = code.replace('"steps": 300, "ckpt_every": 300', '"steps": 20, "ckpt_every": 20')
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert "(500, 2)" in capsys.readouterr().out


def test_usage_python_example_is_the_readmes():
    (readme,) = [body for lang, body in BLOCKS if lang == "python"]
    (usage,) = [body for lang, body in FENCE.findall(TEXT["docs/usage.md"]) if lang == "python"]
    assert usage == readme


def test_usage_keys_exist():
    from jaxgen import config, tasks

    rows = re.findall(r"^\| (every task|`\w+`) \| (.+) \|$", TEXT["docs/usage.md"], flags=re.M)
    assert rows
    for who, keys in rows:
        names = re.findall(r"`(\w+)`", keys)
        for task in list(tasks.TASKS) if who == "every task" else [who.strip("`")]:
            missing = set(names) - set(config.fields(tasks.config_class(task)))
            assert not missing, (task, missing)


def slug(heading):
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def relative_links(page):
    # links outside code; a link's text may itself be code
    text = re.sub(r"`[^`\n]*`(?!\])", "", FENCE.sub("", TEXT[page]))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_exist(page):
    links = list(relative_links(page))
    assert links
    for target in links:
        file, _, anchor = target.partition("#")
        path = (REPO / page).parent / file if file else REPO / page
        assert path.exists(), f"{page}: link to {target}: no such file"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page}: link to {target}: no such heading"
