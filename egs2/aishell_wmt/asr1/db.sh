# Usage:
#   . ./db.sh          # sourced by local/data.sh (and run.sh / sllm.sh)
#
# Where the corpora of this recipe live.  Each corpus root can be overridden by an environment
# variable of the same name, e.g. `AISHELL=/data/aishell ./run.sh`.  A relative path is
# relative to this recipe directory (egs2/aishell_wmt/asr1).
#
# AISHELL: AISHELL-1 (openslr.org/33), the folder data_aishell.tgz was extracted in (as for
#   ESPnet's egs2/aishell):
#     data_aishell/transcript/aishell_transcript_v0.8.txt
#     data_aishell/wav/{train,dev,test}/<spk>/BAC009<spk>W<nnnn>.wav      (extracted), or
#     data_aishell/wav/<spk>.tar.gz      (as downloaded: stage 1 extracts them once, in place,
#                                         or into local/data.sh --extract_dir DIR)
AISHELL=${AISHELL:-downloads/aishell}
#
# AISHELL2_TEST: the AISHELL-2 evaluation release (from AISHELL, on application), the folder
#   holding AISHELL-DEV-TEST-SET (or that folder itself):
#     AISHELL-DEV-TEST-SET/iOS/test/wav.scp       IT0011W0001<TAB>wav/T0011/IT0011W0001.wav
#     AISHELL-DEV-TEST-SET/iOS/test/trans.txt     IT0011W0001<TAB><text>
#     AISHELL-DEV-TEST-SET/iOS/test/wav/T0011/IT0011W0001.wav
#   (ids: device letter I, then the speaker folder, then W<nnnn>; speaker id IT0011)
AISHELL2_TEST=${AISHELL2_TEST:-downloads/aishell2}
#
# WMT19: WMT19 Chinese-English (statmt.org/wmt19): the training corpus and the test set
#     news-commentary-v14.en-zh.tsv                <English><TAB><Chinese>
#     sgm/newstest2019-zhen-src.zh.sgm             (from the test set package)
#     sgm/newstest2019-zhen-ref.en.sgm
WMT19=${WMT19:-downloads/wmt19}
#
# ALPACA_ZH: Chinese Alpaca instructions (the alpaca_data_zh_51k.json of Chinese-LLaMA-Alpaca)
#     alpaca_data_zh_51k.json                      [{"instruction", "input", "output"}, ...]
ALPACA_ZH=${ALPACA_ZH:-downloads/alpaca_zh}
#
# WENETSPEECH: WenetSpeech (wenet.org.cn/WenetSpeech, on application), the folder holding
#   WenetSpeech.json and audio/ (only dataset 3 uses it: 200 h of subset M)
#     WenetSpeech.json                             {"audios": [{"aid", "path", "segments": [...]}]}
#     audio/train/<source>/<group>/<aid>.opus      (the path of each audio in the JSON)
WENETSPEECH=${WENETSPEECH:-downloads/wenetspeech}
