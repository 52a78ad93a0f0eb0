# Usage:
#   . ./db.sh          # sourced by local/data.sh (and run.sh / sllm.sh)
#
# Where the corpora of this recipe live.  Each corpus root can be overridden by an environment
# variable of the same name, e.g. `MLS=/data/mls ./run.sh`.  A relative path is relative to
# this recipe directory (egs2/mls/asr1).
#
# MLS: Multilingual LibriSpeech (openslr.org/94, the FLAC variant), one extracted folder per
#   language (english german dutch french spanish italian portuguese polish):
#     mls_<language>/metainfo.txt                                  (speaker genders)
#     mls_<language>/{train,dev,test}/transcripts.txt              <spk>_<book>_<utt><TAB>text
#     mls_<language>/{train,dev,test}/audio/<spk>/<book>/<spk>_<book>_<utt>.flac
#     mls_<language>/train/limited_supervision/{9hr,1hr/0..5}/handles.txt  (local/data.sh
#                                                                           --limited)
MLS=${MLS:-downloads/mls}
