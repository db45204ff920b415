"""Pipelines over a module's IR: pass-pipeline strings in-process, or an external command.

Pipeline strings are what `opt -passes=` takes, run through llvmlite's new pass manager.
llvmlite 0.50 has no pipeline-string parser, so this module is one: a pipeline is a
comma-separated list of steps, each either `default<O0>`…`default<O3>` (LLVM's per-module default
pipeline at that speed level) or one pass by its LLVM name, mapped to the `add_*_pass` method of
llvmlite's ModulePassManager. `internalize` is ALLVM's: every definition but `main` becomes
internal (LLVM's own internalize pass would internalize, and then delete, `main` too).
"""

import re
import shutil
import subprocess

from allvm.errors import AllvmError
from allvm.symbols import ENTRY_POINT, internalize

# LLVM pass name -> ModulePassManager method. Printers and viewers are left out: they write
# files or open windows instead of transforming the module.
_PASSES = {
    # function passes (llvmlite runs them over every function)
    "adce": "add_aggressive_dce_pass",
    "aggressive-instcombine": "add_aggressive_instcombine_pass",
    "break-crit-edges": "add_break_critical_edges_pass",
    "dce": "add_dead_code_elimination_pass",
    "dse": "add_dead_store_elimination_pass",
    "instcombine": "add_instruction_combine_pass",
    "instnamer": "add_instruction_namer_pass",
    "jump-threading": "add_jump_threading_pass",
    "lcssa": "add_lcssa_pass",
    "loop-deletion": "add_loop_deletion_pass",
    "loop-reduce": "add_loop_strength_reduce_pass",
    "loop-rotate": "add_loop_rotate_pass",
    "loop-simplify": "add_loop_simplify_pass",
    "loop-unroll": "add_loop_unroll_pass",
    "loop-unroll-and-jam": "add_loop_unroll_and_jam_pass",
    "lower-atomic": "add_lower_atomic_pass",
    "lowerinvoke": "add_lower_invoke_pass",
    "lowerswitch": "add_lower_switch_pass",
    "memcpyopt": "add_mem_copy_opt_pass",
    "mergereturn": "add_unify_function_exit_nodes_pass",
    "newgvn": "add_new_gvn_pass",
    "reassociate": "add_reassociate_pass",
    "reg2mem": "add_register_to_memory_pass",
    "sccp": "add_sccp_pass",
    "simplifycfg": "add_simplify_cfg_pass",
    "sink": "add_sinking_pass",
    "sroa": "add_sroa_pass",
    "tailcallelim": "add_tail_call_elimination_pass",
    # module passes
    "always-inline": "add_always_inliner_pass",
    "argpromotion": "add_argument_promotion_pass",
    "constmerge": "add_constant_merge_pass",
    "deadargelim": "add_dead_arg_elimination_pass",
    "function-attrs": "add_post_order_function_attributes_pass",
    "globaldce": "add_global_dead_code_eliminate_pass",
    "globalopt": "add_global_opt_pass",
    "ipsccp": "add_ipsccp_pass",
    "mergefunc": "add_merge_functions_pass",
    "partial-inliner": "add_partial_inliner_pass",
    "rpo-function-attrs": "add_rpo_function_attrs_pass",
    "strip": "add_strip_symbols_pass",
    "strip-dead-debug-info": "add_strip_dead_debug_info_pass",
    "strip-dead-prototypes": "add_strip_dead_prototype_pass",
    "strip-debug-declare": "add_strip_debug_declare_pass",
    "strip-nondebug": "add_strip_non_debug_symbols_pass",
    "verify": "add_verifier",
}
_INTERNALIZE = "internalize"
_DEFAULT = re.compile(r"default<O(\d|s|z)>")


def known_steps() -> list[str]:
    """Every step name a pipeline may use, for help and error messages."""
    return ["default<O0>", "default<O1>", "default<O2>", "default<O3>",
            *sorted([*_PASSES, _INTERNALIZE])]


def parse_pipeline(pipeline: str) -> list[str]:
    """The pipeline's steps, checked: an unknown step is an error listing the known ones."""
    steps = [step.strip() for step in pipeline.split(",")]
    for step in steps:
        level = _DEFAULT.fullmatch(step)
        if level and level.group(1) in "sz":
            raise AllvmError(f"'{step}' is not available: llvmlite builds LLVM's default "
                             "pipelines only for the speed levels O0-O3")
        if not level and step not in _PASSES and step != _INTERNALIZE:
            raise AllvmError(f"unknown pass '{step}' in pipeline '{pipeline}'; known: "
                             + ", ".join(known_steps()))
    return steps


def run_pipeline(module, pipeline: str) -> None:
    """Run a pipeline string over `module` in place."""
    steps = parse_pipeline(pipeline)
    machine = _target_machine(module)
    for step in steps:
        _run_step(module, step, machine)


def _target_machine(module):
    """The machine codegen will use for the module's own triple, so the optimizer's cost
    model matches the code that will be generated, and the IR stays portable."""
    from allvm.codegen import DEFAULT_TRIPLE, target_machine

    return target_machine(module.triple or DEFAULT_TRIPLE, module.name)


def _run_step(module, step: str, machine) -> None:
    from allvm.ir import llvm

    binding = llvm()
    if step == _INTERNALIZE:
        # In place: definitions stay in their comdats here (the module cannot be replaced);
        # alltogether and allmux take them out.
        internalize(module, keep={ENTRY_POINT})
        return
    level = _DEFAULT.fullmatch(step)
    speed = int(level.group(1)) if level else 0  # the level matters only to default<…>
    builder = binding.create_pass_builder(
        machine, binding.create_pipeline_tuning_options(speed_level=speed))
    if level:
        manager = builder.getModulePassManager()
    else:
        manager = binding.create_new_module_pass_manager()
        getattr(manager, _PASSES[step])()
    manager.run(module, builder)


def run_external_pipeline(command: str, args: list[str], bitcode: bytes, module_name: str) -> bytes:
    """Run `command args` (found on PATH) with the bitcode on stdin and an empty environment,
    so its result depends on the module and the arguments only; its stdout is the result.
    Its stderr goes to the user as it is."""
    path = shutil.which(command)
    if path is None:
        raise AllvmError(f"pipeline '{command}' not found on PATH")
    try:
        proc = subprocess.run([path, *args], input=bitcode, stdout=subprocess.PIPE, env={})
    except OSError as e:
        raise AllvmError(f"could not run pipeline '{command}': {e.strerror}") from None
    if proc.returncode < 0:
        raise AllvmError(f"pipeline '{command}' was killed by signal {-proc.returncode} "
                         f"on '{module_name}'")
    if proc.returncode != 0:
        raise AllvmError(f"pipeline '{command}' failed on '{module_name}' "
                         f"(exit status {proc.returncode})")
    return proc.stdout
