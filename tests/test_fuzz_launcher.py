"""CI's short libFuzzer run over alley's native launcher's parsing (fuzz/fuzz_launcher.c): the
zip directory reader and key, launch records, sealed entries, under ASan and UBSan.

Built with Debian's clang-14 and its libFuzzer runtime (libclang-rt-14-dev), which `make test`
installs; never skipped: a missing compiler is a failure.
"""

import os
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).parent.parent / "fuzz"


def test_launcher_fuzzer_finds_nothing(tmp_path):
    """Build the fuzzer, seed it at run time, run it for its time: no crash, no finding."""
    fuzzer, corpus = tmp_path / "fuzz_launcher", tmp_path / "corpus"
    build = subprocess.run([sys.executable, str(FUZZ / "build_launcher_fuzzer.py"), str(fuzzer),
                            "-seeds", str(corpus)], capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    assert len(os.listdir(corpus)) >= 10  # the seeds: allexes, records, sealed entries

    seconds = int(os.environ.get("ALLVM_FUZZ_SECONDS", "30"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    proc = subprocess.run(["timeout", "-s", "KILL", str(seconds + 60), str(fuzzer), str(corpus),
                           f"-max_total_time={seconds}", f"-artifact_prefix={artifacts}/",
                           "-print_final_stats=1"],
                          capture_output=True, text=True, timeout=seconds + 120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done " in proc.stderr and "INITED" in proc.stderr, proc.stderr[-3000:]
    assert list(artifacts.iterdir()) == []
