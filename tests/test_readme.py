"""The README's commands are real: every `jaxgen ...` line in its code blocks parses with the CLI's own
parser, and its Python API example runs as written."""

import os
import re
import shlex

import pytest

from jaxgen import cli

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)


def jaxgen_lines():
    for _, body in BLOCKS:
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("jaxgen "):
                yield line


def test_readme_has_commands_for_every_task():
    lines = list(jaxgen_lines())
    for task in ("mlp", "ae", "gan"):
        assert any(line.startswith(f"jaxgen train {task} ") for line in lines), task
    assert any(line.startswith("jaxgen sample ") for line in lines)


@pytest.mark.parametrize("line", sorted(set(jaxgen_lines())))
def test_readme_command_parses(line):
    argv = shlex.split(line)[1:]
    if "--help" in argv:
        with pytest.raises(SystemExit) as done:
            cli.build_parser().parse_args(argv)
        assert done.value.code == 0
    else:
        cli.build_parser().parse_args(argv)  # a UserError here means the README is out of date


def test_readme_python_example_runs(tmp_path, capsys):
    (code,) = [body for lang, body in BLOCKS if lang == "python"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert "(500, 2)" in capsys.readouterr().out
