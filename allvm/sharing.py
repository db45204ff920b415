"""allmux's sharing of identical definitions across the programs of a multicall allexe.

Programs built from one code base carry their own copies of the same library code (coreutils
links gnulib into every program). Only one program ever runs in a process of a muxed binary,
so a definition of program A and an identical one of program B can be one definition — even a
mutable global: A's and B's copies of `exit_failure` are never alive in the same process.

Identity is a content key per local (internal or private) definition of a program's main
module: its name without the `.<n>` suffixes linking adds, and its IR text normalized — its own
name gone, references to other local definitions replaced by their keys (computed by partition
refinement, as a linker's identical code folding does, so recursion and cycles are fine),
references to everything else (libc, the program's exported names) kept by name, named types
replaced by their structure, attribute groups and non-debug metadata by their content, debug
info dropped.

A key is shared by the programs that have exactly one definition with it (two globals of one
program must stay two), when at least two programs do, and only if every local definition it
references is shared too (else one program's code would reach another's private copy). Each
shared copy is renamed `allmux.shared.<key>.<name>` and becomes `linkonce_odr dso_local`, in a
comdat of its name: the linker (lld, or llvm-link in alltogether) keeps one copy; MCJIT, on
alley's in-process path, accepts the repeated weak definitions. Not hidden: alltogether makes
hidden definitions internal to their module before linking, which would keep every copy.
Every program module still holds all of its own code, so what is checked per program
(allvm.policy) is unchanged.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import chain

from allvm.ir import ir_symbol, llvm, parse_module, symbol_name

SHARED_PREFIX = "allmux.shared."
_NAME = r'(?:"[^"]*"|[-\w$.]+)'
_NAMED_LOCAL = r'%(?:"[^"]*"|[-a-zA-Z$._][-\w$.]*)'  # not `%7`: a numbered value (or type)
# One token of IR text: a global reference, a string (never split: it may hold `@`, `;` ...),
# a comment, a named local value or type, an attribute group, a metadata node reference. (The
# lookahead lets the scan skip other characters fast.)
_TOKENS = r'(?=[@";%#!])(?:(@{name})|("[^"]*")|(;[^\n]*)|({local})|(#\d+)|(!\d+))'
_TOKEN = re.compile(_TOKENS.format(name=_NAME, local=_NAMED_LOCAL))
# The same where every `%` token is a type (a variable's line): numbered types too.
_TYPE_TOKEN = re.compile(_TOKENS.format(name=_NAME, local=rf"%{_NAME}"))
_GLOBAL_REF, _STRING, _COMMENT, _LOCAL_REF, _ATTRIBUTES, _METADATA = range(1, 7)
# Top-level lines, each found by the newline before it (a scan for `\n` is fast; the first line
# of a printed module is a comment).
_TYPE_DEFINITION = re.compile(rf"\n(%{_NAME}) = type (.*)")
_ATTRIBUTE_GROUP = re.compile(r"\nattributes (#\d+) = (.*)")
_METADATA_NODE = re.compile(r"\n(!\d+) = (.*)")
_VARIABLE = re.compile(rf"\n(@{_NAME}) = (.*)")
_DEFINE = re.compile(r"\ndefine ([^\n]*)\{\n")
_DECLARE = re.compile(r"\ndeclare [^\n]*")
_BLOCK_ADDRESS = re.compile(rf"blockaddress\((@{_NAME})")
_LOCAL_LINKAGE = re.compile(r"(?:private|internal) ")
# What a variable line defines, after its linkage, visibility, thread-local ... keywords.
_VARIABLE_KIND = re.compile(r"(?:[\w()]+ )*?(global|constant|alias|ifunc) ")
# Placement a shared copy cannot take over: the linker groups or orders such a definition.
_PLACED = re.compile(r"\b(?:section|partition|comdat)\b")
# Debug info: never part of a definition's meaning.
_DEBUG_RECORD = re.compile(r"\n *#dbg_\w+\(.*")
_DEBUG_ATTACHMENT = re.compile(r",? !dbg !\d+")
_LINK_SUFFIX = re.compile(r"(?:\.\d+)+$")
# A function's own named values and labels (numbered ones cannot be a named type's name).
_BODY_NAME = re.compile(rf'\n(?: *({_NAMED_LOCAL}) = |("[^"]*"|[-a-zA-Z$._][-\w$.]*):)')
# In a `define` line, a local name ending a parameter (not one in an attribute's parentheses).
_PARAMETER_NAME = re.compile(rf"(?<!\()({_NAMED_LOCAL})(?=[,)])")
_METADATA_DEPTH = 64  # deeper non-debug metadata is not expanded (its definition is not shared)
# Where `, comdat` goes in a variable's line: before its alignment and metadata attachments.
_VARIABLE_TAIL = re.compile(r'"[^"]*"|(?=, (?:align|code_model|no_sanitize\w*|sanitize_\w+|!\w+) )')
# What may stand between a function's parameters and its comdat.
_FUNCTION_TAIL = re.compile(r"(?: (?:unnamed_addr|local_unnamed_addr|addrspace\(\d+\)|#\d+))*")


@dataclass
class Definition:
    """A local definition of one program's main module, as the key computation sees it."""

    name: str
    offset: int  # where its line (its `define` line, for a function) starts in the module text
    function: bool
    base: str = ""  # the name without linking's `.<n>` suffixes
    digest: bytes = b""  # of its normalized text, local references left out
    refs: list[str] = field(default_factory=list)  # local definitions it references, in order
    # Never shared: an alias, placed in a section, reached by a block address or an alias,
    # or not fully understood.
    pinned: bool = False


def module_definitions(text: str) -> list[Definition]:
    """The local definitions of a module printed as IR text, each with its normalized digest."""
    return _ModuleText(text).definitions()


class _ModuleText:
    """A module's printed IR, split into what normalizing one definition needs."""

    def __init__(self, text: str):
        # The printer puts metadata last, after all code: scan each part for its own lines.
        split = text.find("\n!")
        self.code, metadata = (text, "") if split < 0 else (text[:split], text[split:])
        self.types = dict(_TYPE_DEFINITION.findall(self.code))
        self.attributes = dict(_ATTRIBUTE_GROUP.findall(self.code))
        self.metadata = dict(_METADATA_NODE.findall(metadata))
        self.type_keys: dict[str, str] = {}
        self.metadata_keys: dict[str, tuple[str, list[str]] | None] = {}
        self.variables = [(symbol_name(m[1]), m) for m in _VARIABLE.finditer(self.code)]
        self.functions = [(_defined_name(m[1]), m) for m in _DEFINE.finditer(self.code)]
        self.local = {name for name, line in self.variables if _LOCAL_LINKAGE.match(line[2])}
        self.local |= {name for name, header in self.functions if _LOCAL_LINKAGE.match(header[1])}
        # What the module declares or exports: a reference to anything else (a line this scan
        # did not understand) makes a definition unshareable rather than taken by its name.
        self.external = {name for name, _ in chain(self.variables, self.functions)}
        self.external |= {_defined_name(line[0]) for line in _DECLARE.finditer(self.code)}
        self.external -= self.local
        # Reached other than through its symbol, a definition stays the module's own: a block
        # address or an alias is a label in the definition's section, which in a shared copy
        # the linker may discard.
        self.placed_by_others = {symbol_name(ref) for ref in _BLOCK_ADDRESS.findall(self.code)}
        for _, line in self.variables:
            if not _is_variable(line[2]):
                self.placed_by_others |= {symbol_name(ref) for ref in _global_refs(line[2])}
        # Unnamed types print as `%0`, `%1` ... as a function's unnamed values do: in a function,
        # which a token means is not known here, so the function's key includes what each
        # numbered type is (it is then shared only with modules that have the same ones).
        numbered = [self._type_key(name) for name in self.types if name[1:].isdigit()]
        self.numbered_types = "\0".join(numbered)

    def definitions(self) -> list[Definition]:
        found = []
        for name, line in self.variables:
            if name in self.local:
                found.append(self._definition(name, line, False, line[2], _TYPE_TOKEN,
                                              not _is_variable(line[2])))
        for name, header in self.functions:
            if name in self.local:
                body = self.code[header.end():self.code.index("\n}\n", header.end()) + 1]
                ambiguous = bool(_function_names(header[1], f"\n{body}") & self.types.keys())
                found.append(self._definition(name, header, True,
                                              f"{header[0]}{body}\0{self.numbered_types}",
                                              _TOKEN, ambiguous))
        return found

    def _definition(self, name: str, line: re.Match, function: bool, text: str,
                    tokens: re.Pattern, pinned: bool) -> Definition:
        """`line`: the definition's match of _VARIABLE or _DEFINE; `text`: what it defines."""
        definition = Definition(name, line.start() + 1, function, _LINK_SUFFIX.sub("", name))
        definition.pinned = (pinned or not name or name[0].isdigit() or name.startswith("llvm.")
                             or name in self.placed_by_others
                             or _is_placed(line[1] if function else line[2]))
        text = _DEBUG_ATTACHMENT.sub("", _DEBUG_RECORD.sub("", text))
        normalized = tokens.sub(lambda token: self._normalize(token, definition), text)
        definition.digest = blake2b(f"{definition.base}\0{normalized}".encode(),
                                    digest_size=16).digest()
        return definition

    def _normalize(self, token: re.Match, definition: Definition) -> str:
        kind = token.lastindex
        if kind == _GLOBAL_REF:
            name = symbol_name(token[0])
            if name in self.local:
                definition.refs.append(name)
                return "@<local>"
            # An external symbol: the same name means the same thing in every program.
            definition.pinned |= name not in self.external
            return token[0]
        if kind == _COMMENT:
            return ""
        if kind == _LOCAL_REF:
            return self._type_key(token[0]) if token[0] in self.types else token[0]
        if kind == _ATTRIBUTES:
            return self.attributes[token[0]]
        if kind == _METADATA:
            expanded = self._metadata_key(token[0], 0)
            if expanded is None:
                definition.pinned = True
                return ""
            definition.refs += expanded[1]
            return expanded[0]
        return token[0]

    def _type_key(self, name: str) -> str:
        """A named type by its structure: linking renames types (`%struct.stat.39`), and two
        programs may give one name different structures. (With opaque pointers a type cannot
        contain itself.)"""
        if name not in self.type_keys:
            body = _TYPE_TOKEN.sub(lambda token: self._type_key(token[0])
                                   if token[0] in self.types else token[0], self.types[name])
            self.type_keys[name] = f"%<{body}>"
        return self.type_keys[name]

    def _metadata_key(self, ref: str, depth: int) -> tuple[str, list[str]] | None:
        """A metadata node by its content (TBAA tags, value ranges, loop hints, the possible
        callees of a call), and the local definitions it names; debug info nodes all alike.
        None when not understood: a cycle other than a node naming itself (loop IDs do), a
        chain too deep, a name unknown."""
        if ref in self.metadata_keys:
            return self.metadata_keys[ref]
        node = self.metadata.get(ref)
        if node is None or depth > _METADATA_DEPTH:
            return None
        if re.match(r"(?:distinct )?!DI", node):
            return "!<debug>", []
        self.metadata_keys[ref] = None  # while expanding: reaching it again is a cycle
        refs: list[str] = []
        known = True

        def part(token: re.Match) -> str:
            nonlocal known
            kind = token.lastindex
            if kind == _GLOBAL_REF:
                name = symbol_name(token[0])
                if name in self.local:
                    refs.append(name)
                    return "@<local>"
                known = known and name in self.external
            elif kind == _LOCAL_REF and token[0] in self.types:
                return self._type_key(token[0])
            elif kind == _METADATA and token[0] == ref:
                return "!<self>"
            elif kind == _METADATA:
                expanded = self._metadata_key(token[0], depth + 1)
                if expanded is None:
                    known = False
                    return ""
                refs.extend(expanded[1])
                return expanded[0]
            return token[0]

        key = f"!<{_TOKEN.sub(part, node)}>"
        self.metadata_keys[ref] = (key, refs) if known else None
        return self.metadata_keys[ref]


def _global_refs(text: str) -> list[str]:
    return [t[0] for t in _TOKEN.finditer(text) if t.lastindex == _GLOBAL_REF]


def _defined_name(header: str) -> str:
    """The name a `define` line defines: its first global reference."""
    return symbol_name(_global_refs(header)[0])


def _is_variable(rest: str) -> bool:
    """Whether a `@name = rest` line defines a variable (not an alias or an ifunc)."""
    kind = _VARIABLE_KIND.match(rest)
    return kind is not None and kind[1] in ("global", "constant")


def _function_names(header: str, body: str) -> set[str]:
    """The function's named parameters, values and labels as `%name`: one that is also a
    type's name would make a `%name` token ambiguous to this scan."""
    names = set(_PARAMETER_NAME.findall(header))
    for value, label in _BODY_NAME.findall(body):
        names.add(value or f"%{label}")
    return names


def _is_placed(head: str) -> bool:
    """Whether a definition's line names a section, partition or comdat."""
    return bool(_PLACED.search(re.sub(r'"[^"]*"', '""', head)))


def shared_definitions(programs: list[list[Definition]]) -> list[list[tuple[Definition, str]]]:
    """For each program, its definitions that are shared, each with its shared name."""
    nodes = [(program, d) for program, definitions in enumerate(programs) for d in definitions]
    index = {(program, d.name): i for i, (program, d) in enumerate(nodes)}
    refs = [[index[program, r] for r in d.refs] for program, d in nodes]
    keys = _refine([d.digest if not d.pinned else b"pinned %d" % i
                    for i, (_, d) in enumerate(nodes)], refs)
    shared = _closed_sharing(keys, refs, [program for program, _ in nodes],
                             {i for i, (_, d) in enumerate(nodes) if not d.pinned})
    found: list[list[tuple[Definition, str]]] = [[] for _ in programs]
    for i in sorted(shared):
        program, definition = nodes[i]
        found[program].append((definition, f"{SHARED_PREFIX}{keys[i].hex()}.{definition.base}"))
    return found


def _refine(keys: list[bytes], refs: list[list[int]]) -> list[bytes]:
    """Partition refinement: each node's key extended by its references' keys until no class
    splits. Nodes left with one key are alike all the way down, through any cycles."""
    classes = len(set(keys))
    while True:
        keys = [blake2b(key + b"".join(keys[r] for r in node_refs), digest_size=16).digest()
                for key, node_refs in zip(keys, refs, strict=True)]
        if len(set(keys)) == classes:
            return keys
        classes = len(set(keys))


def _closed_sharing(keys: list[bytes], refs: list[list[int]], owners: list[int],
                    candidates: set[int]) -> set[int]:
    """The candidates that can be shared: each the one definition of its key in its program,
    its key shared by at least two programs, and every definition it references shared."""
    per_program = Counter(zip(keys, owners, strict=True))
    shared = {i for i in candidates if per_program[keys[i], owners[i]] == 1}
    members: dict[bytes, set[int]] = {}
    for i in shared:
        members.setdefault(keys[i], set()).add(i)
    users: list[list[int]] = [[] for _ in keys]
    for i, node_refs in enumerate(refs):
        for r in node_refs:
            users[r].append(i)
    dropped = [i for i in shared if len(members[keys[i]]) < 2
               or any(r not in shared for r in refs[i])]
    while dropped:
        i = dropped.pop()
        if i not in shared:
            continue
        shared.discard(i)
        mates = members[keys[i]]
        mates.discard(i)
        dropped += users[i]  # they would reach this program's own copy from the shared one
        if len(mates) == 1:
            dropped += mates
    return shared


def share_definitions(text: str, shared: list[tuple[Definition, str]], where: str) -> bytes:
    """The bitcode of the module printed as `text` with each shared definition renamed to its
    shared name, `linkonce_odr dso_local`, in a comdat of that name.

    llvmlite cannot set a comdat: the definitions' lines are edited in the text, which is
    parsed again; renaming is left to LLVM (it finds every use)."""
    comdats = {name: f"${ir_symbol(name)[1:]}" for _, name in shared}
    pieces, at = [], 0
    for definition, name in sorted(shared, key=lambda s: s[0].offset):
        end = text.index("\n", definition.offset)
        pieces += [text[at:definition.offset],
                   _shared_line(text[definition.offset:end], comdats[name])]
        at = end
    pieces.append(text[at:])
    pieces += [f"{comdat} = comdat any\n" for comdat in comdats.values()]
    # Its own context: type names then come out as printed, whichever worker parses it.
    module = parse_module("".join(pieces).encode(), where, context=llvm().create_context())
    for definition, name in shared:
        # (llvmlite's get_global_variable finds no local variable; these are no longer local.)
        find = module.get_function if definition.function else module.get_global_variable
        find(definition.name).name = name
    return module.as_bitcode()


def _shared_line(line: str, comdat: str) -> str:
    """A definition's line made `linkonce_odr dso_local` (for its local linkage, which the
    printer puts first) and put in `comdat`."""
    comdat = f"comdat({comdat})"
    if line.startswith("define "):
        line = _shared_linkage(line, len("define "))
        at = _FUNCTION_TAIL.match(line, _parameters_end(line)).end()
        return f"{line[:at]} {comdat}{line[at:]}"
    line = _shared_linkage(line, _VARIABLE.match(f"\n{line}").start(2) - 1)
    tail = next((m for m in _VARIABLE_TAIL.finditer(line) if m[0] == ""), None)
    at = tail.start() if tail else len(line)
    return f"{line[:at]}, {comdat}{line[at:]}"


def _shared_linkage(line: str, at: int) -> str:
    linkage = _LOCAL_LINKAGE.match(line, at)
    return f"{line[:at]}linkonce_odr dso_local {line[linkage.end():]}"


def _parameters_end(header: str) -> int:
    """Where a `define` line's parameter list ends (just after its `)`)."""
    name = next(t for t in _TOKEN.finditer(header) if t.lastindex == _GLOBAL_REF)
    depth = 0
    for token in re.finditer(r'"[^"]*"|[()]', header[name.end():]):
        depth += {"(": 1, ")": -1}.get(token[0], 0)
        if depth == 0 and token[0] == ")":
            return name.end() + token.end()
    raise ValueError(f"no parameter list in {header!r}")
