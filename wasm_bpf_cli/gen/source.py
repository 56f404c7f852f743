"""Read a BPF object file for `gen`: its bytes, ELF view and BTF."""
import os
from typing import NamedTuple, Optional

from wasm_bpf_cli.inspect.btf_reader import Btf
from wasm_bpf_cli.inspect.elf_reader import EM_BPF, ElfObject
from wasm_bpf_cli.inspect.errors import InspectError

from .errors import GenError


class BpfSource(NamedTuple):
    path: str
    data: bytes
    elf: ElfObject
    btf: Optional[Btf]


def load_bpf_object(path: str) -> BpfSource:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise GenError(f"{path}: {exc.strerror or exc}") from None
    name = os.path.basename(path)
    try:
        elf = ElfObject(data, name)
        if elf.machine != EM_BPF:
            raise GenError(f"{name}: not a BPF object (e_machine {elf.machine}, expected {EM_BPF})")
        sec = elf.section(".BTF")
        btf = Btf(elf.section_bytes(sec), f"{name}: .BTF") if sec is not None else None
        elf.symbols  # parse now so errors surface here, as GenError
    except InspectError as exc:
        raise GenError(str(exc)) from None
    return BpfSource(path, data, elf, btf)
