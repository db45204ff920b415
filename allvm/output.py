"""The one place that decides how an output file is written.

Every tool writes through `write_output`: the `-f` rules of the spec, a temporary file in the
target directory, then an atomic rename, so no reader ever sees a half-written file.
"""

import os
import tempfile

from allvm.errors import AllvmError


def check_output_path(path: str, force: bool) -> None:
    """Refuse a directory, and an existing file (even an empty one) unless forced."""
    if os.path.isdir(path):
        raise AllvmError("Output path is a directory!")
    if os.path.lexists(path) and not force:
        raise AllvmError("Output file exists. Use -f flag to force overwrite.")


def write_output(path: str, data: bytes, *, force: bool, executable: bool = False) -> None:
    """Write `data` to `path` atomically (temp file beside it, then rename)."""
    check_output_path(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".allvm-", suffix=".tmp", dir=directory)
    except OSError as e:
        raise AllvmError(f"Could not write '{path}': {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            # mkstemp creates 0600; give the file the mode a normal create would.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), (0o777 if executable else 0o666) & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise AllvmError(f"Could not write '{path}': {e.strerror}") from None
    except BaseException:
        os.unlink(tmp)
        raise
