"""Turn OpenAPI documents into the standalone, strict JSON Schemas kubeconform reads.

Two inputs, one output layout (the `-schema-location` templates in k8s-check.sh):

    kubernetes SWAGGER_JSON OUT_DIR
        Kubernetes' own `api/openapi-spec/swagger.json` (from the k8s.io/kubernetes Go module)
        -> OUT_DIR/<kind>-<group>-<version>.json, e.g. deployment-apps-v1.json, service-v1.json
        (the file names kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}` template gives).

    crd CRD_YAML... OUT_DIR
        CustomResourceDefinition manifests -> OUT_DIR/<group>/<kind>_<version>.json
        (`{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}`).

"Standalone": every $ref is inlined. "Strict": an object that lists its properties refuses
any other (additionalProperties: false), which is what catches a typo'd field such as
`replicsa`. int-or-string and quantities accept both a string and a number, as the API server
does. Needs PyYAML for the CRD input only.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def strict(schema: Any) -> Any:
    """Close every object that names its properties, recursively; fix int-or-string."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if out.get("format") == "int-or-string" or out.pop("x-kubernetes-int-or-string", False):
        description = out.get("description")
        out = copy.deepcopy(INT_OR_STRING)
        if description:
            out["description"] = description
        return out
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


# --- Kubernetes' swagger.json -----------------------------------------------------------------


def _inline(schema: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(schema, list):
        return [_inline(item, definitions, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        name = ref.removeprefix("#/definitions/")
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            return copy.deepcopy(QUANTITY)
        if name in seen:  # recursive types (JSONSchemaProps): leave them open
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        target = _inline(definitions[name], definitions, (*seen, name))
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return {**target, **extra} if extra else target
    return {key: _inline(value, definitions, seen) for key, value in schema.items()}


def kubernetes(swagger_path: Path, out_dir: Path) -> int:
    definitions = json.loads(swagger_path.read_text())["definitions"]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            kind, group, version = gvk["kind"], gvk["group"], gvk["version"]
            suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
            schema = strict(_inline(definition, definitions, (name,)))
            schema["$schema"] = "http://json-schema.org/schema#"
            target = out_dir / f"{kind.lower()}{suffix.lower()}.json"
            target.write_text(json.dumps(schema, indent=1, sort_keys=True))
            written += 1
    return written


# --- CustomResourceDefinitions ----------------------------------------------------------------


def crds(paths: list[Path], out_dir: Path) -> int:
    import yaml  # only this input needs it

    written = 0
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                openapi = (version.get("schema") or {}).get("openAPIV3Schema")
                if openapi is None and "validation" in spec:  # apiextensions v1beta1 layout
                    openapi = spec["validation"].get("openAPIV3Schema")
                if openapi is None:
                    continue
                schema = strict(openapi)
                schema["$schema"] = "http://json-schema.org/schema#"
                target = out_dir / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1, sort_keys=True))
                written += 1
    return written


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "kubernetes":
        count = kubernetes(Path(argv[1]), Path(argv[2]))
    elif len(argv) >= 3 and argv[0] == "crd":
        count = crds([Path(p) for p in argv[1:-1]], Path(argv[-1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if count == 0:
        print("no schema written", file=sys.stderr)
        return 1
    print(f"{count} schema(s) written to {argv[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
