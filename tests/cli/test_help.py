"""Help with an example for every command, `python -m eventledger`, and shell completion."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from eventledger.cli import app
from tests.cli.conftest import TIMEOUT, Cli, cli_env


def commands(group: TyperGroup, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every command and group under `group`, by the words that name it."""
    found: dict[tuple[str, ...], Any] = {}
    for name, command in group.commands.items():
        found[(*path, name)] = command
        if isinstance(command, TyperGroup):
            found.update(commands(command, (*path, name)))
    return found


ROOT_GROUP = typer.main.get_command(app)
assert isinstance(ROOT_GROUP, TyperGroup)
EVERY = commands(ROOT_GROUP)
LEAVES = sorted(path for path, command in EVERY.items() if not isinstance(command, TyperGroup))
GROUPS = sorted(path for path, command in EVERY.items() if isinstance(command, TyperGroup))
TOP = list(ROOT_GROUP.commands)


def test_the_command_tree_is_what_the_docs_promise() -> None:
    assert TOP == [
        "streams", "show", "tail", "migrate", "forget", "export-subject", "personal-key",
        "relay", "serve", "demo", "top", "projections", "dlq", "keys", "retention",
    ]  # fmt: skip
    assert GROUPS == [("dlq",), ("keys",), ("projections",), ("retention",)]
    assert [p for p in LEAVES if len(p) == 2] == [
        ("dlq", "list"), ("dlq", "retry"), ("dlq", "skip"),
        ("keys", "create"), ("keys", "list"), ("keys", "revoke"), ("keys", "rotate"),
        ("projections", "rebuild"), ("projections", "reset"), ("projections", "status"),
        ("retention", "apply"),
    ]  # fmt: skip


def test_every_command_has_help_with_an_example(cli: Cli) -> None:
    with ThreadPoolExecutor(3) as pool:
        helps = dict(zip(LEAVES, pool.map(lambda p: cli.ok(*p, "--help").out, LEAVES), strict=True))
        group_helps = dict(
            zip(GROUPS, pool.map(lambda p: cli.ok(*p, "--help").out, GROUPS), strict=True)
        )
    for path, text in helps.items():
        words = " ".join(path)
        assert text.startswith(f"Usage: eventledger {words} "), text
        example = re.search(r"Example: (eventledger .+)", text)
        assert example, f"`eventledger {words} --help` shows no example:\n{text}"
        assert example[1].startswith(f"eventledger {words}"), example[1]
        assert "--help" in text
        assert "<list[" not in text, text  # a metavar a person can read
    for path, text in group_helps.items():
        listed = _commands_section(text)
        assert list(listed) == list(EVERY[path].commands)


def test_the_top_level_help_lists_every_command_on_one_line_each(cli: Cli) -> None:
    with ThreadPoolExecutor(3) as pool:
        helps = list(pool.map(lambda args: cli.ok(*args).out, [["--help"], ["-h"]]))
        bare = pool.submit(cli, timeout=TIMEOUT)
    assert helps[0] == helps[1]
    text = helps[0]
    assert text.startswith("Usage: eventledger [OPTIONS] COMMAND [ARGS]...")
    listed = _commands_section(text)
    assert list(listed) == TOP
    assert all(summary for summary in listed.values())
    assert "--debug" in text
    # Bare `eventledger` shows the same help, on stderr (click exits 2: no command given).
    assert bare.result().code == 2
    assert _commands_section(bare.result().err) == listed


def test_keys_create_help_shows_how_to_give_several_scopes(cli: Cli) -> None:
    text = cli.ok("keys", "create", "--help").out
    assert re.search(
        r"^  --scope SCOPE +One of read, write, admin, metrics; repeat", text, re.MULTILINE
    )
    assert "--scope read --scope write" in " ".join(text.split())


def test_version_prints_the_installed_version(cli: Cli) -> None:
    with ThreadPoolExecutor(2) as pool:
        alone, before = pool.map(
            lambda args: cli.ok(*args), [["--version"], ["--version", "streams"]]
        )
    assert alone.out == f"eventledger {importlib.metadata.version('eventledger')}\n"
    assert before.out == alone.out  # eager: it answers before any command runs
    assert "--version" in cli.ok("--help").out


def _commands_section(text: str) -> dict[str, str]:
    """The 'Commands:' part of a help page, name -> summary; each on exactly one line."""
    _, _, section = text.partition("\nCommands:\n")
    assert section, text
    listed: dict[str, str] = {}
    for line in section.rstrip("\n").split("\n"):
        match = re.fullmatch(r"  (\S+) +(\S.*)", line)
        assert match, f"not one line per command: {line!r} in\n{text}"
        listed[match[1]] = match[2]
    return listed


def test_python_dash_m_and_the_console_script_both_run_it(cli: Cli) -> None:
    script = shutil.which("eventledger", path=str(Path(sys.executable).parent))
    assert script, "the console script is not installed beside this Python"
    with ThreadPoolExecutor(2) as pool:
        as_module = pool.submit(cli.ok, "--help")
        as_script = pool.submit(
            subprocess.run,
            [script, "--help"],
            cwd=cli.folder,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert as_script.result().returncode == 0, as_script.result().stderr
        assert as_module.result().out == as_script.result().stdout


@pytest.mark.parametrize(
    ("shell", "markers"),
    [
        ("bash", ["_EVENTLEDGER_COMPLETE=complete_bash", "complete -o default -F"
                  " _eventledger_completion eventledger"]),
        ("zsh", ["#compdef eventledger", "_EVENTLEDGER_COMPLETE=complete_zsh",
                 "compdef _eventledger_completion eventledger"]),
    ],
)  # fmt: skip
def test_show_completion_prints_a_script_for_bash_and_zsh(
    cli: Cli, shell: str, markers: list[str]
) -> None:
    # Typer takes the shell's name as the option's value once shell detection is off;
    # otherwise --show-completion is a flag and detects the shell it runs under.
    env = cli_env(_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    script = cli.ok("--show-completion", shell, env=env).out
    for marker in markers:
        assert marker in script, script
    assert "python" not in script  # named for the console script, even under python -m


def test_completion_offers_commands_subcommands_and_options(cli: Cli) -> None:
    # click's protocol: the program completes when _EVENTLEDGER_COMPLETE says how; bash
    # gives the words and the cursor's word, zsh the line.
    cases = {
        ("pro",): {"projections"},
        ("projections", "re"): {"rebuild", "reset"},
        ("dlq", ""): {"list", "retry", "skip"},
        ("streams", "--p"): {"--prefix"},
    }

    def complete(words: tuple[str, ...], shell: str) -> str:
        line = " ".join(["eventledger", *words])
        if shell == "bash":
            env = cli_env(COMP_WORDS=line, COMP_CWORD=str(len(words)))
        else:
            env = cli_env(_TYPER_COMPLETE_ARGS=line)
        return cli.ok(env={**env, "_EVENTLEDGER_COMPLETE": f"complete_{shell}"}).out

    with ThreadPoolExecutor(3) as pool:
        bash = {words: pool.submit(complete, words, "bash") for words in cases}
        zsh = {words: pool.submit(complete, words, "zsh") for words in cases}
        for words, offered in cases.items():
            assert set(bash[words].result().split()) == offered, words
            zsh_said = zsh[words].result()
            assert zsh_said.startswith("_arguments"), zsh_said
            assert set(re.findall(r'"([^"]+)":', zsh_said)) == offered, words


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_with_the_script_it_is_given(cli: Cli) -> None:
    bin_folder = str(Path(sys.executable).parent)  # where the console script is
    env = cli_env(PATH=f"{bin_folder}:{cli_env().get('PATH', '')}")
    done = subprocess.run(
        [  # noqa: S607 - the shell under test
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            "source <(eventledger --show-completion bash) &&"
            " COMP_WORDS=(eventledger projections re) && COMP_CWORD=2 &&"
            ' _eventledger_completion eventledger && echo "${COMPREPLY[@]}"',
        ],
        cwd=cli.folder,
        env={**env, "SHELL": "/bin/bash"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rebuild", "reset"]
