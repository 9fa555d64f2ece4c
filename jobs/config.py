"""Reading job configuration from files: the profile YAMLs in jobs/configs/ and a user's job YAML.

The schema (schemas/config.py) holds the defaults and the merge rules; this module only turns files into layers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import yaml

from schemas.config import CurateConfig, layered

CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigFileError(ValueError):
    """A profile or job file that cannot be used; the message names it."""


def read_yaml(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"{path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def curation_profiles() -> list[str]:
    """The curation profiles: the YAMLs in jobs/configs/ that name themselves (`profile: <file name>`); the folder also
    holds other jobs' examples (training, GRPO)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if read_yaml(p).get("profile") == p.stem)


def profile_layer(name: str) -> dict:
    if name not in curation_profiles():
        raise ConfigFileError(f"unknown profile {name!r} (known: {', '.join(curation_profiles())})")
    return read_yaml(CONFIG_DIR / f"{name}.yaml")


def curate_config(
    profile: str | None = None,
    job: str | Path | dict | None = None,
    direct: dict | None = None,
    overrides: list[str] = (),
) -> CurateConfig:
    """defaults <- profile <- job YAML <- direct settings (--input/--output) <- --set overrides. The profile is
    the one named, else the job's, else `local`."""
    job = read_yaml(job) if isinstance(job, (str, Path)) else (job or {})
    name = profile or job.get("profile") or "local"
    return layered(CurateConfig, profile_layer(name), job, {**(direct or {}), "profile": name}, overrides=overrides)


def one_line(exc: Exception) -> str:
    """A configuration error as one line naming each bad setting (pydantic's own message spans several)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
    return str(exc)


def add_overrides(p: argparse.ArgumentParser, example: str = "quality.thresholds.overall=3.0") -> None:
    """`--set KEY=VALUE`, repeatable: one leaf of the job's config, parsed by that field's type."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a setting, e.g. --set {example} (repeatable)",
    )


def subcommand(
    sub: argparse._SubParsersAction, name: str, help: str, doc: str, add_arguments: Callable, run: Callable
) -> None:
    """Register `s2 NAME`: the module's docstring as its description, `run(args) -> exit code`."""
    p = sub.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def entrypoint(prog: str, doc: str, add_arguments: Callable, run: Callable, argv: list[str] | None) -> int:
    """`python -m jobs.NAME`: the same arguments as the subcommand, parsed and run."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))
