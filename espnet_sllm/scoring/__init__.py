"""Scoring: per-language normalisation, WER/CER/MER with sclite or an equivalent pure-Python
aligner, ESPnet's score_{wer,cer} layout and RESULTS.md (stage 9 of the recipes); task-aware
scoring of translation (BLEU, ROUGE-L) and QA (ROUGE-L) utterances; a paper's numbers beside ours.

Modules: :mod:`.normalize` (normalisers, units per language), :mod:`.error_rate` (counts),
:mod:`.sclite` (trn files, running and parsing sclite), :mod:`.bleu` (sacreBLEU, tokenizer by
language), :mod:`.rouge` (rouge-score ROUGE-L in words or characters), :mod:`.tasks` (the metric
of each task: ``utt2task``), :mod:`.paper` (the ``paper_results.yaml`` format), :mod:`.report`
(one set end to end, collecting an experiment's results). A new metric: a module here, its use in
:mod:`.tasks`, its tests in ``tests/scoring/test_tasks.py``.
"""
