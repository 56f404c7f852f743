"""`wasm-bpf --version`: the package, the engines available here, and libbpf."""
import platform


def version_report() -> str:
    from wasm_bpf_cli import __version__, engines

    lines = [f"wasm-bpf {__version__} (Python {platform.python_version()})"]
    auto = engines.resolve("auto")
    for info in engines.available():
        state = info.version if info.version else "unavailable"
        mark = "  <- auto" if info.name == auto else ""
        lines.append(f"  engine {info.name:<9} {state:<12} {info.note}{mark}")
    try:
        from wasm_bpf_cli.bpf.lib import version

        major, minor = version()
        lines.append(f"  libbpf {major}.{minor}")
    except Exception as err:  # noqa: BLE001 - --version must always answer
        lines.append(f"  libbpf unavailable: {err}")
    return "\n".join(lines)
