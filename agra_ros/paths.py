"""Where the package's shared files (config/, launch/, shipped weights and tables) live.

A colcon or ``pip install`` build puts config/ and launch/ under ``<prefix>/share/agra_ros``; an editable install
(development, CI) leaves them in the source tree. Look in that order so every entry point finds the same files.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "agra_ros"
PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The directory holding ``config/`` and ``launch/`` for this installation."""
    candidates: list[Path] = [PACKAGE_DIR.parent]  # source tree / editable install first: it is what is edited
    try:  # a sourced ROS distro or colcon install
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset (pip install, no distro)
            pass
    except ImportError:
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE)
    for c in candidates:
        if (c / "config" / "agra.yaml").is_file():
            return c
    return candidates[0]


def config_dir() -> Path:
    return share_dir() / "config"


def config_file(name: str) -> Path:
    """A file in config/, e.g. ``config_file("traces/default.yaml")``."""
    return config_dir() / name


def run_dir(name: str) -> Path:
    """``runs/<name>`` under the working directory: where training, profiling, evaluation and benchmarks write by
    default. Never the installed package: shipped artefacts change only with a tool's explicit ``--ship``."""
    return Path("runs") / name


def docs_dir() -> Path:
    """The source tree's docs/ (README figures); tools write there only with ``--ship``."""
    return PACKAGE_DIR.parent / "docs"


def data_dir() -> Path:
    """Package data shipped inside the Python package (weights, cost tables, pretrained policy)."""
    return PACKAGE_DIR / "data"
