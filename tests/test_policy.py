"""all-info -imports / -json, and deny policies that refuse a program before any of it runs."""

import json
import os
import subprocess

import pytest
from conftest import build_allexe, run_tool, tool_path

# A constructor leaves a mark: proof that none of the program's code ran when it was refused.
MARK = """
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void mark(void) {
    const char *path = getenv("MARK");
    if (path) { FILE *f = fopen(path, "w"); if (f) fclose(f); }
}
"""
USES_SYSTEM = MARK + """
int helper(int);
int main(int argc, char **argv) {
    puts("running");
    return argc > 1 ? system(argv[1]) : helper(0);
}
"""
HELPER = "int helper(int x) { return x; }\n"
SAFE = MARK + 'int main(void) { puts("safe"); return 0; }\n'
NET_LIB = """
#include <sys/socket.h>
#include <dlfcn.h>
int helper(int x) { return x ? socket(AF_INET, SOCK_STREAM, 0) + (dlopen("x", 0) != 0) : 0; }
"""


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    d = tmp_path_factory.mktemp("policy")
    return {
        "system": build_allexe(d, "system", USES_SYSTEM, HELPER),
        "net": build_allexe(d, "net", USES_SYSTEM.replace("system(argv[1])", "0"), NET_LIB),
        "safe": build_allexe(d, "safe", SAFE),
    }


def run_alley(*args, env_extra=None, mark=None):
    env = dict(os.environ, **(env_extra or {}))
    if mark:
        env["MARK"] = str(mark)
    return run_tool("alley", *args, env=env)


def test_imports_text_names_modules(programs):
    proc = run_tool("all-info", "-imports", programs["net"])
    assert proc.returncode == 0, proc.stderr
    modules, imports = proc.stdout.split("Imports:\n")
    assert modules.startswith("Modules:\n\tmain.bc (")
    lines = imports.splitlines()
    assert "\tsocket (net_lib0.bc)" in lines and "\tdlopen (net_lib0.bc)" in lines
    assert "\tputs (main.bc)" in lines
    # helper is declared by main.bc and defined by the library: resolved inside the program.
    assert not any(line.startswith("\thelper") for line in lines)


def test_imports_json(programs):
    proc = run_tool("all-info", "-imports", "-json", programs["system"])
    info = json.loads(proc.stdout)
    assert [m["name"] for m in info["modules"]] == ["main.bc", "system_lib0.bc"]
    assert all(len(m["crc"]) == 8 for m in info["modules"])
    imports = {i["name"]: i["modules"] for i in info["imports"]}
    assert imports["system"] == ["main.bc"] and "helper" not in imports
    plain = json.loads(run_tool("all-info", "-json", programs["system"]).stdout)
    assert "imports" not in plain and plain["modules"] == info["modules"]


def test_deny_group_refuses_before_any_code_runs(programs, tmp_path):
    mark = tmp_path / "mark"
    proc = run_alley("-deny=exec", programs["system"], mark=mark)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (f"alley: policy: '{programs['system']}' references denied function "
                           "'system' (denied group 'exec') in module 'main.bc'\n")
    assert not mark.exists()
    # The same program runs when nothing it uses is denied.
    proc = run_alley("-deny", "net,dl,execve", programs["system"], mark=mark)
    assert (proc.returncode, proc.stdout) == (0, "running\n"), proc.stderr
    assert mark.exists()


def test_deny_names_the_library_module(programs, tmp_path):
    proc = run_alley("-deny=socket", "-noexec", programs["net"])
    assert proc.returncode == 1
    assert "'socket' in module 'net_lib0.bc'" in proc.stderr
    proc = run_alley("-deny=dl", programs["net"])
    assert "'dlopen' (denied group 'dl') in module 'net_lib0.bc'" in proc.stderr


def test_policy_file_and_environment(programs, tmp_path):
    policy = tmp_path / "policy"
    policy.write_text("# no processes, no network\nexec   # system, fork, ...\nnet\n")
    mark = tmp_path / "mark"
    for args, env in (([f"-policy={policy}"], {}), ([], {"ALLVM_POLICY": str(policy)})):
        proc = run_alley(*args, programs["system"], env_extra=env, mark=mark)
        assert proc.returncode == 1 and "'system'" in proc.stderr, proc.stderr
        proc = run_alley(*args, programs["safe"], env_extra=env, mark=mark)
        assert (proc.returncode, proc.stdout) == (0, "safe\n"), proc.stderr
    assert mark.exists()  # only from the safe program
    proc = run_alley("-policy", tmp_path / "missing", programs["safe"])
    assert proc.returncode == 1
    assert proc.stderr == (f"alley: Could not read policy file '{tmp_path / 'missing'}': "
                           "No such file or directory\n")


def test_static_path_is_checked_too(programs, tmp_path):
    """A cached static binary is not exec'd blindly when a policy is active."""
    assert run_tool("allready", programs["system"]).returncode == 0
    mark = tmp_path / "mark"
    env = {"ALLVM_POLICY": str(tmp_path / "policy")}
    (tmp_path / "policy").write_text("exec\n")
    proc = run_alley(programs["system"], env_extra=env, mark=mark)
    assert proc.returncode == 1 and "'system'" in proc.stderr
    proc = run_alley("-force-static", "-deny=exec", programs["system"], mark=mark)
    assert proc.returncode == 1 and "'system'" in proc.stderr
    assert not mark.exists()
    # Without a policy the cached binary runs, and the Python alley's cache-hit path (where
    # the native launcher leaves one to it) never loads llvmlite.
    proc = subprocess.run([tool_path("python"), "-X", "importtime", "-m", "allvm.tools.alley",
                           programs["system"]], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "running\n"
    assert "llvmlite" not in proc.stderr


def test_muxed_allexe_is_checked_per_selected_program(programs, tmp_path):
    """Only the program argv[0] (or busybox-style, the first argument) selects is checked."""
    mux = tmp_path / "mux.allexe"
    proc = run_tool("allmux", programs["system"], programs["safe"], "-o", mux)
    assert proc.returncode == 0, proc.stderr
    safe, system = tmp_path / "safe", tmp_path / "system"
    safe.symlink_to(mux)
    system.symlink_to(mux)
    proc = run_alley("-deny=exec", safe)
    assert (proc.returncode, proc.stdout) == (0, "safe\n"), proc.stderr
    proc = run_alley("-deny=exec", system)
    assert proc.returncode == 1 and "'system'" in proc.stderr and proc.stdout == ""
    proc = run_alley("-deny=exec", mux, "safe")
    assert (proc.returncode, proc.stdout) == (0, "safe\n"), proc.stderr
    proc = run_alley("-deny=exec", mux, "system")
    assert proc.returncode == 1 and "'system'" in proc.stderr
    # Merged into one module by alltogether, the mux is checked as a whole.
    merged = tmp_path / "merged.allexe"
    assert run_tool("alltogether", mux, "-o", merged, "-q").returncode == 0
    (tmp_path / "merged-safe").symlink_to(merged)
    proc = run_alley("-deny=exec", tmp_path / "merged-safe", "safe")
    assert proc.returncode == 1 and "'system'" in proc.stderr
