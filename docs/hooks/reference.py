"""MkDocs hook (mkdocs.yml `hooks:`): the CLI reference written from the parser itself, so it
cannot drift from `unified-nlp --help`, and the benchmark results (plots, tables) served
beside the pages that show them.

A page holding the line `<!-- cli-reference -->` gets, in its place, one section per
command with that command's `--help`. Written as a hook because no maintained MkDocs plugin
renders an argparse parser without importing a module by path at build time, which this
does too, but in twelve lines (mkdocs-click is for click, sphinx-argparse for Sphinx).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mkdocs.structure.files import File

MARKER = "<!-- cli-reference -->"
REPO = Path(__file__).resolve().parents[2]
SHARED = ("benchmarks/results",)  # served under the same paths as in the repository
KINDS = {".png", ".md", ".json", ".csv"}


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(prefix, parser)]
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prefix} {name}")
    return found


def cli_reference() -> str:
    from unified_nlp.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the page has one width
    sections = []
    for name, parser in _commands(build_parser(), "unified-nlp"):
        if name == "unified-nlp":
            continue
        level = "#" * min(2 + name.count(" ") - 1, 4)
        sections.append(f"{level} `{name}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    return markdown


def on_files(files, config):
    for root in SHARED:
        for path in sorted((REPO / root).rglob("*")):
            if path.suffix in KINDS and path.is_file():
                rel = path.relative_to(REPO).as_posix()
                if files.get_file_from_path(rel) is None:
                    files.append(File(rel, str(REPO), config["site_dir"], config["use_directory_urls"]))
    return files
