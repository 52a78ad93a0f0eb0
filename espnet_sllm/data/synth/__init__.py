"""Synthetic corpora, written in a real corpus's release layout so that the real reader reads
them (:mod:`espnet_sllm.data.synth.conversations`: the ``mini_mlc`` demo's conversations, in the
MLC-SLM layout).  Tests in ``tests/data/synth/``.
"""
