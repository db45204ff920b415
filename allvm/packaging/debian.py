"""Debian source packages for tests, benchmarks and the corpus, fetched at run time.

Third-party source is never committed: `fetch_source("bzip2", dest)` adds a deb-src entry for
bookworm (once), runs `apt-get source --download-only`, and unpacks with dpkg-source. Downloads
are kept in a shared directory so later runs (and CI on the same machine) reuse them.
"""

import fcntl
import glob
import os
import subprocess
import urllib.error
import urllib.request

from allvm.errors import AllvmError

SOURCES_FILE = "/etc/apt/sources.list.d/allvm-deb-src.sources"
SOURCES_ENTRY = """Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def download_dir() -> str:
    return os.environ.get("ALLVM_DEBSRC_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        "build", "debsrc")


def _run(cmd: list[str], cwd: str | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        # apt's errors (`E: ...`) first: its warnings (`W: Download is performed unsandboxed`)
        # come before them and say nothing about the failure.
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        errors = [line for line in lines if line.startswith("E: ")] or lines
        raise AllvmError(f"{' '.join(cmd)} failed: {' '.join(errors)}")


def ensure_deb_src() -> None:
    """Add the bookworm deb-src entry and update the package lists, once per machine."""
    if os.path.exists(SOURCES_FILE):
        return
    with open(SOURCES_FILE + ".tmp", "w") as f:
        f.write(SOURCES_ENTRY)
    os.replace(SOURCES_FILE + ".tmp", SOURCES_FILE)
    _run(["apt-get", "update", "-q"])


def sources_index() -> str:
    """The path of bookworm main's Sources index as apt knows it, the deb-src entry added and
    the index fetched first where they are not; `no deb-src access: ...` otherwise."""
    try:
        ensure_deb_src()
    except (AllvmError, OSError) as e:
        raise AllvmError(f"no deb-src access: {str(e).splitlines()[0]}") from None
    proc = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(FILENAME)", "Created-By: Sources",
         "Codename: bookworm", "Component: main"], capture_output=True, text=True)
    paths = proc.stdout.split()
    if proc.returncode != 0 or not paths:
        raise AllvmError("no deb-src access: apt has no source index (add a deb-src entry "
                         "and run apt-get update)")
    return paths[0]


def source_served(package: str) -> bool:
    """Whether the mirror serves every file of `package`'s source (an HTTP HEAD of each URI
    `apt-get source --print-uris` names). Some mirrors lack files bookworm's index lists (a
    404): such a package cannot be built here, which says nothing about the package."""
    proc = subprocess.run(["apt-get", "source", "--print-uris", "-q", package],
                          capture_output=True, text=True)
    uris = [line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("'")]
    if proc.returncode != 0 or not uris:
        raise AllvmError(f"apt-get source --print-uris {package} failed: "
                         f"{' '.join(proc.stderr.split())}")
    for uri in uris:
        try:
            with urllib.request.urlopen(urllib.request.Request(uri, method="HEAD"),
                                        timeout=60):
                pass
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise AllvmError(f"{uri}: {e}") from None
        except OSError as e:
            raise AllvmError(f"no deb-src access: {uri}: {e}") from None
    return True


def fetch_source(package: str, dest: str) -> str:
    """Unpack Debian's source of `package` as `dest/<package>` (kept if already there).

    Safe to call from several processes at once (a lock per download directory).
    """
    downloads = os.path.join(download_dir(), package)
    os.makedirs(downloads, exist_ok=True)
    with open(os.path.join(downloads, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dscs = glob.glob(os.path.join(downloads, "*.dsc"))
        if not dscs:
            ensure_deb_src()
            try:
                _run(["apt-get", "source", "--download-only", "-q", package], cwd=downloads)
            except AllvmError:  # a partial download must not pass for a complete one
                for partial in os.listdir(downloads):
                    if partial != ".lock":
                        os.unlink(os.path.join(downloads, partial))
                raise
            dscs = glob.glob(os.path.join(downloads, "*.dsc"))
        if not dscs:
            raise AllvmError(f"apt-get source {package}: no .dsc downloaded")
        tree = os.path.join(os.path.abspath(dest), package)
        if not os.path.isdir(tree):
            os.makedirs(dest, exist_ok=True)
            _run(["dpkg-source", "--no-check", "-x", dscs[0], tree], cwd=downloads)
            # dpkg-source links the upstream tarball beside the tree; only the tree is wanted.
            for leftover in glob.glob(os.path.join(dest, f"{package}_*.tar.*")):
                os.unlink(leftover)
    return tree
