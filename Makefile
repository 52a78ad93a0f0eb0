# Usage:
#   make install   # create tools/venv (idempotent) from tools/requirements.lock (every version exact)
#                  # and install the Debian packages (espeak-ng, sctk, sox, ffmpeg, libsndfile1)
#   make lock      # maintainers: re-resolve tools/requirements.txt (hand-edited) in a throw-away venv
#                  # and rewrite tools/requirements.lock from it; commit both
#   make check-deps  # maintainers, not in CI: what today's index serves for requirements.txt, checked
#                  # (install check + fast tests) and compared with the lock; writes nothing
#   make test      # install, then run the test suite
#   make demo      # install, then run the CPU demo recipe egs2/mini_mlc/asr1
#   make demo-debug  # the demo's CI-sized runs (./run.sh --debug true, then --system s3)
#   make mlc-slm-debug  # egs2/mlc_slm/asr1: its representative debug system, s3 (CPU; ~2 min)
#   make mlc-slm-debug-all  # all five mlc_slm systems with --debug true (CPU; ~9 min)
#   make ilt-debug      # egs2/mlc_slm/asr1 ILT: ilt_whisper, three merged rounds + data steps (CPU)
#   make ilt-debug-all  # + ilt_qwen2audio, the --rounds focus,fix ablation and --rounds none
#   make kespeech-debug  # egs2/kespeech/asr1: q05_conv1d_k4, 4 chained stages, each decoded (~4 min)
#   make kespeech-debug-all  # + q05_conv1d_k4_full with --ctc_finetune true, + the 26-point sweep
#   make aishell-wmt-debug  # egs2/aishell_wmt/asr1: align on dataset 1, LLM swap, one SVD k (~3 min)
#   make aishell-wmt-debug-all  # the nine trainings of Tables 1-3 (--paper true --debug true)
#   make bench     # not in CI: speed / storage / memory ratios -> BENCHMARKS.md (~7 min, 2 cores;
#                  # run it on a quiet machine: other load distorts the ratios)
#   make learn-check  # CI learning check: the demo model on 400 American English utterances
#                  # (./run.sh --size learn, 5-9 min); fails when its test MER > LEARN_MAX_MER
SHELL := /bin/bash
PYTHON ?= python3
VENV := tools/venv
PY := $(VENV)/bin/python
PIP_VERSION := 23.2.1
STAMP := $(VENV)/.installed

.PHONY: install test demo demo-debug mlc-slm-debug mlc-slm-debug-all ilt-debug ilt-debug-all kespeech-debug \
	kespeech-debug-all aishell-wmt-debug aishell-wmt-debug-all mls-debug mls-debug-all learn-check bench clean-venv debian lock check-deps audit

install: $(STAMP)

debian:
	@bash tools/install_debian.sh

# Installs exactly the lock (--no-deps: no resolver runs, so the index's newer releases never enter),
# then checks the result: torch/torchaudio ABI, a WAV read + resample, imports, `pip check`, and
# every installed version against the lock (tools/check_install.py; one readable line on failure).
$(STAMP): setup.py tools/requirements.lock tools/install_debian.sh tools/check_install.py
	@bash tools/install_debian.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --no-deps -r tools/requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) tools/check_install.py --lock tools/requirements.lock
	@touch $(STAMP)

lock:
	PYTHON=$(PYTHON) PIP_VERSION=$(PIP_VERSION) bash tools/lock.sh lock

check-deps:
	PYTHON=$(PYTHON) PIP_VERSION=$(PIP_VERSION) bash tools/lock.sh check

# Known vulnerabilities of the locked versions (pip-audit, in its own throw-away venv; not in CI:
# it needs the vulnerability service, pypi.org's JSON API, which a registry-only network lacks).
# --strict: a package that cannot be audited fails the target instead of passing silently.
PIP_AUDIT_VERSION := 2.10.1
audit:
	rm -rf tools/audit-venv && $(PYTHON) -m venv tools/audit-venv
	tools/audit-venv/bin/pip install --quiet pip-audit==$(PIP_AUDIT_VERSION)
	tools/audit-venv/bin/pip-audit --requirement tools/requirements.lock --no-deps --disable-pip \
		--strict --progress-spinner off

test: install
	$(PY) -m pytest -q tests

demo: install
	cd egs2/mini_mlc/asr1 && ./run.sh

# The debug demo, then stage 7 again in 3 jobs: the merged text must equal the 1-job text.
DEBUG_EXP := egs2/mini_mlc/asr1/exp_debug/sllm_train_debug
demo-debug: install
	cd egs2/mini_mlc/asr1 && ./run.sh --debug true --inference_nj 1
	test -s $(DEBUG_EXP)/RESULTS.md
	cd egs2/mini_mlc/asr1 && ./run.sh --debug true --stage 7 --stop_stage 7 \
		--inference_nj 3 --inference_tag decode_nj3
	cmp $(DEBUG_EXP)/decode_valid.acc.ave/test/text $(DEBUG_EXP)/decode_nj3/test/text
	@echo "demo-debug: 3-job decoding equals 1-job decoding"
	cd egs2/mini_mlc/asr1 && ./run.sh --debug true --system s3
	grep -q "MER by decoding pass" egs2/mini_mlc/asr1/exp_debug/sllm_train_s3_debug/RESULTS.md

# egs2/mlc_slm/asr1 with the debug configs: synthetic corpus in the real release layout, tiny
# random Whisper-large-v3 / Gemma-2 checkpoints, every stage of each system (S2/S3: stage 8 with
# hypothesis and with reference context); each system must end with a RESULTS.md.
# CI runs the representative system (S3: context training set, both stage-8 passes).
MLC_SLM_SYSTEMS := baseline s1 s2 s3 s4
mlc-slm-debug: install
	cd egs2/mlc_slm/asr1 && ./run.sh --system s3 --debug true
	test -s egs2/mlc_slm/asr1/exp_debug/sllm_s3_debug/RESULTS.md
mlc-slm-debug-all: install
	set -e; cd egs2/mlc_slm/asr1; for s in $(MLC_SLM_SYSTEMS); do \
		./run.sh --system $$s --debug true; \
		test -s exp_debug/sllm_$${s}_debug/RESULTS.md; \
	done
	@echo "mlc-slm-debug-all: $(MLC_SLM_SYSTEMS) trained, decoded and scored"

# egs2/mlc_slm/asr1, ILT (Iterative LoRA Training) with the debug configs: tiny random
# whisper-large-v3 / Qwen2-Audio-7B / WavLM checkpoints, the Focus -> Feed-Back -> Fix rounds
# merged in turn, pseudo labels by vote, token-frequency and speaker selection, espeak-ng accent
# TTS; the last round decoded and scored. -all adds Qwen2-Audio, an ablation that must reuse the
# Focus round (no second training) and the zero-shot base model.
ILT_EXP := egs2/mlc_slm/asr1/exp_debug
ilt-debug: install
	cd egs2/mlc_slm/asr1 && ./run.sh --system ilt_whisper --debug true
	test -s $(ILT_EXP)/sllm_ilt_whisper/focus+feedback+fix/RESULTS.md
	ls $(ILT_EXP)/sllm_ilt_whisper/focus+feedback/pseudo_labels/*/merged_focus/1best_recog/text
	grep -q "Counts of the selection steps" $(ILT_EXP)/RESULTS_ilt.md
	$(PY) -m zipfile -l $(ILT_EXP)/sllm_ilt_whisper/focus+feedback+fix/packed/*.zip \
		| grep -q "merged/lid_embeddings.safetensors"
ilt-debug-all: ilt-debug
	cd egs2/mlc_slm/asr1 && ./run.sh --system ilt_qwen2audio --debug true
	test -s $(ILT_EXP)/sllm_ilt_qwen2audio/focus+feedback+fix/RESULTS.md
	set -o pipefail; cd egs2/mlc_slm/asr1 && ./run.sh --system ilt_whisper --debug true --rounds focus,fix \
		2>&1 | tee $(CURDIR)/$(ILT_EXP)/ilt_focus_fix.log
	grep -q "ilt_whisper_focus_debug.yaml: skipped" $(ILT_EXP)/ilt_focus_fix.log
	test -s $(ILT_EXP)/sllm_ilt_whisper/focus+fix/RESULTS.md
	cd egs2/mlc_slm/asr1 && ./run.sh --system ilt_whisper --debug true --rounds none
	test -s $(ILT_EXP)/sllm_ilt_whisper/none/RESULTS.md
	@echo "ilt-debug-all: ilt_whisper, ilt_qwen2audio, focus+fix (Focus reused), none"

# egs2/kespeech/asr1 with the debug configs: espeak-ng corpora in the KeSpeech / WenetSpeech
# release layouts, tiny data2vec2 (fairseq layouts through the real converter) + Qwen2; every
# stage of the 4-stage chain decoded and scored (per subdialect), the stage table complete.
# -all adds the full-LLM system with --ctc_finetune true (CTC fine-tuning + encoder export)
# and the sweep of Tables 1-2 (26 stage-1 systems, ~25 min).
KS_EXP := egs2/kespeech/asr1/exp_debug
kespeech-debug: install
	cd egs2/kespeech/asr1 && ./run.sh --system q05_conv1d_k4 --debug true
	grep -q "| stage 4 |" $(KS_EXP)/sllm_q05_conv1d_k4/RESULTS_stages.md
	! grep -q "Not (yet) scored" $(KS_EXP)/sllm_q05_conv1d_k4/RESULTS_stages.md
kespeech-debug-all: kespeech-debug
	cd egs2/kespeech/asr1 && ./run.sh --system q05_conv1d_k4_full --debug true --ctc_finetune true
	! grep -q "Not (yet) scored" $(KS_EXP)/sllm_q05_conv1d_k4_full/RESULTS_stages.md
	cd egs2/kespeech/asr1 && ./run.sh --sweep true --debug true
	! grep -q "Not (yet) scored" $(KS_EXP)/sweep/RESULTS.md

# egs2/aishell_wmt/asr1 with the debug configs: espeak-ng corpora in the five release layouts,
# TTS of WMT19 / Alpaca, the multi-task sets at 1/1800 of the paper's hours, tiny Whisper + Llama
# (+ chat twin); CI: align on dataset 1, decoded as trained, with the swapped LLM and at one SVD k.
AW_EXP := egs2/aishell_wmt/asr1/exp_debug
aishell-wmt-debug: install
	cd egs2/aishell_wmt/asr1 && ./run.sh --system align --dataset 1 --debug true --svd_topk 8
	grep -q "| Yi-6B-Chat | [0-9]" $(AW_EXP)/RESULTS.md
	test -s $(AW_EXP)/sllm_align_d1/decode_svd8/aishell2_test/scores.json
aishell-wmt-debug-all: install
	cd egs2/aishell_wmt/asr1 && ./run.sh --paper true --debug true
	! grep -q "Not (yet) scored" $(AW_EXP)/RESULTS.md

# egs2/mls (Ideal-LLM) with the debug configs: espeak-ng MLS (8 languages), Common Voice 4 and
# CoVoST 2 in their release layouts, tiny random Whisper (128 mel) + MMS (wav2vec 2.0) + Phi-3;
# CI: asr1 base (dual encoders, selector, CTC + LID; Fig. 2 plot) then st1 base_cot from it
# (COT target, BLEU per direction). -all: every asr1 system, then every st1 system.
MLS_EXP := egs2/mls/asr1/exp_debug
MLS_ST_EXP := egs2/mls/st1/exp_debug
MLS_ASR_SYSTEMS := baseline base base_no_ws base_no_dual large
MLS_ST_SYSTEMS := baseline base large base_cot large_cot
mls-debug: install
	cd egs2/mls/asr1 && ./run.sh --system base --debug true
	! grep -q "Not (yet) scored" $(MLS_EXP)/RESULTS.md
	test -s $(MLS_EXP)/lang_weights.png
	cd egs2/mls/st1 && ./run.sh --system base_cot --debug true
	! grep -q "Not (yet) scored" $(MLS_ST_EXP)/RESULTS.md
mls-debug-all: install
	set -e; cd egs2/mls/asr1; for s in $(MLS_ASR_SYSTEMS); do \
		./run.sh --system $$s --debug true; done
	! grep -q "Not (yet) scored" $(MLS_EXP)/RESULTS.md
	set -e; cd egs2/mls/st1; for s in $(MLS_ST_SYSTEMS); do \
		./run.sh --system $$s --debug true; done
	! grep -q "Not (yet) scored" $(MLS_ST_EXP)/RESULTS.md

# A model that stops learning (a broken label shift, prompt splice or loss mask) still runs every
# stage of demo-debug; here it must reach a test MER under the bound. Bound and measured spread:
# README "CI learning check".
LEARN_MAX_MER := 30
LEARN_SCORES := egs2/mini_mlc/asr1/exp_learn/sllm_train_learn/decode_valid.acc.ave/test/scores.json
learn-check: install
	cd egs2/mini_mlc/asr1 && ./run.sh --size learn
	$(PY) -m espnet_sllm.bin.check_mer --scores $(LEARN_SCORES) --max_mer $(LEARN_MAX_MER)

bench: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) -m espnet_sllm.testing.bench --out BENCHMARKS.md

clean-venv:
	rm -rf $(VENV)
