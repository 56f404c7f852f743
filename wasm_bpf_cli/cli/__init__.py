"""Command-line interface: argument parsing and terminal UI only; the work is
done by the public Python API."""
