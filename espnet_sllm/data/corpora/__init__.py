"""Corpus readers: one module per corpus, each turning a release's own layout into Kaldi data
directories (``wav.scp``, ``text``, ``utt2spk``, ``utt2lang`` and the optional per-utterance
files: a list of :class:`espnet_sllm.data.kaldi_dir.Utterance` written by
:func:`espnet_sllm.data.corpora.reader_utils.write_set`).

Every reader is a command (``python -m espnet_sllm.data.corpora.<name> --help``) run by a recipe's
``local/data.sh``, and follows the contract of :mod:`espnet_sllm.data.corpora.reader_utils`
(counted drops, ``--strict``, ``file:line`` errors, ``ERROR:`` + exit 1 instead of a traceback).
Its tests live in ``tests/data/corpora/test_<name>.py``.
"""
