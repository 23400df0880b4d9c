"""The README's commands as written: every `make` target exists, and every `python -m`
module runs and takes the options the README gives it (its own `--help` lists them)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    """The commands of the README's bash blocks and inline code, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    inline = re.findall(r"`((?:make|python -m) [^`]+)`", README)
    commands = [line.split(" #")[0].strip() for line in lines] + inline
    return [command for command in commands if command and not command.startswith("#")]


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.M))


def test_every_make_target_in_the_readme_exists() -> None:
    used = {
        word
        for command in readme_commands()
        if "make " in command
        for word in re.findall(r"\bmake ((?:[a-z][\w-]*))", command)
    }
    assert used >= {
        "run",
        "test",
        "ui",
        "serve",
        "tracking-server",
        "deploy",
        "screenshots",
        "reproduce",
    }
    assert used - make_targets() == set()


def test_every_python_module_in_the_readme_takes_its_options() -> None:
    uses: dict[str, set[str]] = {}
    for command in readme_commands():
        # a module's whole name, not the `tasks.` of `tasks.<step>`
        for found in re.finditer(r"python -m ((?:\w+\.)*\w+)(?![.<\w])([^;&|]*)", command):
            module, rest = found[1], found[2]
            if module.split(".")[0] not in {"flows", "tasks"}:
                continue
            words = shlex.split(rest, comments=True) if rest.count('"') % 2 == 0 else []
            uses.setdefault(module, set()).update(w.split("=")[0] for w in words if w[:2] == "--")
    assert {"flows.predict", "tasks.predict", "tasks.promote", "flows.deploy"} <= set(uses)
    helps = {
        module: subprocess.Popen(
            [sys.executable, "-m", module, "--help"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for module in sorted(uses)
    }
    for module, process in helps.items():
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"python -m {module} --help: {out[-500:]}"
        missing = {option for option in uses[module] if option not in out}
        assert not missing, f"python -m {module} does not take {sorted(missing)}"


def test_every_python_module_in_the_readme_is_run_by_a_test() -> None:
    """What each command does is checked where it is run: some test starts every module the
    README runs (this file only checks that the commands parse)."""
    modules = {
        found[1]
        for command in readme_commands()
        for found in re.finditer(r"python -m ((?:flows|tasks)(?:\.\w+)+)(?![.<\w])", command)
    }
    tests = "\n".join(
        path.read_text()
        for path in (ROOT / "tests").rglob("*.py")
        if path.name != Path(__file__).name
    )
    ways = ('"{}"', "-m {}", "from {} import main")  # a subprocess, or its main() in-process
    unrun = {m for m in modules if not any(way.format(m) in tests for way in ways)}
    assert not unrun, f"README modules no test runs: {sorted(unrun)}"
