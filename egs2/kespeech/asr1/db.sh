# Usage:
#   . ./db.sh          # sourced by local/data.sh (and sllm.sh, for its stage-1 signature)
#
# Where the corpora of this recipe live.  Each corpus root can be overridden by an environment
# variable of the same name, e.g. `KESPEECH=/data/KeSpeech ./run.sh`.  A relative path is
# relative to this recipe directory (egs2/kespeech/asr1).
#
# KESPEECH: the extracted KeSpeech release: its KeSpeech/ folder, or the folder holding it:
#     KeSpeech/Tasks/ASR/{train_phase1,train_phase2,dev_phase1,dev_phase2,test}/
#                        {wav.scp,text,utt2spk,utt2subdialect}
#     KeSpeech/Audio/<spk>/phase{1,2}/<utt>.wav      (wav.scp paths are relative to KeSpeech/)
KESPEECH=${KESPEECH:-downloads/KeSpeech}
#
# WENETSPEECH: the WenetSpeech release folder (only its TEST_NET and TEST_MEETING segments are
#   used, as test sets; not needed with `./run.sh --wenetspeech false`):
#     WenetSpeech.json                               (metadata of all audios and segments)
#     audio/<split>/<source>/<group>/<aid>.opus      (paths as listed in WenetSpeech.json)
WENETSPEECH=${WENETSPEECH:-downloads/WenetSpeech}
#
# AISHELL: AISHELL-1 (only with `./run.sh --extra_train aishell`): the folder holding
#   data_aishell/ (or data_aishell/ itself):
#     data_aishell/transcript/aishell_transcript_v0.8.txt, data_aishell/wav/<spk>.tar.gz
AISHELL=${AISHELL:-downloads/aishell}
