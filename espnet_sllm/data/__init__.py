"""Data preparation: everything that writes or reads Kaldi-style data directories.

Three kinds of module, each in its own place:

``espnet_sllm.data.corpora``  one reader per corpus (``python -m espnet_sllm.data.corpora.<name>``):
                              a release's own layout -> Kaldi data directories, on the shared
                              contract of :mod:`espnet_sllm.data.corpora.reader_utils`.
``espnet_sllm.data.synth``    synthetic corpora (the CPU demo's conversations).
``espnet_sllm.data.*``        corpus-independent Kaldi-directory tools: :mod:`.kaldi_dir`
                              (read / write / validate / combine / subset), :mod:`.check`
                              (up-front checks of ESPnet data files), :mod:`.balance` (language
                              balancing), :mod:`.context_copy` (the 2x context training set).
"""
