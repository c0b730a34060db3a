"""What a zip is built for: a Lambda runtime and architecture, in every spelling it needs.

Lambda says ``python3.12`` on ``arm64``; pip wants ``cp312`` and the manylinux tags the
runtime's glibc accepts, the dynamic loader an ELF machine number, requirement markers
``platform_machine``, and bytecode an interpreter of that very version.  They are
derived here from the two names, so they cannot disagree.  Which runtimes exist and
when AWS retires them is :mod:`.runtimes`' job, not this one's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError
from .runtimes import RUNTIMES, RuntimeRetired, check_runtime

#: The newest runtime we support: the longest-lived choice for a new function.
DEFAULT_RUNTIME = RUNTIMES[-1]
#: Lambda's architecture names (the wheel tags say ``aarch64`` for ``arm64``).
ARCHITECTURES = ("x86_64", "arm64")
#: Other names for an architecture (``uname -m``, Docker's), as Lambda spells them.
ARCH_ALIASES = {"aarch64": "arm64", "amd64": "x86_64"}

#: Distributions every Lambda Python runtime already has; bundled only on request.
RUNTIME_DISTRIBUTIONS = (
    "boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3",
)

#: Newest glibc of each runtime's OS: Amazon Linux 2 (3.11) and Amazon Linux 2023.
_GLIBC = {"python3.11": 26, "python3.12": 34, "python3.13": 34, "python3.14": 34}
_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
_ELF_MACHINE = {"x86_64": 62, "arm64": 183}


@dataclass(frozen=True)
class Target:
    """A Lambda runtime and architecture, in the terms wheels and ELF files use."""

    runtime: str
    arch: str

    @classmethod
    def of(cls, runtime: str, arch: str) -> Target:
        try:
            check_runtime(runtime, creating=False)
        except RuntimeRetired as exc:
            raise BundleError(str(exc)) from exc
        if runtime not in RUNTIMES:
            raise BundleError(
                f"runtime {runtime!r} is not supported; choose one of {', '.join(RUNTIMES)}"
            )
        if arch not in ARCHITECTURES:
            raise BundleError(
                f"architecture {arch!r} is not supported; choose one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        return cls(runtime, arch)

    @property
    def version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def abi(self) -> str:
        return "cp3" + str(self.minor)

    @property
    def machine(self) -> str:
        return _MACHINE[self.arch]

    @property
    def glibc_minor(self) -> int:
        return _GLIBC[self.runtime]

    @property
    def elf_machine(self) -> int:
        return _ELF_MACHINE[self.arch]

    @property
    def platforms(self) -> list[str]:
        """Every manylinux tag the runtime's glibc accepts; pip does not expand them."""
        tags = [f"manylinux_2_{m}_{self.machine}" for m in range(self.glibc_minor, 4, -1)]
        legacy = ["manylinux2014", "manylinux2010", "manylinux1"]
        return [*tags, *(f"{name}_{self.machine}" for name in legacy)]

    @property
    def extension_suffix(self) -> str:
        return f".cpython-3{self.minor}-{self.machine}-linux-gnu.so"

    def __str__(self) -> str:
        return f"{self.runtime} on {self.arch} (manylinux glibc 2.{self.glibc_minor})"


def target_environment(target: Target) -> dict[str, str]:
    """Marker variables of the Lambda runtime; runtimes get patch releases, hence .99."""
    return {
        "python_version": target.version, "python_full_version": f"{target.version}.99",
        "implementation_version": f"{target.version}.99", "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "platform_machine": target.machine,
        "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": "",
    }


def is_native(name: str) -> bool:
    """A compiled file by its name (``.so``, or a versioned ``.so.1`` a wheel vendors):
    what must match the target's CPU, Python and glibc."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith((".so", ".pyd")) or ".so." in base


def runtime_name(value: str) -> str:
    """``3.12`` -> ``python3.12``: every command and setting accepts either spelling."""
    value = str(value).strip()
    return value if value.startswith("python") else f"python{value}"


def arch_name(value: str) -> str:
    """``aarch64`` -> ``arm64``, ``amd64`` -> ``x86_64``; Lambda's names unchanged."""
    value = str(value).strip()
    return ARCH_ALIASES.get(value, value)


def find_interpreter(target: Target) -> tuple[str, str] | None:
    """A CPython of the target's minor version on this machine: (path, sys.version)."""
    candidates = []
    if sys.version_info[:2] == (3, target.minor):
        candidates.append(sys.executable)
    on_path = shutil.which(f"python3.{target.minor}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for version in sorted((pyenv_root / "versions").glob(f"3.{target.minor}.*"), reverse=True):
        candidates.append(str(version / "bin" / f"python3.{target.minor}"))
    for candidate in candidates:
        try:
            proc = subprocess.run(
                [candidate, "-I", "-S", "-c",
                 "import sys; print(sys.implementation.name, sys.version_info[1]);"
                 "print(sys.version)"],
                capture_output=True, text=True, timeout=20, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = proc.stdout.splitlines()
        if proc.returncode == 0 and lines and lines[0] == f"cpython {target.minor}":
            return candidate, lines[1].strip()
    return None
