"""Profiles from real runs (PGO): `allready -profile-run "CMD ARGS" ALLEXE`.

llvmlite 0.50 exposes neither LLVM's PGO passes (PGOOptions, pgo-instr-gen/-use) nor a textual
pipeline, and the indexed profile LLVM's profile reader takes is written by llvm-profdata, which
this toolchain does not have. So the pipeline counts itself, on each module's textual IR as the
allexe holds it (before any further optimization):

- Sites, in the order the text has them (the same walk for both builds, so a counter's index
  is its identity): every function's entry (one counter), every conditional `br` (two: false,
  true) and every `switch` (one per destination: default, then the cases in order).
- The instrumented build adds the counter increments before each site, a counter array per
  module and a constructor that registers it with a small runtime (profile_runtime.c), which
  writes the counts at exit into `$ALLVM_PROFILE_DIR`, one file per process. It is compiled
  at the fast tier: counts do not depend on code generation.
- The profile run: CMD is a shell command (`sh -c`) whose first word is the program's name; a
  directory first on PATH holds the instrumented program under that name, so CMD may
  redirect, pipe and run the program several times. Every process's counts are summed.
- The profiled build: the same text gets the counts as LLVM's own profile metadata --
  `function_entry_count` on functions, `branch_weights` on `br`/`switch`, and the module's
  `ProfileSummary` (what hot and cold mean), and as LLVM's own profile use does, `inlinehint`
  on functions entered hot and `cold` on those whose counts are all cold -- then LLVM's
  default O2 pipeline (inlining, block placement, hot/cold section layout read it) and the
  usual code generation.

The profile's identity (a hash of its counts) is part of the profiled binary's codegen id, so
it is cached under a key of its own; the same binary is also stored under the allexe's
ordinary static-binary key, tagged `profile <identity>`, which is the key alley's cache hit
(the launcher) looks up: the profiled binary is the one that runs. A plain `allready` or a
background promotion keeps a tagged binary; `allvm-cache clean` drops it.
"""

import os
import re
import shlex
import subprocess
import tempfile
from _blake2 import blake2b

from allvm.allexe import Allexe, pack_allexe
from allvm.cache import Cache, static_binary_key, stored_digest
from allvm.errors import AllvmError
from allvm.native.build import Build, store_static_binary
from allvm.native.carry import carried
from allvm.native.settings import FAST, static_settings

PROFILE_DIR_VARIABLE = "ALLVM_PROFILE_DIR"
RUNTIME_SOURCE = os.path.join(os.path.dirname(__file__), "profile_runtime.c")
_FILE_MAGIC = b"ALLVMPROFILE1\n"
PROFILE_TAG_PREFIX = "profile "
RUNTIME_MODULE = "allvm-profile-runtime.bc"
# The pipeline the profiled build runs: LLVM's default, which reads the profile metadata.
PROFILED_PIPELINE = "default<O2>"

_ENTRY, _BRANCH, _SWITCH = "entry", "branch", "switch"
_VALUE = r'(%"[^"]*"|[^ ,]+)'
_BR = re.compile(rf"  br i1 {_VALUE}, label ")
_SWITCH_LINE = re.compile(rf"  switch (\S+) {_VALUE}, label ")
_CASE = re.compile(r"\s+\S+ ([^,]+), label ")
_LABEL = re.compile(r'^(?:[-\w.$]+|"[^"]*"):')
_PROF = re.compile(r",? !prof !\d+")
_METADATA_ID = re.compile(r"^!(\d+) = ", re.MULTILINE)
_MODULE_FLAGS = "!llvm.module.flags = !{"
# LLVM's default cutoffs of a profile summary (parts per million of all counts).
_CUTOFFS = (10000, 100000, 200000, 300000, 400000, 500000, 600000, 700000, 800000, 900000,
            950000, 990000, 999000, 999900, 999990, 999999)
_MAX_WEIGHT = 0xFFFFFFFF
# The cutoffs LLVM's profile summary analysis takes for hot and for cold counts.
_HOT_CUTOFF, _COLD_CUTOFF = 990000, 999999
_GROUP_REFERENCE = re.compile(r" #(\d+)(?= |$)")


class Site:
    """A place the profile counts: `width` counters from `first`, at text line `line`."""

    __slots__ = ("kind", "line", "first", "width", "type", "value", "cases", "end")

    def __init__(self, kind: str, line: int, first: int, width: int, *, type: str = "",
                 value: str = "", cases: tuple[str, ...] = (), end: int = 0):
        self.kind, self.line, self.first, self.width = kind, line, first, width
        self.type, self.value, self.cases, self.end = type, value, cases, end


def find_sites(lines: list[str]) -> tuple[list[Site], int]:
    """Every site of a module's text, in order, and the number of counters they use."""
    sites: list[Site] = []
    counters, in_function, i = 0, False, 0
    while i < len(lines):
        line = lines[i]
        site = None
        if not in_function:
            if line.startswith("define ") and line.endswith("{"):
                in_function = True
                site = Site(_ENTRY, i, counters, 1)
        elif line == "}":
            in_function = False
        elif line.startswith("  br i1 "):
            site = Site(_BRANCH, i, counters, 2, value=_BR.match(line).group(1))
        elif line.startswith("  switch "):
            site = _switch_site(lines, i, counters)
            i = site.end
        if site is not None:
            sites.append(site)
            counters += site.width
        i += 1
    return sites, counters


def _switch_site(lines: list[str], i: int, first: int) -> Site:
    """A `switch` from its first line to its closing `]`: its value and case constants."""
    head = _SWITCH_LINE.match(lines[i])
    cases, end = [], i + 1
    while not lines[end].startswith("  ]"):
        cases.append(_CASE.match(lines[end]).group(1))
        end += 1
    return Site(_SWITCH, i, first, len(cases) + 1, type=head.group(1), value=head.group(2),
                cases=tuple(cases), end=end)


# --- the instrumented build -------------------------------------------------------------------

class ModuleText:
    """One module of the allexe as text, with its sites: what both builds start from."""

    def __init__(self, allexe: Allexe, index: int):
        from allvm.ir import llvm, parse_module

        entry = allexe.modules[index]
        self.name = entry.name
        self.digest = stored_digest(allexe, entry)
        module = parse_module(allexe.read_module(entry), entry.name,
                              context=llvm().create_context())
        self.triple, self.data_layout = module.triple, module.data_layout
        self.lines = str(module).split("\n")
        self.sites, self.counters = find_sites(self.lines)

    def instrumented(self) -> bytes:
        """The module's bitcode with its counters (see instrument)."""
        text, constructor = instrument(self.lines, self.sites, self.counters, self.digest)
        return self._bitcode(text, constructor)

    def profiled(self, counts: list[int], summary: "Summary") -> bytes:
        """The module's bitcode with the profile's metadata, optimized with it."""
        from allvm.passes import run_pipeline

        if len(counts) != self.counters:
            raise AllvmError(f"{self.name}: the profile has {len(counts)} counts, the module "
                             f"{self.counters} sites' worth")
        return self._bitcode(annotate(self.lines, self.sites, counts, summary),
                             optimize=lambda module: run_pipeline(module, PROFILED_PIPELINE))

    def _bitcode(self, text: str, extra: str = "", optimize=None) -> bytes:
        from allvm.ir import llvm, parse_module

        context = llvm().create_context()
        module = parse_module(text.encode(), self.name, context=context)
        if extra:
            linked = parse_module(extra.encode(), f"{self.name} (profile)", context=context)
            linked.triple, linked.data_layout = self.triple, self.data_layout
            module.link_in(linked)
        if optimize:
            optimize(module)
        return module.as_bitcode()


def instrument(lines: list[str], sites: list[Site], total: int, module_id: str) -> tuple[str, str]:
    """The module's text with a counter before every site, its counter array and a
    registering function; and a small module whose constructor table calls that function
    (linked in: the program's own table, if any, is appended to, not rewritten)."""
    uid = blake2b(module_id.encode(), digest_size=8).hexdigest()
    counters = f"@__allvm.prof.counters.{uid}"
    before: dict[int, list[str]] = {}
    for site in sites:
        if site.kind == _ENTRY:
            at = site.line + 1 + bool(_LABEL.match(lines[site.line + 1]))
            before[at] = _bump(counters, site.first, str(site.first))
        else:
            before[site.line] = _slot(counters, site)
    out = []
    for i, line in enumerate(lines):
        out += before.get(i, ())
        out.append(line)
    ident = module_id.encode() + b"\0"
    register = f"@__allvm.prof.register.{uid}"
    out += [
        f"{counters} = internal global [{max(total, 1)} x i64] zeroinitializer, align 8",
        f"@__allvm.prof.id.{uid} = private unnamed_addr constant [{len(ident)} x i8] "
        f'c"{_escape(ident)}"',
        f"@__allvm.prof.module.{uid} = internal global {{ ptr, ptr, i64, ptr }} "
        f"{{ ptr @__allvm.prof.id.{uid}, ptr {counters}, i64 {total}, ptr null }}",
        "declare void @__allvm_profile_register(ptr)",
        f"define hidden void {register}() {{",
        f"  call void @__allvm_profile_register(ptr @__allvm.prof.module.{uid})",
        "  ret void",
        "}",
    ]
    constructor = (f"declare void {register}()\n"
                   "@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] "
                   f"[{{ i32, ptr, ptr }} {{ i32 65535, ptr {register}, ptr null }}]\n")
    return "\n".join(out), constructor


def _slot(counters: str, site: Site) -> list[str]:
    """Lines that pick the counter of the destination about to be taken, and count it."""
    name = f"%__allvm.prof.{site.first}"
    if site.kind == _BRANCH:
        return [f"  {name}.t = zext i1 {site.value} to i64",
                f"  {name}.s = add i64 {name}.t, {site.first}",
                *_bump(counters, site.first, f"{name}.s")]
    lines, chosen = [], str(site.first)  # the default destination unless a case matches
    for n, case in enumerate(site.cases, 1):
        lines += [f"  {name}.c{n} = icmp eq {site.type} {site.value}, {case}",
                  f"  {name}.s{n} = select i1 {name}.c{n}, i64 {site.first + n}, i64 {chosen}"]
        chosen = f"{name}.s{n}"
    return lines + _bump(counters, site.first, chosen)


def _bump(counters: str, serial: int, index: str) -> list[str]:
    """counters[index] += 1 (not atomic: a racing thread may lose a count, never corrupt one)."""
    p = f"%__allvm.prof.{serial}"
    return [f"  {p}.p = getelementptr inbounds i64, ptr {counters}, i64 {index}",
            f"  {p}.v = load i64, ptr {p}.p, align 8",
            f"  {p}.n = add i64 {p}.v, 1",
            f"  store i64 {p}.n, ptr {p}.p, align 8"]


def _escape(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:02X}" for b in data)


def runtime_bitcode(triple: str) -> bytes:
    """The runtime as a module of the instrumented program, for its libc (musl or glibc):
    compiled once into zig's cache directory, named by a hash of its source, the target and
    the compiler."""
    from allvm.toolchain import GNU_TARGET, MUSL_TARGET, is_gnu, run_zig, zig_binary, zig_cache_dir

    target = GNU_TARGET if is_gnu(triple) else MUSL_TARGET
    with open(RUNTIME_SOURCE, "rb") as f:
        source = f.read()
    zig = os.stat(zig_binary())
    key = blake2b(source + f"{target} {zig.st_size} {zig.st_mtime_ns}".encode(),
                  digest_size=10).hexdigest()
    path = os.path.join(zig_cache_dir(), f"allvm-profile-runtime-{key}.bc")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = f"{path}.{os.getpid()}.tmp"
        run_zig("cc", ["-target", target, "-O2", "-g0", "-c", "-emit-llvm", RUNTIME_SOURCE,
                       "-o", temp], "compiling the profile runtime")
        os.replace(temp, path)
    with open(path, "rb") as f:
        return f.read()


# --- profiles ---------------------------------------------------------------------------------

class Profile:
    """Counts by module (its stored digest, allvm.cache.stored_digest), summed over runs."""

    def __init__(self, counts: dict[str, list[int]]):
        self.counts = counts

    @property
    def identity(self) -> str:
        """A hash of every module's counts: what the profiled binary's key names."""
        h = blake2b(b"allvm profile 1\0", digest_size=16)
        for digest in sorted(self.counts):
            h.update(digest.encode() + b"\0")
            h.update(b"".join(c.to_bytes(8, "little") for c in self.counts[digest]))
        return h.hexdigest()


def read_counts(directory: str) -> dict[str, list[int]]:
    """The counts every process of a profile run wrote into `directory`, summed by module
    id; empty when none was written."""
    total: dict[str, list[int]] = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        for module_id, counts in _parse_counts(data, name):
            known = total.setdefault(module_id, [0] * len(counts))
            if len(known) != len(counts):
                raise AllvmError(f"profile counts of '{module_id}' disagree in size")
            total[module_id] = [a + b for a, b in zip(known, counts, strict=True)]
    return total


def _parse_counts(data: bytes, name: str):
    """(module id, counts) of each module in one process's counts file."""
    if not data.startswith(_FILE_MAGIC):
        raise AllvmError(f"profile counts '{name}' are damaged")
    at = len(_FILE_MAGIC)
    try:
        while at < len(data):
            length = int.from_bytes(data[at:at + 4], "little")
            module_id = data[at + 4:at + 4 + length].decode()
            at += 4 + length
            count = int.from_bytes(data[at:at + 8], "little")
            at += 8
            end = at + 8 * count
            if end > len(data):
                raise ValueError
            counts = memoryview(data)[at:end].cast("Q").tolist()
            at = end
            yield module_id, counts
    except (ValueError, UnicodeDecodeError):
        raise AllvmError(f"profile counts '{name}' are damaged") from None


# --- the profiled build -----------------------------------------------------------------------

class Summary:
    """LLVM's ProfileSummary of the whole program (every module's counts): what the optimizer
    takes for hot and cold. Computed as LLVM's InstrProf summary builder computes it."""

    def __init__(self, modules: list[ModuleText], profile: Profile):
        entries, internal = [], []
        for module in modules:
            counts = profile.counts[module.digest]
            for site in module.sites:
                own = counts[site.first:site.first + site.width]
                (entries if site.kind == _ENTRY else internal).extend(own)
        every = sorted(entries + internal, reverse=True)
        self.fields = [("TotalCount", sum(every)), ("MaxCount", max(every, default=0)),
                       ("MaxInternalCount", max(internal, default=0)),
                       ("MaxFunctionCount", max(entries, default=0)),
                       ("NumCounts", len(every)), ("NumFunctions", len(entries))]
        self.detailed = _detailed_summary(every)
        least = {cutoff: count for cutoff, count, _ in self.detailed}
        self.hot = least[_HOT_CUTOFF]
        self.cold = min(least[_COLD_CUTOFF], self.hot)

    def mark(self, entry: int, most: int) -> str:
        """The attribute LLVM's own profile use gives a function: `inlinehint` when it is
        entered hot, `cold` when even its largest count is cold, else none."""
        if self.hot and entry >= self.hot:
            return "inlinehint"
        return "cold" if most <= self.cold else ""

    def nodes(self, metadata: "_Metadata") -> int:
        """The summary as metadata nodes; the top node's number."""
        fields = [metadata.node('!"ProfileFormat", !"InstrProf"')]
        fields += [metadata.node(f'!"{name}", i64 {value}') for name, value in self.fields]
        cutoffs = [metadata.node(f"i32 {cutoff}, i64 {least}, i32 {seen}")
                   for cutoff, least, seen in self.detailed]
        listed = metadata.node(", ".join(f"!{n}" for n in cutoffs))
        fields.append(metadata.node(f'!"DetailedSummary", !{listed}'))
        return metadata.node(", ".join(f"!{n}" for n in fields))


def _detailed_summary(descending: list[int]) -> list[tuple[int, int, int]]:
    """(cutoff, least count, counts seen) per cutoff: the fewest, largest counts that make
    up `cutoff` parts per million of the total."""
    total, rows = sum(descending), []
    reached = seen = least = 0
    for cutoff in _CUTOFFS:
        wanted = total * cutoff // 1_000_000
        while reached < wanted and seen < len(descending):
            least = descending[seen]
            reached += least
            seen += 1
        rows.append((cutoff, least, seen))
    return rows


class _Metadata:
    """New metadata nodes for a module's text, numbered after its own, shared when equal."""

    def __init__(self, text_lines: list[str]):
        numbers = [int(m.group(1)) for line in text_lines if line.startswith("!")
                   for m in [_METADATA_ID.match(line)] if m]
        self.next = max(numbers, default=-1) + 1
        self.known: dict[str, int] = {}
        self.lines: list[str] = []

    def node(self, body: str) -> int:
        number = self.known.get(body)
        if number is None:
            number = self.known[body] = self.next
            self.next += 1
            self.lines.append(f"!{number} = !{{{body}}}")
        return number


def annotate(lines: list[str], sites: list[Site], counts: list[int], summary: Summary) -> str:
    """The module's text with the counts as profile metadata: entry counts on functions,
    branch weights on every `br` and `switch` that ran (earlier weights, e.g. from
    __builtin_expect, give way to measured ones), hot and cold marks on functions (Summary.mark),
    and the program's summary as a module flag."""
    out = list(lines)
    metadata = _Metadata(lines)
    most = _largest_counts(sites, counts)
    hot_groups = {m.group(1) for line in lines if line.startswith("attributes #") and " hot" in line
                  for m in [re.match(r"attributes #(\d+) ", line)] if m}
    for site in sites:
        own = counts[site.first:site.first + site.width]
        if site.kind == _ENTRY:
            node = metadata.node(f'!"function_entry_count", i64 {own[0]}')
            line = f"{_PROF.sub('', out[site.line][:-1]).rstrip()} !prof !{node} {{"
            out[site.line] = _marked(line, summary.mark(own[0], most[site.line]), hot_groups)
            continue
        if not any(own):
            continue  # never reached: no evidence either way (its function is cold anyway)
        weights = own[::-1] if site.kind == _BRANCH else own  # br: true first
        node = metadata.node('!"branch_weights", '
                             + ", ".join(f"i32 {w}" for w in _scaled(weights)))
        at = site.line if site.kind == _BRANCH else site.end
        out[at] = f"{_PROF.sub('', out[at])}, !prof !{node}"
    flag = metadata.node(f'i32 1, !"ProfileSummary", !{summary.nodes(metadata)}')
    for i, line in enumerate(out):
        if line.startswith(_MODULE_FLAGS):
            out[i] = f"{line[:-1]}, !{flag}}}"
            break
    else:
        out.append(f"{_MODULE_FLAGS}!{flag}}}")
    return "\n".join(out + metadata.lines) + "\n"


def _largest_counts(sites: list[Site], counts: list[int]) -> dict[int, int]:
    """Each function's largest count (by the line of its `define`): its sites follow its entry."""
    largest: dict[int, int] = {}
    function = -1
    for site in sites:
        if site.kind == _ENTRY:
            function = site.line
        own = max(counts[site.first:site.first + site.width], default=0)
        largest[function] = max(largest.get(function, 0), own)
    return largest


def _marked(define: str, attribute: str, hot_groups: set[str]) -> str:
    """A `define` line with `attribute` among its function attributes (before its attribute
    group); unchanged without a group, or when a `cold` would meet the program's own `hot`."""
    group = _GROUP_REFERENCE.search(define)
    if not attribute or group is None or (attribute == "cold" and group.group(1) in hot_groups):
        return define
    return f"{define[:group.start()]} {attribute}{define[group.start():]}"


def _scaled(weights: list[int]) -> list[int]:
    """Weights as LLVM keeps them (32 bits), scaled down together when a count is larger."""
    scale = max(weights) // _MAX_WEIGHT + 1
    return [w // scale for w in weights]


# --- allready -profile-run --------------------------------------------------------------------

def build_profiled(allexe: Allexe, commands: list[str], cache: Cache) -> str:
    """Profile the allexe on `commands` (see the module's docstring) and cache the static
    binary optimized with the profile, under its own key and under the allexe's ordinary
    static-binary key (what alley runs); returns the latter's path."""
    if not cache.ensure_dirs():
        raise AllvmError(f"cache directory '{cache.root}' is not usable")
    names = [program_name(command) for command in commands]
    modules = [ModuleText(allexe, i) for i in range(len(allexe.modules))]
    with tempfile.TemporaryDirectory(prefix="allvm-profile-") as work:
        programs, counts = os.path.join(work, "bin"), os.path.join(work, "counts")
        os.mkdir(programs)
        os.mkdir(counts)
        instrumented = os.path.join(work, "instrumented")
        build_instrumented(allexe, modules, cache, instrumented)
        for name in set(names):
            os.link(instrumented, os.path.join(programs, name))
        for command in commands:
            profile_run(command, programs, counts)
        profile = collect(modules, read_counts(counts))
    settings = static_settings().with_profile(profile.identity)
    tag = f"{PROFILE_TAG_PREFIX}{profile.identity}".encode()
    own = cache.static_binary_path(static_binary_key(allexe, settings.codegen_id))
    found = cache.read_entry(own)
    if found is not None and found[1] == tag:
        binary = found[0]
    else:
        binary = carried(build_optimized(allexe, modules, profile, settings, cache), allexe,
                         settings)  # as every static binary: it carries its allexe
        store_static_binary(cache, own, binary, tag)
    path = cache.static_binary_path(static_binary_key(allexe))
    store_static_binary(cache, path, binary, tag)
    return path


def program_name(command: str) -> str:
    """The program's name in a profile run's command: its first word, a plain name."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise AllvmError(f"-profile-run '{command}': {e}") from None
    if not words or "/" in words[0] or words[0] in (".", ".."):
        raise AllvmError(f"-profile-run '{command}': the first word must name the program "
                         "(a plain name such as 'lua', which the profile run puts on PATH)")
    return words[0]


def build_instrumented(allexe: Allexe, modules: list[ModuleText], cache: Cache,
                       output: str) -> None:
    """The instrumented program at `output`: every module counting, and the runtime."""
    data = pack_allexe([(m.name, m.instrumented()) for m in modules]
                       + [(RUNTIME_MODULE, runtime_bitcode(modules[0].triple))])
    instrumented = Allexe.from_bytes(f"{allexe.path} (instrumented)", data)
    # The fast tier: the counts do not depend on code generation, the build time does.
    with Build(instrumented, cache, cache_objects=False, settings=FAST) as build:
        os.replace(build.link(), output)


def profile_run(command: str, programs: str, counts: str) -> None:
    """Run one profile run's command (`sh -c`), the instrumented program first on PATH, its
    output discarded (the run is for its counts), its errors shown."""
    env = {**os.environ, PROFILE_DIR_VARIABLE: counts,
           "PATH": os.pathsep.join([programs, os.environ.get("PATH", os.defpath)])}
    try:
        proc = subprocess.run(["/bin/sh", "-c", command], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
    except OSError as e:
        raise AllvmError(f"-profile-run '{command}': {e.strerror}") from None
    if proc.returncode != 0:
        raise AllvmError(f"-profile-run '{command}' failed (exit status {proc.returncode})")


def collect(modules: list[ModuleText], counts: dict[str, list[int]]) -> Profile:
    """The profile of the allexe's modules from a run's counts; every module must have some."""
    missing = [m.name for m in modules if m.digest not in counts]
    if missing:
        raise AllvmError("the profile runs left no counts for " + ", ".join(missing)
                         + " (did they run the program, and did it exit normally?)")
    return Profile({m.digest: counts[m.digest] for m in modules})


def build_optimized(allexe: Allexe, modules: list[ModuleText], profile: Profile, settings,
                    cache: Cache) -> bytes:
    """The static binary of the modules optimized with the profile."""
    summary = Summary(modules, profile)
    data = pack_allexe([(m.name, m.profiled(profile.counts[m.digest], summary))
                        for m in modules])
    with Build(Allexe.from_bytes(allexe.path, data), cache, cache_objects=False,
               settings=settings) as build:
        with open(build.link(), "rb") as f:
            return f.read()
