"""One row of `wasm-bpf doctor`: what every check returns (doctor.py: the
machine's checks; doctor_toolchain.py: the guest-build checks)."""
from dataclasses import asdict, dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # empty when ok
    required: bool = True  # False: only some guests need it

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["required"]
        return d
