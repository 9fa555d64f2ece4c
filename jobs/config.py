"""Reading job configuration from files: the profile YAMLs in jobs/configs/ and a user's job YAML.

The schema (schemas/config.py) holds the defaults and the merge rules; this module only turns files into layers.
"""

from __future__ import annotations

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
