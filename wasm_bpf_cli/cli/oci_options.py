"""Options and output shared by the commands that take an image reference
(run, inspect, pull): --pull, --verify-key, and the exit statuses."""
import click

PULL_HELP = ("For an image reference: always ask the registry, pull only when the image is "
             "not in the local store (missing, the default), or never (store only).")
VERIFY_HELP = ("For an image reference: a PEM public key (cosign.pub) the image's cosign signature "
               "must verify with (repeatable; implies a signature is required).")

EXIT_STATUS = """\b
Exit status:
  0  done
  1  the registry cannot be reached or refuses, unknown tag, digest mismatch,
     not a wasm artifact, over the size limit, wrong credentials, a missing or
     invalid signature, an image the policy does not allow, not in the store
     with --pull never (one line on stderr; nothing is written to the store)
  2  usage error (e.g. a reference that is not a valid name)
"""


def pull_option(f):
    return click.option("--pull", "pull_mode", type=click.Choice(["always", "missing", "never"]),
                        default="missing", show_default=True, help=PULL_HELP)(f)


def verify_key_option(f):
    return click.option("--verify-key", "verify_keys", multiple=True, metavar="PUB",
                        type=click.Path(dir_okay=False), help=VERIFY_HELP)(f)


def with_verify_keys(policy, verify_keys):
    """The policy (or a fresh one) with --verify-key added to trusted_keys and
    a signature required; None when there is nothing to apply."""
    if not verify_keys:
        return policy
    from wasm_bpf_cli.policy import Policy

    base = policy or Policy()
    return base.merged(trusted_keys=tuple(base.trusted_keys) + tuple(verify_keys), require_signature=True)
