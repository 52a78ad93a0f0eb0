# Usage: . ./path.sh   (sourced by run.sh / sllm.sh from egs2/<corpus>/<task>)
# Activates the project's environment (tools/venv, made by `make install` at the repo root).
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ ! -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
    echo "path.sh: ${MAIN_ROOT}/tools/venv is missing: run 'make install' in ${MAIN_ROOT}" >&2
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/venv/bin/activate"
export PYTHONIOENCODING=UTF-8
export PYTHONPATH="${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export TOKENIZERS_PARALLELISM=false
