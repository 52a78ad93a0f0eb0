"""Synthetic corpora, written in a real corpus's release layout so that the real reader reads
them (:mod:`espnet_sllm.data.synth.conversations`: the ``mini_mlc`` demo's conversations, in the
MLC-SLM layout; :mod:`espnet_sllm.data.synth.kespeech`: debug copies of KeSpeech and
WenetSpeech for egs2/kespeech/asr1; :mod:`espnet_sllm.data.synth.aishell_wmt`: debug copies of
AISHELL-1, AISHELL-2, WMT19, Alpaca-zh and WenetSpeech for egs2/aishell_wmt/asr1).  Tests in
``tests/data/synth/``.
"""
