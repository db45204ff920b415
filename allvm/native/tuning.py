"""Code tuned for one CPU (`$ALLVM_CPU=native`, allvm.native.settings): a module's functions
retargeted to the CPU of the settings.

The target machine's CPU is only a default: clang writes `"target-cpu"`, `"target-features"`
and `"tune-cpu"` on every function it compiles (x86-64 and its baseline features, unless told
otherwise), and those, not the target machine, decide the code of each function. So a tuned
build rewrites them: the settings' CPU, and as features what the CPU has together with what
the function itself asked for (`__attribute__((target("avx2")))` code stays as it was: it runs
behind its own check of the CPU). llvmlite cannot change a string attribute in place: the
attribute groups are rewritten in the module's text, which is parsed again (for a tuned build
only: the default settings never pay for it).
"""

import re

from allvm.ir import parse_module
from allvm.native.settings import CodegenSettings

_ATTRIBUTE_GROUP = re.compile(rb"^attributes #\d+ = \{.*\}$", re.MULTILINE)
_CPU_ATTRIBUTE = re.compile(rb'"(target-cpu|tune-cpu|target-features)"="([^"]*)"')


def is_tuned(settings: CodegenSettings) -> bool:
    """Whether code made with `settings` is for one CPU (the features are spelled out)."""
    return bool(settings.features)


def tuned(module, context, settings: CodegenSettings):
    """`module` itself, or, for settings tuned to a CPU, the module retargeted to it (parsed
    again in `context`)."""
    if not is_tuned(settings):
        return module
    return parse_module(retargeted_text(str(module).encode(), settings), module.name,
                        context=context)


def retargeted_text(text: bytes, settings: CodegenSettings) -> bytes:
    """A module's textual IR with every attribute group's CPU attributes set for `settings`."""
    host = _features(settings.features)

    def attribute(match: re.Match) -> bytes:
        name = match.group(1)
        if name == b"target-features":
            value = _joined(_merged(host, _features(match.group(2).decode())))
        else:
            value = settings.cpu
        return b'"%s"="%s"' % (name, value.encode())

    def group(match: re.Match) -> bytes:
        return _CPU_ATTRIBUTE.sub(attribute, match.group(0))

    return _ATTRIBUTE_GROUP.sub(group, text)


def _features(text: str) -> dict[str, bool]:
    """`+a,-b` as {a: True, b: False}."""
    return {item[1:]: item[0] == "+" for item in text.split(",") if item[:1] in ("+", "-")}


def _merged(host: dict[str, bool], own: dict[str, bool]) -> dict[str, bool]:
    """Each feature on where the CPU has it or the function asked for it."""
    return {name: host.get(name, False) or own.get(name, False) for name in {**host, **own}}


def _joined(features: dict[str, bool]) -> str:
    return ",".join(("+" if on else "-") + name for name, on in sorted(features.items()))
