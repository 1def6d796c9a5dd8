"""MkDocs hooks: the parts of the site that are made from the code.

- `<!-- cli -->` in cli.md becomes the help of `tfprune` and of each of its
  sub-commands, formatted from the argparse parser `tfprune.cli.parser()`
  itself (no subprocess), so the page cannot drift from the command.
- `<!-- methods -->` in methods/index.md becomes the table of registered
  methods, read from `tfprune.available_methods()`.
- The figures of BENCHMARKS.md (`benchmarks/figures/*.png`) are added to the
  site under the same path, so the Results page, which includes
  BENCHMARKS.md with pymdownx.snippets, shows them.

Registered in mkdocs.yml under `hooks:`; excluded from the pages by
`exclude_docs`.
"""

import argparse
import functools
import glob
import os

from mkdocs.structure.files import File

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CLI_MARKER = "<!-- cli -->"
METHODS_MARKER = "<!-- methods -->"
HELP_WIDTH = 88

# Where each built-in method's guide is, relative to methods/index.md.
GUIDES = {"group_l1": "magnitude.md", "group_l2": "magnitude.md", "l1": "magnitude.md",
          "l2": "magnitude.md", "bn": "magnitude.md", "hfp": "hfp.md",
          "ga": "genetic.md", "prunenet": "prunenet.md", "prunetrain": "prunetrain.md",
          "smof": "smof.md"}


def on_files(files, config):
    """Adds benchmarks/figures/*.png, which BENCHMARKS.md links to."""
    root = os.path.dirname(config["config_file_path"])
    for path in sorted(glob.glob(os.path.join(root, "benchmarks", "figures", "*.png"))):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if files.get_file_from_path(rel) is None:
            files.append(File(rel, root, config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if METHODS_MARKER in markdown:
        markdown = markdown.replace(METHODS_MARKER, methods_table())
    return markdown


def _help(parser):
    """`parser`'s --help text, at a fixed width (not the terminal's)."""
    parser.formatter_class = functools.partial(parser.formatter_class, width=HELP_WIDTH)
    return parser.format_help().rstrip()


def _subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def cli_reference():
    """Markdown: `tfprune --help`, then one section per sub-command."""
    from tfprune.cli import parser as make_parser

    parser = make_parser()
    parts = ["### `tfprune`", "", "```text", _help(parser), "```", ""]
    for name, sub in _subcommands(parser).items():
        parts += [f"### `tfprune {name}`", "", "```text", _help(sub), "```", ""]
    return "\n".join(parts)


def _yes(flag):
    return "yes" if flag else ""


def methods_table():
    """Markdown: one row per registered method."""
    import tfprune

    rows = ["| method | kind | what it does | data | latency budgets | options | paper |",
            "|---|---|---|---|---|---|---|"]
    for name, m in tfprune.available_methods().items():
        label = f"[`{name}`]({GUIDES[name]})" if name in GUIDES else f"`{name}`"
        if m.trains:
            data = "training data"
        else:
            data = "calibration data" if m.needs_data else ""
        options = ", ".join(f"`{o.name}={o.default!r}`" for o in m.options)
        if not m.budget:
            options = "no budget; " + options
        summary = m.summary.replace("|", "\\|")
        rows.append(f"| {label} | {m.kind} | {summary} | {data} | {_yes(m.latency)} "
                    f"| {options} | {m.paper} |")
    return "\n".join(rows)
