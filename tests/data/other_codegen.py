"""`dask worker --preload` for the cluster tests: the worker reports another toolchain (another
target CPU), as a worker on a differently set-up machine would. allready must refuse it."""

import allvm.cache

allvm.cache.CODEGEN_ID = allvm.cache.CODEGEN_ID.replace("cpu x86-64", "cpu znver4")
