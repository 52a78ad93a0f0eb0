# Usage:
#   . ./db.sh          # sourced by local/data.sh (and run.sh / sllm.sh)
#
# Where the corpora of this recipe live.  Each corpus root can be overridden by an environment
# variable of the same name, e.g. `COVOST2=/data/covost2 ./run.sh`.  A relative path is
# relative to this recipe directory (egs2/mls/st1).
#
# COMMONVOICE: an extracted Common Voice release 4 (cv-corpus-4-2019-12-10: the release CoVoST 2
#   is built on; a later release works too, its clips that CoVoST 2 lists but that are no longer
#   validated are dropped and counted), one folder per SOURCE language of the pairs read:
#     <src>/validated.tsv       transcripts and speakers (client_id), columns read by name
#     <src>/clips/<path>.mp3    the audio
#   src: en (for en_de), de, es, fr, it (for de_en es_en fr_en it_en).
COMMONVOICE=${COMMONVOICE:-downloads/cv-corpus-4}
#
# COVOST2: the CoVoST 2 translation tables, one per pair:
#     covost_v2.<src>_<tgt>.tsv          (columns path, sentence, translation, client_id, split)
#   or as released, https://dl.fbaipublicfiles.com/covost/covost_v2.<src>_<tgt>.tsv.tar.gz:
#     covost_v2.<src>_<tgt>.tsv.tar.gz   (extracted into data/local/covost2, see local/data.sh)
COVOST2=${COVOST2:-downloads/covost2}
