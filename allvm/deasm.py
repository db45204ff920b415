"""Inline assembly → IR, where the meaning is known (bc2allvm's default).

Inline asm is not part of the platform: it ties IR to one architecture and hides code from the
optimizer. Two idioms are common in real C and have exact IR equivalents:
  - `bswap $0` / `bswapl $0` / `bswapq $0` on one register → `llvm.bswap.iN`: the operand
    tied to the result (`=r,0`) or in a register of its own (`=r,r`), as clang emits either
    for the same source; the original toolchain replaced both
  - the empty asm with only a memory clobber (a compiler barrier) →
    `fence syncscope("singlethread") acq_rel`
The rewrite works on the module's textual IR, which LLVM prints in one canonical form.
"""

import re

_CALL_ASM = re.compile(
    r'^(?P<indent>\s*)(?P<lhs>%[-\w.$]+ = )?(?:(?:tail|musttail|notail) )?call '
    r'(?P<ty>\w+) asm (?:sideeffect )?(?:alignstack )?(?:inteldialect )?'
    r'"(?P<template>[^"]*)", "(?P<constraints>[^"]*)"\((?P<args>[^)]*)\)(?P<rest>.*)$'
)
_DEFINE = re.compile(r'^define .*@("[^"]+"|[-\w.$]+)\(')
# Clobbers clang adds to every x86 asm statement; they say nothing about the asm itself.
_IMPLICIT_CLOBBERS = {"~{dirflag}", "~{fpsr}", "~{flags}"}
_BSWAP_WIDTHS = {"bswap": ("i32", "i64"), "bswapl": ("i32",), "bswapq": ("i64",)}
# The result's and the one operand's constraints: tied, or each its own register.
_BSWAP_OPERANDS = (["=r", "0"], ["=r", "r"])


def _bswap(m: re.Match) -> str | None:
    mnemonic, _, operand = m["template"].strip().partition(" ")
    if operand.strip() != "$0" or m["ty"] not in _BSWAP_WIDTHS.get(mnemonic, ()):
        return None
    constraints = m["constraints"].split(",")
    if constraints[:2] not in _BSWAP_OPERANDS or not set(constraints[2:]) <= _IMPLICIT_CLOBBERS:
        return None
    ty = m["ty"]
    # `rest` carries the call's attributes and metadata (!dbg), valid on the intrinsic call too.
    return f"{m['indent']}{m['lhs'] or ''}call {ty} @llvm.bswap.{ty}({m['args']}){m['rest']}"


def _barrier(m: re.Match) -> str | None:
    constraints = set(m["constraints"].split(","))
    if m["template"] or m["ty"] != "void" or m["args"] or m["lhs"]:
        return None
    if "~{memory}" not in constraints or not constraints - {"~{memory}"} <= _IMPLICIT_CLOBBERS:
        return None
    metadata = re.sub(r"^ #\d+", "", m["rest"])  # a fence takes no attributes, keeps !dbg
    return f'{m["indent"]}fence syncscope("singlethread") acq_rel{metadata}'


def rewrite_inline_asm(text: str) -> tuple[str, list[str]]:
    """Rewrite known asm idioms in textual IR.

    Returns the new text and the names of functions (or `module asm`) whose asm stays.
    """
    lines = text.split("\n")
    kept: list[str] = []
    function = None
    widths_used = set()
    for i, line in enumerate(lines):
        define = _DEFINE.match(line)
        if define:
            function = define.group(1).strip('"')
        if line.startswith("module asm ") and "module asm" not in kept:
            kept.append("module asm")
        m = _CALL_ASM.match(line)
        if not m:
            continue
        replacement = _bswap(m) or _barrier(m)
        if replacement is None:
            if function not in kept:
                kept.append(function)
            continue
        lines[i] = replacement
        if "@llvm.bswap." in replacement:
            widths_used.add(m["ty"])
    for ty in sorted(widths_used):
        if f"@llvm.bswap.{ty}(" not in text:
            lines.append(f"declare {ty} @llvm.bswap.{ty}({ty})")
    return "\n".join(lines), kept


def deasm_module(module):
    """The module with known inline asm replaced; and where asm stays. Unchanged if none."""
    text = str(module)
    if " asm " not in text and "module asm" not in text:
        return module, []
    new_text, kept = rewrite_inline_asm(text)
    if new_text == text:
        return module, kept
    from allvm.ir import parse_module

    return parse_module(new_text.encode(), module.name), kept
