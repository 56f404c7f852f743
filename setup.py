"""The optional native helper (wasm_bpf_cli/abi/_nativepoll.c: the ring-buffer
poll loop; _nativestdio.c: the guest's stdout/stderr writes).

Everything else is in pyproject.toml. The helper is a plain shared library
loaded with ctypes (abi/nativepoll.py), built as an optional extension: where
no C compiler is found, `pip install .` goes on without it and the runner
uses its Python path.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wasm_bpf_cli.abi._nativepoll",
            sources=["wasm_bpf_cli/abi/_nativepoll.c", "wasm_bpf_cli/abi/_nativestdio.c"],
            depends=["wasm_bpf_cli/abi/_guestmem.h"],
            extra_compile_args=["-O2", "-std=gnu11"],
            optional=True,
        )
    ]
)
