"""allvm-cache: look at the native-code cache, empty it, set its size limit."""

import json
import os

from allvm import cache_admin
from allvm.cache import RECENT_SECONDS, SYSTEM_MODE, USER_MODE, Cache, make_directories
from allvm.cli import Tool
from allvm.errors import AllvmError

_RECENT = f"{RECENT_SECONDS // 60} minutes"

tool = Tool(
    "allvm-cache",
    "Administer the native-code cache (objects/, static_binaries/ and the launcher's launch\n"
    "records), by default the user's ($ALLVM_CACHE_DIR, else ~/.cache/allvm).\n\n"
    "commands:\n"
    "  stats         what the cache holds: entries and bytes per kind, the total, the limit\n"
    "  clean         remove every entry and launch record; the limit stays (programs are\n"
    "                compiled again on their next start)\n"
    "  limit [SIZE]  show the size limit, or set it to SIZE and trim the cache to it now;\n"
    "                SIZE is bytes or K, M, G, T (powers of 1024): 500M, 5G, 1.5GiB\n\n"
    "When an entry is added and the cache is over its limit (default 5 GiB), the least\n"
    f"recently used entries are removed; entries used in the last {_RECENT} are kept.",
    "examples:\n  allvm-cache stats\n  allvm-cache stats -json | jq .total.bytes\n"
    "  allvm-cache limit 2G\n  allvm-cache clean\n"
    "  allvm-cache -system stats   # the system cache that `allready -system` fills",
)
tool.positional("command", metavar="COMMAND", choices=("stats", "clean", "limit"),
                help="stats, clean or limit")
tool.positional("size", metavar="SIZE", nargs="?", help="the new limit (limit only)")
tool.option("json", action="store_true", help="print one JSON object (for scripts)")
tool.option("system", action="store_true",
            help="the system cache ($ALLVM_SYSTEM_CACHE, else /var/cache/allvm); only root "
                 "changes it")


def run(args) -> int:
    if args.size is not None and args.command != "limit":
        raise AllvmError(f"'{args.command}' takes no SIZE (see 'allvm-cache --help')")
    changes = args.command == "clean" or args.size is not None
    if args.system and changes and os.geteuid() != 0:
        raise AllvmError("-system: only root changes the system cache")
    cache = Cache(system=args.system)
    cache_admin.require_trusted(cache)
    result = COMMANDS[args.command](cache, args.size)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(TEXT[args.command](result))
    return 0


def stats(cache: Cache, _size: None) -> dict:
    return cache_admin.stats(cache)


def clean(cache: Cache, _size: None) -> dict:
    return {"location": cache.root, "removed": cache_admin.clean(cache)}


def limit(cache: Cache, size: str | None) -> dict:
    """The current limit, or (with `size`) the new one, persisted and enforced."""
    if size is None:
        return {"location": cache.root, "limit": cache.limit()}
    new = cache_admin.parse_size(size)
    _make_root(cache)
    cache_admin.set_limit(cache, new)
    return {"location": cache.root, "limit": cache.limit(), "removed": cache_admin.trim(cache)}


def _make_root(cache: Cache) -> None:
    """The cache's root, made with the cache's mode if it does not exist yet."""
    try:
        make_directories(cache.root, SYSTEM_MODE if cache.system else USER_MODE)
    except OSError as e:
        raise AllvmError(f"could not create '{cache.root}': {e.strerror}") from None


def stats_text(result: dict) -> str:
    rows = [("location", result["location"]), ("limit", _size_text(result["limit"]))]
    for kind in ("objects", "static_binaries"):
        rows.append((kind.replace("_", " "), _count_text(result[kind])))
    rows.append(("launch records", _count_text(result["launch_records"]).split(",")[0]))
    total = result["total"]
    share = f" ({100 * total['bytes'] / result['limit']:.0f}% of the limit)" \
        if result["limit"] else ""
    rows.append(("total", f"{_count_text(total)}{share}"))
    rows.append(("hits/misses", result["hits_and_misses"]))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in rows)


def clean_text(result: dict) -> str:
    removed = result["removed"]
    parts = [f"{removed[k]['entries']} {k.replace('_', ' ')} ({_size_text(removed[k]['bytes'])})"
             for k in ("objects", "static_binaries")]
    parts.append(f"{removed['launch_records']['entries']} launch records")
    parts.append(f"{removed['scratch']['entries']} leftovers of dead processes "
                 f"({_size_text(removed['scratch']['bytes'])})")
    return f"Removed from '{result['location']}': " + ", ".join(parts) + "."


def limit_text(result: dict) -> str:
    text = f"Cache limit of '{result['location']}': {_size_text(result['limit'])}"
    removed = result.get("removed")
    if removed is None:
        return text
    if removed["entries"]:
        text += (f"\nRemoved {removed['entries']} least recently used entries "
                 f"({_size_text(removed['bytes'])}).")
    text += f"\nThe cache holds {_size_text(removed['total'])}."
    if removed["total"] > result["limit"]:
        text += (f"\nStill over the limit: entries used in the last {_RECENT} are kept "
                 "(one just added may not be open yet).")
    return text


def _size_text(size: int) -> str:
    """`1.5 MiB (1572864 bytes)`: the unit for reading, the exact count for checking."""
    text = cache_admin.format_size(size)
    return f"{text} ({size} bytes)" if size >= 1024 else text


def _count_text(kind: dict) -> str:
    count = kind["entries"]
    return f"{count} {'entry' if count == 1 else 'entries'}, {_size_text(kind['bytes'])}"


COMMANDS = {"stats": stats, "clean": clean, "limit": limit}
TEXT = {"stats": stats_text, "clean": clean_text, "limit": limit_text}


def main() -> int:
    return tool.run(run)
