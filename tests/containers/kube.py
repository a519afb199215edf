"""What the kubelet would do with a rendered pod template, done with podman for the container tests.

Two ways in:
- `run_args` turns one container of a pod template into `podman run` flags: its args, its
  environment resolved as the kubelet resolves it (envFrom first, then env in order; `valueFrom`
  from the ConfigMaps and Secrets given; `$(VAR)` expanded from what is defined above it), the
  pod's user and group, the container's read-only root, dropped capabilities and no privilege
  escalation, and each `emptyDir` it mounts as the only writable paths.
- `kube_play_documents` keeps a pod template as written for `podman kube play`, with the two
  changes podman 4.3 needs to run it as a kubelet would: `$(VAR)` references in env values are
  expanded here (podman passes them on literally), and init containers are marked to run at every
  start of the pod (podman's "once" type races its own removal of them). Secrets become podman
  secrets in the JSON shape its secretKeyRef reads ({key: base64}).
"""
import base64
import copy
import json
import re

REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value, defined):
    """Kubernetes' dependent-variable expansion: $(NAME) of a variable defined above, $$ escapes."""
    return re.sub(r"\$\$|" + REF.pattern,
                  lambda m: "$" if m.group(0) == "$$" else defined.get(m.group(1), m.group(0)), value)


def resolve_env(container, config_maps, secrets):
    """{name: value} the container sees. config_maps and secrets map a name to its {key: value}."""
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
        elif "secretRef" in source:
            env.update(secrets[source["secretRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
        else:
            ref = var["valueFrom"]
            if "secretKeyRef" in ref:
                env[var["name"]] = secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
            else:
                env[var["name"]] = config_maps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
    return env


def run_args(pod_spec, container, env):
    """`podman run` flags that run `container` of `pod_spec` as Kubernetes would (network aside)."""
    pod_sc, sc = pod_spec.get("securityContext", {}), container.get("securityContext", {})
    args = ["--user", f"{pod_sc['runAsUser']}:{pod_sc.get('runAsGroup', pod_sc['runAsUser'])}"]
    if sc.get("readOnlyRootFilesystem"):
        # podman's --read-only would add writable /tmp, /run and /var/tmp of its own: only the
        # volumes the manifest mounts may be writable.
        args += ["--read-only", "--read-only-tmpfs=false"]
    for cap in sc.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", cap]
    for cap in sc.get("capabilities", {}).get("add", []):
        args += ["--cap-add", cap]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        assert "emptyDir" in volume, f"only emptyDir volumes are run here, not {volume}"
        args += ["--mount", f"type=tmpfs,destination={mount['mountPath']},tmpfs-mode=1777"]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    return args


def podman_secret(values):
    """A Secret's {key: value} as the JSON podman 4.3's kube play reads for a secretKeyRef."""
    return json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in values.items()})


def kube_play_documents(pod_name, template, config_maps, secrets):
    """A Pod (with its ConfigMaps) from a Deployment's pod template, for `podman kube play`."""
    spec = copy.deepcopy(template["spec"])
    for container in spec.get("initContainers", []) + spec["containers"]:
        defined = resolve_env(container, config_maps, secrets)
        for var in container.get("env", []):
            if "value" in var and REF.search(var["value"]):
                var["value"] = defined[var["name"]]
    metadata = {"name": pod_name, "labels": template["metadata"].get("labels", {}),
                "annotations": {**template["metadata"].get("annotations", {}),
                                "io.podman.annotations.init.container.type": "always"}}
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
            for name, data in config_maps.items()]
    return docs + [{"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}]
