# Usage:
#   . ./db.sh          # sourced by local/data.sh (and run.sh / sllm.sh)
#
# Where the corpora of this recipe live.  Each corpus root can be overridden by an environment
# variable of the same name, e.g. `MLC_SLM=/data/mlc_slm ./run.sh`.  A relative path is
# relative to this recipe directory (egs2/mlc_slm/asr1).
#
# MLC_SLM: the folder holding the extracted MLC-SLM release folders:
#     MLC-SLM_Workshop-Training_Set_<N>/data/English/American_English/<NNNN>/<session>.{wav,txt}
#                                       (one folder per part, read and combined into data/train)
#     MLC-SLM_Workshop-Development_Set/data/English/<Accent>/<session>.{wav,txt}
#                                      data/<Language>/<session>.{wav,txt}      -> data/dev
#     <evaluation set folders>          (optional, see --eval_sets of local/data.sh)
MLC_SLM=${MLC_SLM:-downloads/mlc_slm}
#
# COMMONVOICE: an extracted Common Voice 21.0 release (the cv-corpus-21.0-<date> folder), holding
#   one folder per language: <lang>/train.tsv and <lang>/clips/*.mp3 for en fr de it ja ko pt ru
#   es th vi.  Only needed by system S4 (local/data.sh --use_cv true).
COMMONVOICE=${COMMONVOICE:-downloads/cv-corpus-21.0}
