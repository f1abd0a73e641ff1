"""Generate the tables of ``docs/language.md`` from the code, and keep the site's nav honest.

The language reference holds a few tables that restate what the code defines: the data sources
(:data:`dtg.data.SOURCES`), the targets (:data:`dtg.targets.TARGETS`), the net architectures
(:data:`dtg.nets.ARCHITECTURES`), the objective options (:data:`dtg.check.objectives.OBJECTIVE_OPTIONS`)
and the train options (:data:`dtg.check.objectives.TRAIN_OPTIONS`). Each lives between two markers::

    <!-- BEGIN generated: NAME (python docs/build_reference.py) -->
    …
    <!-- END generated: NAME -->

Run ``python docs/build_reference.py`` to rewrite them after changing the code, and
``python docs/build_reference.py --check`` to fail (exit 1) when they are stale;
``tests/test_docs.py`` runs the same check.

This file is also an MkDocs hook (``hooks:`` in ``mkdocs.yml``): :func:`on_config` drops from the
nav the pages that do not exist yet, so the nav can list the planned pages (samplers, Pyro,
security, distributed) and each appears as soon as its file is written. Importing it does no work.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
LANGUAGE = DOCS / "language.md"

__all__ = ["TABLES", "render_table", "update", "main", "on_config"]

# ----------------------------------------------------------------------------- table builders

#: What each architecture option means (the code holds names and defaults only).
ARCH_OPTION_DOCS: dict[str, dict[str, str]] = {
    "mlp": {
        "hidden": "widths of the hidden layers, e.g. `[128, 128]`",
        "activation": "`silu`, `relu`, `gelu` or `tanh`",
        "zero_init": "`true`: the last layer starts at zero (the net outputs 0 at first)",
        "out_bias": "the last layer's initial bias: with `zero_init`, the net's first output "
        "(PIS's Langevin scale starts at 0.01)",
        "time_dim": "size of the sinusoidal embedding of a `time` input",
    },
    "pis": {
        "hidden": "width of the time and state embeddings and of the joint layers",
        "harmonics": "Fourier frequencies of the time (evenly spaced in [0.1, 100], learned phases)",
        "layers": "hidden `Linear → GELU` layers after the embeddings are added",
        "zero_init": "`true`: the last layer starts at zero (the net outputs 0 at first)",
        "out_bias": "the last layer's initial bias (PIS's Langevin scale starts at 0.01)",
    },
    "transformer": {
        "width": "model width (embedding size); divisible by `heads`",
        "depth": "number of pre-norm encoder layers",
        "heads": "attention heads",
        "dropout": "dropout rate in [0, 1)",
        "causal": "`true`: output `i` reads the inputs at positions `< i` only (a GPT-style "
        "decoder); with `MashLast` and no `time` input every position is scored in one pass",
    },
    "unet": {
        "channels": "base width c (level l has c · mults[l] channels); divisible by `groups`",
        "mults": "one entry per resolution level; H and W must be divisible by 2^(levels − 1)",
        "blocks": "residual blocks per level, on the way down and again on the way up",
        "attention": "the levels (0-based) with self-attention after each residual block "
        "(the middle always has one)",
        "heads": "attention heads; divides the channels of every attending level",
        "groups": "group-norm groups",
        "dropout": "dropout rate in [0, 1) inside the residual blocks",
    },
}


def _code(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _values(spec: Any) -> str:
    """The values an :class:`~dtg.check.objectives.OptionSpec` accepts, as table text."""
    if spec.kind == "choice":
        return " \\| ".join(f"`{c}`" for c in spec.choices)
    if spec.kind == "bool":
        return "`true` \\| `false`"
    what = "integer" if spec.kind == "int" else "number"
    bounds = []
    if spec.low is not None:
        bounds.append(f"{'>' if spec.open_low else '≥'} {spec.low:g}")
    if spec.high is not None:
        bounds.append(f"≤ {spec.high:g}")
    return what + (" " + " and ".join(bounds) if bounds else "")


def table_sources() -> str:
    from dtg.data import REQUIRED, SOURCES

    rows = [
        "| source | options (defaults, in positional order) | gives | what |",
        "|---|---|---|---|",
    ]
    for name, spec in SOURCES.items():
        options = ", ".join(
            f"`{k}`" if v is REQUIRED else f"`{k} = {_plain(v)}`" for k, v in spec.options.items()
        )
        rows.append(f"| `{name}` | {options or '—'} | `{spec.gives}` | {spec.description} |")
    return "\n".join(rows)


def _plain(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def table_targets() -> str:
    from dtg.targets import TARGETS

    rows = ["| target | space | log Z | density |", "|---|---|---|---|"]
    for name, target in TARGETS.items():
        rows.append(
            f"| `{name}` | `real[{target.dim}]` | {target.log_z:.4f} | {target.description} |"
        )
    return "\n".join(rows)


def table_architectures() -> str:
    from dtg.nets import ARCHITECTURES

    rows = ["| architecture | option | default | meaning |", "|---|---|---|---|"]
    for arch, options in ARCHITECTURES.items():
        for i, (option, default) in enumerate(options.items()):
            meaning = ARCH_OPTION_DOCS.get(arch, {}).get(option, "")
            rows.append(
                f"| {f'`{arch}`' if i == 0 else ''} | `{option}` | {_code(default)} | {meaning} |"
            )
    return "\n".join(rows)


def table_objective_options() -> str:
    from dtg.check.objectives import OBJECTIVE_OPTIONS

    rows = ["| objective | option | default | values | meaning |", "|---|---|---|---|---|"]
    for kind, options in OBJECTIVE_OPTIONS.items():
        if not options:
            rows.append(f"| `{kind.value}` | — | | | |")
        for i, (name, spec) in enumerate(options.items()):
            head = f"`{kind.value}`" if i == 0 else ""
            rows.append(
                f"| {head} | `{name}` | {_code(spec.default)} | {_values(spec)} | {spec.doc} |"
            )
    return "\n".join(rows)


def table_train_options() -> str:
    from dtg.check.objectives import TRAIN_OPTIONS

    rows = ["| option | default | values | meaning |", "|---|---|---|---|"]
    for name, spec in TRAIN_OPTIONS.items():
        rows.append(f"| `{name}` | {_code(spec.default)} | {_values(spec)} | {spec.doc} |")
    return "\n".join(rows)


TABLES = {
    "sources": table_sources,
    "targets": table_targets,
    "architectures": table_architectures,
    "objective-options": table_objective_options,
    "train-options": table_train_options,
}

_BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- END generated: (?P=name) -->)",
    re.S,
)


def render_table(name: str) -> str:
    """The text of one generated table (without its markers)."""
    return TABLES[name]() + "\n"


def update(text: str) -> str:
    """``text`` with every generated block rewritten from the code.

    :raises KeyError: a marker names an unknown table.
    """
    return _BLOCK.sub(lambda m: m.group(1) + render_table(m.group("name")) + m.group(4), text)


def generated_names(text: str) -> list[str]:
    """The names of the generated blocks in ``text``, in order."""
    return [m.group("name") for m in _BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table is stale")
    args = parser.parse_args(argv)
    old = LANGUAGE.read_text(encoding="utf-8")
    new = update(old)
    if args.check:
        if new != old:
            print(f"{LANGUAGE} is stale: run python docs/build_reference.py", file=sys.stderr)
            return 1
        print(f"{LANGUAGE}: up to date")
        return 0
    if new != old:
        LANGUAGE.write_text(new, encoding="utf-8")
        print(f"wrote {LANGUAGE}")
    else:
        print(f"{LANGUAGE}: up to date")
    return 0


# ----------------------------------------------------------------------------- MkDocs hook


def _existing(nav: Any, docs_dir: Path) -> Any:
    """``nav`` without the pages whose files do not exist (empty sections dropped)."""
    if isinstance(nav, str):
        return nav if "://" in nav or (docs_dir / nav).is_file() else None
    if isinstance(nav, list):
        kept = [item for item in (_existing(i, docs_dir) for i in nav) if item not in (None, [])]
        return kept
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            kept = _existing(value, docs_dir)
            if kept not in (None, []):
                out[title] = kept
        return out or None
    return nav


def on_config(config: Any) -> Any:
    """MkDocs hook: keep only the nav entries whose pages exist."""
    if config.get("nav"):
        config["nav"] = _existing(config["nav"], Path(config["docs_dir"]))
    return config


#: ``<img src="….svg" …>`` of a diagram in the rendered page.
_SVG_IMG = re.compile(r'<img\s[^>]*src="((?:\.\./)?gallery/[^"]+\.svg)"[^>]*>')


def _inline_svg(match: re.Match, docs_dir: Path) -> str:
    """The diagram's SVG in place of its ``<img>``: its hover texts (each edge's kernel, each
    node's level and space) are then in the page, where an ``<img>`` never shows them."""
    path = docs_dir / match.group(1).removeprefix("../")
    if not path.is_file():
        return match.group(0)
    svg = path.read_text(encoding="utf-8")
    svg = svg[svg.index("<svg") :]  # without the XML prolog, doctype and comments
    return svg.replace(
        "<svg ", '<svg class="dtg-diagram" style="max-width: 100%; height: auto" ', 1
    )


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: inline the diagrams' SVGs (the Markdown keeps ``<img>``, for readers of the
    files on a code-hosting site, where inline SVG is stripped)."""
    docs_dir = Path(config["docs_dir"])
    return _SVG_IMG.sub(lambda m: _inline_svg(m, docs_dir), html)


if __name__ == "__main__":
    sys.exit(main())
