"""The SDKs shipped with the package: the C one, `include/wasm_bpf.h` and the
clang flags that build a guest with it (`wasm-bpf sdk --cflags`), and the Go
module `go/wasmbpf` (`wasm-bpf sdk --go`)."""
import os
from typing import List

SDK_INCLUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")
# the Go module (standard library only), used through a `replace` directive
SDK_GO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go", "wasmbpf")
GO_MODULE = "wasm-bpf.dev/wasmbpf"
GUEST_CFLAGS = ["--target=wasm32-wasi", "--sysroot=/usr", "-O2"]
# --export-table: the host calls the sample callback through the guest's table;
# --allow-undefined: the wasm_bpf imports stay unresolved until the runner links them.
GUEST_LDFLAGS = ["-Wl,--allow-undefined,--export-table"]


def guest_cflags() -> List[str]:
    """clang arguments compiling and linking a C guest against the SDK."""
    return GUEST_CFLAGS + [f"-I{SDK_INCLUDE}"] + GUEST_LDFLAGS
