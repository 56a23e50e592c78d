"""Validates template.yaml offline: cfn-lint on the SAM template, then the SAM transform
(aws-sam-translator, as `sam deploy` would run it), then cfn-lint on the transformed
CloudFormation. Exits non-zero on any error, printing what failed and where."""

import json
import os
import pathlib
import subprocess
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

REGION = "eu-west-2"


class NoManagedPolicies:
    """The template uses inline policy statements only, so no IAM lookup is needed."""

    def load(self):
        return {}


def lint(path: pathlib.Path) -> bool:
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "cfn-lint"), "--regions", REGION, "--", str(path)],
        capture_output=True,
        text=True,
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        print(f"cfn-lint {path}: FAILED (exit {result.returncode})\n{output}")
        return False
    print(f"cfn-lint {path}: ok")
    return True


def main() -> int:
    source = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    out_dir = pathlib.Path(".local")
    out_dir.mkdir(exist_ok=True)
    ok = lint(source)

    # The translator resolves pseudo parameters from the environment; no AWS call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    template = cfn_yaml.load(str(source))
    # `sam package` replaces local code paths with S3 URIs before the transform; do the same.
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://frontdesk-artifacts/{logical_id}.zip"
    params = {"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    try:
        transformed = transform(template, params, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"SAM transform: {cause.message}")
        return 1
    translated = out_dir / "template.transformed.json"
    translated.write_text(json.dumps(transformed, indent=1, default=str))
    kinds = sorted({r["Type"] for r in transformed["Resources"].values()})
    print(f"SAM transform: ok ({len(transformed['Resources'])} resources: {', '.join(kinds)})")
    ok = lint(translated) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
