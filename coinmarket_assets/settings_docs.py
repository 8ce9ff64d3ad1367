"""What is written from the settings model: docs/settings.md and the environment lists of the
Docker and Kubernetes variants in deploy/. Tests fail when a file differs from what this writes.

    python -m coinmarket_assets.settings_docs --write   # rewrite the files
    python -m coinmarket_assets.settings_docs --check   # exit 1 if one is out of date
"""

import argparse
import re
import sys
from pathlib import Path

from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.settings import (
    Section,
    declared,
    default_text,
    expects,
    is_per_run,
    is_secret,
    variable,
)

PROJECT = Path(__file__).resolve().parents[1]
SETTINGS_MD = PROJECT / "docs" / "settings.md"
DEPLOY = {
    "docker": PROJECT / "deploy" / "dagster.docker.yaml",
    "k8s": PROJECT / "deploy" / "dagster.k8s.yaml",
}
COMMAND = "python -m coinmarket_assets.settings_docs --write"

INTRO = f"""# Settings

<!-- Written by `{COMMAND}` from coinmarket_assets/settings.py: edit the declarations there. -->

Every setting is an environment variable. A blank value means the default. An invalid value
fails naming the variable and what it expects (a secret's value is never shown). The column
*Read* says when the value is read:

- **run**: by each run (or sensor tick) from its environment;
- **run, launchpad**: the same, and the launchpad can override it for one run (resources
  `pipeline_settings` and `source`);
- **load**: once, when the code location loads: it shapes the partitions, the lookbacks, the
  schedule or the sensors; reload the code location after changing it.

A *secret* is masked in every log, event and alert. The Docker variant of `deploy/` passes every
setting to the run containers by name; the Kubernetes variant passes the secrets from the Secret
`coinmarket-secrets` and every other setting by name.
"""


def _read(field_is_per_run: bool, section: type[Section]) -> str:
    if section.read_at == "at load":
        return "load"
    return "run, launchpad" if field_is_per_run else "run"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/settings.md: one table per section of the model."""
    parts = [INTRO]
    current: type[Section] | None = None
    for section, _, field in declared():
        if section is not current:
            current = section
            doc = " ".join((section.__doc__ or "").split())
            parts.append(f"\n## {section.title}\n\n{doc}\n\n")
            parts.append(
                "| Variable | Default | Values | Read | Meaning |\n|---|---|---|---|---|\n"
            )
        read = _read(is_per_run(field), section) + (", secret" if is_secret(field) else "")
        cells = [f"`{variable(field)}`", default_text(field), _cell(expects(field)), read]
        parts.append(f"| {' | '.join(cells)} | {_cell(field.description or '')} |\n")
    return "".join(parts)


def env_vars(variant: str) -> list[str]:
    """The run launcher's ``env_vars`` of a deploy variant: every setting by name (on
    Kubernetes the secrets come from the Secret instead), and Dagster's flags with their value."""
    names = [
        variable(field) for _, _, field in declared() if not (variant == "k8s" and is_secret(field))
    ]
    return names + [f"{name}={value}" for name, value in DAGSTER_FLAGS.items()]


ENV_VARS = re.compile(r"^(?P<indent> *)env_vars:\n(?:(?P=indent) *- .*\n)+", re.MULTILINE)


def with_env_vars(text: str, entries: list[str]) -> str:
    """``text`` (a deploy variant) with its ``env_vars`` list replaced by ``entries``."""
    match = ENV_VARS.search(text)
    if match is None:
        raise ValueError("no env_vars list")
    indent = match["indent"]
    listed = "".join(f"{indent}  - {entry}\n" for entry in entries)
    return text[: match.start()] + f"{indent}env_vars:\n{listed}" + text[match.end() :]


def expected_files() -> dict[Path, str]:
    """Each generated file and the text it must have."""
    files = {SETTINGS_MD: markdown()}
    for variant, path in DEPLOY.items():
        files[path] = with_env_vars(path.read_text(), env_vars(variant))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the generated files")
    action.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        sys.stdout.write(markdown())
        return 0
    stale = [path for path, text in expected_files().items() if _text(path) != text]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(PROJECT)} (run {COMMAND})", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files().items():
        if path in stale:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(PROJECT)}")
    return 0


def _text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
