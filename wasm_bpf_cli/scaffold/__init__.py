"""`wasm-bpf new`: a ready-to-build guest directory from a template.

A template is a directory of `templates/` whose file names and contents say
`NAME` / `@NAME@` where the guest's name goes (`@NAME_UPPER@` for header
guards); `templates/common/` holds what every template shares (the
Makefile). Nothing here runs a compiler: the written Makefile does.
"""
import os
import re
import shutil
import tempfile
from typing import Dict, List

from wasm_bpf_cli.errors import UsageError, WasmBpfError

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
COMMON = "common"
DEFAULT_TEMPLATE = "ringbuf"
# One line each, for `wasm-bpf new --help` and the README.
DESCRIPTIONS = {
    "ringbuf": "a tracepoint on openat() sends events through a ring buffer, one printed line each",
    "map": "a tracepoint on openat() counts calls per pid in a hash map, printed and cleared every interval",
}
# A C identifier that also makes a BPF object name libbpf keeps whole.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,30}\Z")


def templates() -> List[str]:
    return sorted(DESCRIPTIONS)


def render(template: str, name: str) -> Dict[str, str]:
    """{file name: text} of `template` for a guest called `name`."""
    if template not in DESCRIPTIONS:
        raise UsageError(f"no template {template!r}: choose one of {', '.join(templates())}")
    if not NAME_RE.match(name):
        raise UsageError(f"{name!r} is not a usable guest name: it names C functions "
                         "(NAME_bpf__open), so use letters, digits and _ (at most 31), "
                         "not starting with a digit")
    files = {}
    for sub in (COMMON, template):
        base = os.path.join(TEMPLATE_DIR, sub)
        for entry in sorted(os.listdir(base)):
            with open(os.path.join(base, entry)) as f:
                text = f.read()
            text = text.replace("@NAME_UPPER@", name.upper()).replace("@NAME@", name)
            files[entry.replace("NAME", name)] = text
    return files


def create(template: str, name: str, directory: str) -> List[str]:
    """Write the guest into `directory` (which must not exist yet); return
    the file names written. All files appear at once or none does."""
    files = render(template, name)
    if os.path.lexists(directory):
        raise WasmBpfError(f"{directory}: already exists; choose another name or directory")
    parent = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(parent):
        raise WasmBpfError(f"{parent}: no such directory")
    try:
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.", dir=parent)
    except OSError as err:
        raise WasmBpfError(f"{parent}: cannot write: {err.strerror}") from None
    try:
        for file_name, text in files.items():
            with open(os.path.join(staging, file_name), "w") as f:
                f.write(text)
        os.chmod(staging, 0o755)
        os.rename(staging, directory)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise WasmBpfError(f"{directory}: cannot write: {err.strerror}") from None
    return sorted(files)
