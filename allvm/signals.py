"""The signal dispositions a program starts with: the ones alley's caller left.

Python ignores SIGPIPE and SIGXFSZ at start-up, so an alley in Python cannot see whether its
caller ignored them (`trap '' PIPE`, as a shell script or `make` may). The native launcher
(allvm/launcher.c) tells it: `-ignored-signals MASK`, bit N set for signal N. Ignored signals
survive exec, caught ones become default; everything else Python changed is set back here.
"""

import _signal

# What CPython changes at start-up (besides SIGINT, which exec resets: it is caught).
_PYTHON_IGNORES = (_signal.SIGPIPE, _signal.SIGXFSZ)
_caller_ignored = 0


def set_caller_ignored(mask: int) -> None:
    """Record the caller's ignored signals (bit N for signal N), as the launcher saw them."""
    global _caller_ignored
    _caller_ignored = mask


def restore_caller_dispositions() -> None:
    """Give the signals Python took over back the dispositions the caller left."""
    for sig in _PYTHON_IGNORES:
        ignored = _caller_ignored >> sig & 1
        _signal.signal(sig, _signal.SIG_IGN if ignored else _signal.SIG_DFL)
