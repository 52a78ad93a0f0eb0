"""Scoring: per-language normalisation, WER/CER/MER with sclite or an equivalent pure-Python
aligner, ESPnet's score_{wer,cer} layout and RESULTS.md (stage 9 of the recipes).

Modules: :mod:`.normalize` (normalisers, units per language), :mod:`.error_rate` (counts),
:mod:`.sclite` (trn files, running and parsing sclite), :mod:`.report` (one set end to end,
collecting an experiment's results).
"""
