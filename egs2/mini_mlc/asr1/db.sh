# Usage:
#   . ./db.sh          # sourced by local/data.sh (and run.sh / sllm.sh)
#
# Where the corpora of this recipe live.  Each corpus root can be overridden by an environment
# variable of the same name, e.g. `MINI_MLC=/data/mini_mlc ./run.sh`.  A relative path is
# relative to this recipe directory.
#
# MINI_MLC: the synthetic demo corpus (espeak-ng conversations in the MLC-SLM release layout:
#   <root>/{train,valid,test}/data/<Language>/...).  local/data.sh synthesises it there when it
#   is absent (python -m espnet_sllm.data.synth.conversations); the --debug corpus goes to
#   ${MINI_MLC}_debug.
MINI_MLC=${MINI_MLC:-downloads/mini_mlc}
