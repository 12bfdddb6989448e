"""Resolving Java artifacts from Maven Central into a cached classpath directory."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["cache_root", "java_available", "missing_java_reason", "resolve"]


def cache_root() -> Path:
    return Path(os.environ.get("PYFLUME_PEER_CACHE", Path.home() / ".cache" / "pyflume-peers"))


def missing_java_reason() -> str | None:
    """Why real Java peers cannot run here, or None when java and mvn are both on PATH."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH (needed to fetch and run real peers from Maven Central)"
    return None


def java_available() -> bool:
    return missing_java_reason() is None


def _pom(artifacts: list[str]) -> str:
    deps = []
    for coord in artifacts:
        parts = coord.split(":")
        group, artifact, version = parts[:3]
        extra = f"<type>{parts[3]}</type>" if len(parts) > 3 else ""
        deps.append(f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
                    f"<version>{version}</version>{extra}</dependency>")
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>pyflume.peers</groupId><artifactId>peer</artifactId><version>1</version>"
        "<packaging>pom</packaging><dependencies>" + "".join(deps) + "</dependencies></project>"
    )


def resolve(name: str, artifacts: list[str], timeout: float = 900) -> Path:
    """A directory holding every jar of ``artifacts`` (``group:artifact:version[:type]``) and their dependencies.

    Cached under ``cache_root()/name``; a ``.complete`` marker makes later calls instant. Concurrent callers (pytest
    workers, the benchmark) wait on a lock file instead of downloading twice.
    """
    reason = missing_java_reason()
    if reason:
        raise RuntimeError(reason)
    digest = hashlib.sha1("\n".join(artifacts).encode()).hexdigest()[:8]
    target = cache_root() / f"{name}-{digest}"
    marker = target / ".complete"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        pom = target / "pom.xml"
        pom.write_text(_pom(artifacts))
        proc = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={target / 'lib'}"],
            capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mvn could not resolve {name} ({', '.join(artifacts)}):\n"
                               f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        marker.write_text("\n".join(artifacts) + "\n")
    return target
