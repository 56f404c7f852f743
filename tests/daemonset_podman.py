"""The DaemonSet's pod spec (deploy/kubernetes/20-daemonset.yaml) as a
`podman run` command line: the one source of what `make image-test` runs,
so the container the test proves is the one a node runs.

Every field of the pod and container spec is either turned into podman
options (host namespaces, capabilities, seccomp, mounts, environment from
the ConfigMap, `$(VAR)` in args, memory limit, stop timeout) or listed as
one only the kubelet or the scheduler acts on; any other field is an error,
so a field added to the DaemonSet fails the test until it is handled here.

    spec = PodmanSpec.from_manifests(config={"guest": ref}, secrets={...},
                                     host_paths={"/var/lib/wasm-bpf": tmp}, workdir=tmp)
    argv = spec.argv(image="localhost/wasm-bpf:0.1.0", name="wasm-bpf-test-x")
"""
import os
import re
import resource
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFESTS = os.path.join(ROOT, "deploy", "kubernetes")

# Fields that change nothing in what the container does on the node.
_POD_SCHEDULING = {"tolerations", "priorityClassName", "dnsPolicy", "automountServiceAccountToken"}
_CONTAINER_KUBELET = {"name", "image", "imagePullPolicy", "ports", "readinessProbe",
                      "terminationMessagePolicy"}
_CAPS_PREFIX = "CAP_"
# Bit numbers of linux/capability.h.
CAP_NAMES = dict(enumerate((
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
    "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
    "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
    "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE").split()))


class SpecError(Exception):
    """A DaemonSet field this translation does not know."""


def load_manifests(directory: str = MANIFESTS) -> Dict[str, dict]:
    """{kind: document} of every manifest in `directory` (one of each kind)."""
    docs: Dict[str, dict] = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".yaml"):
            with open(os.path.join(directory, name)) as f:
                for doc in yaml.safe_load_all(f):
                    if doc:
                        docs[doc["kind"]] = doc
    return docs


def _unknown(where: str, mapping: Mapping, known) -> None:
    extra = sorted(set(mapping) - set(known))
    if extra:
        raise SpecError(f"{where}: {', '.join(extra)} not handled by tests/daemonset_podman.py")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command and args: defined variables
    are replaced, $$ is a literal $, anything else stays as written."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def _memory(quantity: str) -> str:
    """A Kubernetes memory quantity (256Mi, 1Gi, 300M, bytes) as podman's bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, scale in units.items():
        if quantity.endswith(suffix):
            return str(int(float(quantity[:-len(suffix)]) * scale))
    return str(int(quantity))


def bounding_caps() -> set:
    """Capability names (BPF, PERFMON, ...) in this process's bounding set:
    podman cannot give a container more."""
    with open("/proc/self/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return {name for bit, name in CAP_NAMES.items() if mask >> bit & 1}


@dataclass
class PodmanSpec:
    pod: dict
    container: dict
    env: Dict[str, str]
    volumes: List[str] = field(default_factory=list)  # podman --volume/--tmpfs options
    probe_port: Optional[int] = None  # the readiness probe's port and path
    probe_path: str = "/"
    grace_period: int = 30

    @classmethod
    def from_manifests(cls, *, workdir: str, config: Optional[Mapping[str, str]] = None,
                       secrets: Optional[Mapping[str, Mapping[str, bytes]]] = None,
                       host_paths: Optional[Mapping[str, str]] = None,
                       directory: str = MANIFESTS) -> "PodmanSpec":
        """The DaemonSet of `directory`, with the ConfigMap's data updated by
        `config`, Secrets given as {name: {key: bytes}} (a Secret not given
        is absent, as on a node where it was not created), and host paths
        replaced by `host_paths` (e.g. the state directory by a test's own)."""
        docs = load_manifests(directory)
        configmap = dict(docs["ConfigMap"]["data"], **(config or {}))
        pod = docs["DaemonSet"]["spec"]["template"]["spec"]
        _unknown("pod spec", pod, {"hostPID", "hostNetwork", "terminationGracePeriodSeconds",
                                   "containers", "volumes"} | _POD_SCHEDULING)
        if len(pod["containers"]) != 1:
            raise SpecError("pod spec: exactly one container expected")
        container = pod["containers"][0]
        _unknown("container", container, {"args", "command", "env", "resources", "securityContext",
                                          "volumeMounts"} | _CONTAINER_KUBELET)
        spec = cls(pod=pod, container=container, env=cls._env(container, configmap),
                   grace_period=int(pod.get("terminationGracePeriodSeconds", 30)))
        spec._mounts(configmap, secrets or {}, host_paths or {}, workdir)
        spec._probe()
        return spec

    @staticmethod
    def _env(container: dict, configmap: Mapping[str, str]) -> Dict[str, str]:
        env: Dict[str, str] = {}
        for var in container.get("env", []):
            _unknown(f"env {var['name']}", var, {"name", "value", "valueFrom"})
            if "value" in var:
                env[var["name"]] = expand(var["value"], env)
            else:
                ref = var["valueFrom"]["configMapKeyRef"]
                env[var["name"]] = configmap[ref["key"]]
        return env

    def _mounts(self, configmap, secrets, host_paths, workdir) -> None:
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            _unknown(f"volumeMount {mount['name']}", mount, {"name", "mountPath", "readOnly"})
            volume = volumes[mount["name"]]
            opts = "ro" if mount.get("readOnly") else "rw"
            target = mount["mountPath"]
            if "hostPath" in volume:
                path = volume["hostPath"]["path"]
                source = host_paths.get(path, path)
                if volume["hostPath"].get("type") == "DirectoryOrCreate":
                    os.makedirs(source, exist_ok=True)
                elif not os.path.isdir(source):
                    raise SpecError(f"hostPath {path}: not a directory on this machine")
                self.volumes.append(f"--volume={source}:{target}:{opts}")
            elif "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit")
                self.volumes.append(f"--tmpfs={target}" + (f":size={_memory(size)}" if size else ""))
            elif "configMap" in volume or "secret" in volume:
                if "configMap" in volume:
                    items, data = volume["configMap"].get("items"), configmap
                else:
                    src = volume["secret"]
                    data = secrets.get(src["secretName"])
                    if data is None:
                        if src.get("optional"):
                            continue  # the kubelet mounts nothing either
                        raise SpecError(f"secret {src['secretName']} is needed and not given")
                    items = src.get("items")
                folder = os.path.join(workdir, "volumes", mount["name"])
                os.makedirs(folder, exist_ok=True)
                for item in items or [{"key": k, "path": k} for k in data]:
                    content = data[item["key"]]
                    with open(os.path.join(folder, item["path"]), "wb") as f:
                        f.write(content if isinstance(content, bytes) else content.encode())
                self.volumes.append(f"--volume={folder}:{target}:ro")
            else:
                raise SpecError(f"volume {mount['name']}: kind not handled")

    def _probe(self) -> None:
        probe = self.container.get("readinessProbe")
        if not probe:
            return
        port = probe["httpGet"]["port"]
        if isinstance(port, str):  # a named port
            port = next(p["containerPort"] for p in self.container["ports"] if p["name"] == port)
        self.probe_port, self.probe_path = port, probe["httpGet"].get("path", "/")

    def security_options(self, available_caps: Optional[set] = None) -> List[str]:
        sc = self.container.get("securityContext", {})
        _unknown("securityContext", sc, {"runAsUser", "privileged", "allowPrivilegeEscalation",
                                         "readOnlyRootFilesystem", "capabilities", "seccompProfile"})
        opts = []
        if sc.get("privileged"):
            opts.append("--privileged")
        if "runAsUser" in sc:
            opts.append(f"--user={sc['runAsUser']}")
        if sc.get("allowPrivilegeEscalation") is False:
            opts.append("--security-opt=no-new-privileges")
        if sc.get("readOnlyRootFilesystem"):
            opts.append("--read-only")
        caps = sc.get("capabilities", {})
        _unknown("capabilities", caps, {"add", "drop"})
        for cap in caps.get("drop", []):
            opts.append(f"--cap-drop={cap.lower()}")
        for cap in caps.get("add", []):
            if available_caps is not None and cap not in available_caps:
                continue  # not ours to give (see image_test_extras)
            opts.append(f"--cap-add={_CAPS_PREFIX}{cap}")
        seccomp = sc.get("seccompProfile", {}).get("type", "RuntimeDefault")
        if seccomp == "Unconfined":
            opts.append("--security-opt=seccomp=unconfined")
        elif seccomp != "RuntimeDefault":
            raise SpecError(f"seccompProfile {seccomp}: not handled")
        return opts

    def argv(self, *, image: str, name: str, available_caps: Optional[set] = None,
             extra: List[str] = ()) -> List[str]:
        """`podman run` of the container (detached: the test follows it)."""
        opts = [f"--name={name}", "--detach", "--pull=never", "--log-driver=k8s-file",
                f"--stop-timeout={self.grace_period}"]
        opts.append("--pid=host" if self.pod.get("hostPID") else "--pid=private")
        if not self.pod.get("hostNetwork"):
            raise SpecError("only hostNetwork pods are handled (ports are not published)")
        opts.append("--network=host")
        opts += self.security_options(available_caps)
        limits = self.container.get("resources", {}).get("limits", {})
        _unknown("resources.limits", limits, {"memory", "cpu"})
        if "memory" in limits:
            opts.append(f"--memory={_memory(limits['memory'])}")
        if "cpu" in limits:
            cpu = limits["cpu"]
            opts.append(f"--cpus={int(cpu[:-1]) / 1000 if cpu.endswith('m') else cpu}")
        opts += [f"--env={k}={v}" for k, v in self.env.items()]
        opts += self.volumes
        opts += list(extra)
        if "command" in self.container:
            command = [expand(a, self.env) for a in self.container["command"]]
            opts.append(f"--entrypoint={command[0]}")
        return ["podman", "run", *opts, image,
                *[expand(a, self.env) for a in self.container.get("args", [])]]


def image_test_extras(runtime: Optional[str] = "runc") -> List[str]:
    """What this kind of sandbox needs on top of the DaemonSet, and a node
    does not (see deploy/kubernetes/README.md):
    - `--runtime runc`: crun refuses a hybrid cgroup v1/v2 layout;
    - explicit ulimits no higher than this process's own: podman otherwise
      raises nofile/nproc to its defaults, which needs CAP_SYS_RESOURCE."""
    extras = [f"--runtime={runtime}"] if runtime else []
    for flag, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(limit)[1]
        n = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)
        extras.append(f"--ulimit={flag}={n}:{n}")
    return extras
