"""The preprocessor (ESPnet's ``preprocess_fn``): one utterance's fields -> token-id arrays."""
import random
import re
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from espnet2.train.preprocessor import AbsPreprocessor

from espnet_sllm.llm.tokenizer import bos_ids, load_tokenizer
from espnet_sllm.prompts.masking import mask_context
from espnet_sllm.prompts.template import ContextPrompt, PromptSelector, TargetTemplate


class SLLMPreprocessor(AbsPreprocessor):
    """Turns ``{speech, text, lang, text_prev, ...}`` into the arrays the model consumes.

    Output (numpy, collated and padded by ESPnet's ``CommonCollateFn``):
        speech: (L,) float32 waveform, unchanged; L = 0 for an utterance of a text-only task
            (``text_only_tasks``), which the model splices with 0 speech frames
        encoder_feats: (T, D_enc) float, unchanged, in place of ``speech`` when the data give
            the frozen encoder's cached output (`espnet_sllm.encoders.cache`); T = 0 for a
            text-only utterance. An utterance with both, or with neither, is an error.
        prefix: (P,) int64, BOS (when the tokenizer uses one) + tokens of the text before {speech}
        suffix: (S,) int64, tokens of the text after {speech}
        text:   (N + 1,) int64, target tokens + EOS (only when the utterance has a text): the
            tokens of ``target_template`` rendered with the utterance's string fields
        ctc_text: (C,) int64, tokens of the field ``ctc_text_name`` (no EOS), only when that is
            set and the target is not exactly that field (e.g. speech translation: the target
            is ``{text_tgt}``, CTC trains on the transcript ``text``); the model's CTC uses it
            instead of the target. Emitted for every utterance that has a target, so batches
            collate; empty (C = 0) for a text-only utterance, which CTC does not train on.
        lang_id: (1,) int64, index of the utterance's ``lang`` in ``languages`` (only when
            ``languages`` is set and the utterance has a ``lang``); SLLMTask's collate keeps
            it a non-sequence: the model gets (B, 1), read as (B,)
    String fields (``lang``, ``text_prev``, ...) are consumed here: they fill the template and do
    not reach the model. ``text_prev`` / ``text_next`` may be absent or empty (no context).

    Args:
        train: True in training: context masking applies only then.
        tokenizer_name_or_path, special_tokens, trust_remote_code: exactly the LLM's
            tokenizer arguments, so ids agree with the model's embedding table.
        prompt_template: one template or a mapping (nested as deep as ``prompt_key``)
            field value -> template, ``default`` at any level (see PromptSelector).
        prompt_key: the field(s) that select the template: ``lang`` (the default: the language
            in ``lang_name``, with the ``English-American`` -> ``English`` fallback), ``task``
            (``utt2task``), or an ordered combination ``task,lang`` (a string or a list) for a
            nested mapping task -> language -> template. A missing template is an error naming
            the utterance, the key value and the entries there are.
        target_template: the CE target, built from string fields: ``{text}`` (default, the
            transcript), ``{text_tgt}`` (speech translation), ``{text} <translation>
            {text_tgt}`` (chain of thought); or a mapping nested like ``prompt_template`` by
            ``prompt_key`` (``default`` at any level), one target per task in a set that mixes
            them, e.g. ``{asr: "{text}", st: "{text_tgt}", qa: "{text_tgt}"}`` with
            ``prompt_key: task``. It is built when the utterance has its
            ``text_name`` field (training and validation; decoding passes no text); a field it
            needs that the utterance lacks, or an empty one, is an error naming the utterance.
        hyp_marker: the hypothesis post-processing that matches ``target_template``: scoring
            takes the part of a hypothesis after this marker (it must appear in the template's
            literal text, or in one of them when ``target_template`` is a mapping); stage 9 of sllm.sh passes it to ``sllm_score --hyp_marker``. The
            preprocessor only checks it.
        ctc_text_name: the field CTC trains on (default None: the target); see ``ctc_text``.
        speech_name, text_name, lang_name, task_name: data names in
            ``--*_data_path_and_name_and_type`` (``task``: ``utt2task``).
        encoder_feats_name: the data name of the cached encoder output (sllm.sh
            ``--cache_encoder true`` gives ``<cache>/encoder_feats.scp,encoder_feats,kaldi_ark``).
        text_only_tasks: the tasks whose utterances have no audio (e.g. ``[qa]``: text QA
            trained beside speech tasks). Such an utterance has an empty ``wav.scp`` entry in
            its data directory, which stage 2 turns into a WAV of 0 samples: its ``speech`` is
            empty. An empty speech is allowed only when the utterance's ``task`` is one of
            these; audio in a text-only task, or no audio in any other task (an utterance
            without a ``task`` is ``asr``), is an error naming the utterance. The template of a
            text-only task still holds its one ``{speech}`` (the speech part is empty there):
            put it where audio would go, e.g. ``"{speech}Question: {text_src} Answer:"``, so one
            template may serve a task with and without audio.
        context_templates: language -> {history: "...{text_prev}...", future: "...{text_next}..."};
            renders the ``{context}`` field of the prompt template (see ContextPrompt).
        context_masking: apply Algorithm 1 (``mask_context``) to history and future, independently,
            in training; ``context_masking_conf`` holds its keep_prob / max_ratio / max_spans.
        seed: of the context masking (see "Masking draws" below).
        languages: the task option ``languages`` (SLLMTask passes it, the model gets the same
            list): the label set of ``lang``. A label not in it is an error naming the
            utterance and listing the valid ones. None: no ``lang_id`` (nothing changes).

    Masking draws (Algorithm 1 is a fresh draw each time an example is seen): every call that
    masks seeds its own generator with ``random.Random(f"{seed}/{uid}/{worker}/{r}")``, where
    ``worker`` is the data-loader worker id (-1 in the main process) and ``r`` is 64 bits drawn
    from Python's global ``random``. ESPnet seeds that global state per epoch and per worker:
    ``set_all_random_seed(seed + epoch)`` in the trainer before each epoch (num_workers 0), and
    ``worker_init_fn`` of ``SequenceIterFactory.build_iter`` with ``seed + epoch + worker_id`` in
    each worker. So the masks of a training run are reproducible for a given ESPnet ``--seed``,
    preprocessor ``seed`` and batch order, and differ across epochs, workers, utterances and
    repeated visits within an epoch. The worker id is part of the seed because ESPnet's worker
    seeds collide (epoch e, worker 1 and epoch e + 1, worker 0 both get seed + e + 1). One
    generator per utterance serves the history and then the future, independently.
    """

    def __init__(
        self,
        train: bool,
        tokenizer_name_or_path: str,
        special_tokens: Sequence[str] = (),
        prompt_template: Union[str, Mapping[str, str]] = "{speech}",
        speech_name: str = "speech",
        text_name: str = "text",
        lang_name: str = "lang",
        trust_remote_code: bool = False,
        context_templates: Optional[Mapping[str, Mapping[str, str]]] = None,
        context_masking: bool = False,
        context_masking_conf: Optional[Mapping[str, float]] = None,
        seed: int = 0,
        languages: Optional[Sequence[str]] = None,
        prompt_key: Union[str, Sequence[str]] = "lang",
        target_template: Union[str, Mapping] = "{text}",
        hyp_marker: Optional[str] = None,
        ctc_text_name: Optional[str] = None,
        task_name: str = "task",
        text_only_tasks: Union[str, Sequence[str]] = (),
        encoder_feats_name: str = "encoder_feats",
    ):
        super().__init__(train)
        self.encoder_feats_name = encoder_feats_name
        if isinstance(text_only_tasks, str):  # `text_only_tasks: qa` in a YAML config
            text_only_tasks = [text_only_tasks]
        self.text_only_tasks = list(text_only_tasks or ())
        if not all(isinstance(t, str) and t.strip() == t and t for t in self.text_only_tasks):
            raise ValueError(
                f"text_only_tasks must be task names (utt2task values), got {self.text_only_tasks}"
            )
        self.task_name = task_name
        self.languages = list(languages) if languages else None
        if self.languages is not None:
            dup = sorted({x for x in self.languages if self.languages.count(x) > 1})
            if dup or not all(isinstance(x, str) and x for x in self.languages):
                raise ValueError(
                    f"languages must be distinct non-empty strings, got {self.languages}"
                )
        self.tokenizer = load_tokenizer(tokenizer_name_or_path, special_tokens, trust_remote_code)
        self.bos = bos_ids(self.tokenizer)
        self.speech_name = speech_name
        self.text_name = text_name
        self.lang_name = lang_name
        keys = [k.strip() for k in prompt_key.split(",")] if isinstance(prompt_key, str) \
            else list(prompt_key)
        # The language level is named "lang" in PromptSelector (its fallback rule).
        self.prompt_key = [PromptSelector.LANGUAGE_KEY if k == lang_name else k for k in keys]
        self.prompts = PromptSelector(prompt_template, self.prompt_key)
        # One target template, or one per prompt_key value (nested like prompt_template), e.g.
        # {asr: "{text}", st: "{text_tgt}"} for a set that mixes tasks.
        if isinstance(target_template, str):
            self.targets = PromptSelector(
                target_template, self.prompt_key,
                leaf=lambda t: TargetTemplate(t, hyp_marker), what="target_template")
        else:
            self.targets = PromptSelector(target_template, self.prompt_key, leaf=TargetTemplate,
                                          what="target_template")
            if hyp_marker is not None and (not hyp_marker.strip() or not any(
                    hyp_marker in t.literal for t in self.targets.leaves())):
                raise ValueError(
                    f"hyp_marker {hyp_marker!r} must be non-blank and appear in the literal text "
                    f"of a target_template (scoring keeps the hypothesis after it)"
                )
        self.target_template = target_template
        self.hyp_marker = hyp_marker
        self.default_target = isinstance(target_template, str) and \
            target_template.strip() == "{" + text_name + "}"
        self.ctc_text_name = ctc_text_name
        # A separate CTC label sequence only when it is not the target itself.
        self.emit_ctc_text = ctc_text_name is not None and any(
            t.template.strip() != "{" + ctc_text_name + "}" for t in self.targets.leaves())
        self.context = ContextPrompt(context_templates) if context_templates else None
        self.context_masking = context_masking
        self.context_masking_conf = dict(context_masking_conf or {})
        self.seed = seed

    def unknown_special_tokens(self) -> List[str]:
        """The ``<|...|>`` tokens of the prompt templates that the tokenizer does not have as
        one token: such a token would be spelled out as text (e.g. a Whisper language token
        ``<|xx|>`` of a language Whisper does not know, or a typo)."""
        vocab = self.tokenizer.get_vocab()
        found = set()
        for leaf in self.prompts.leaves():
            found.update(re.findall(r"<\|[^|<>{}]+\|>", leaf.template))
        return sorted(t for t in found if t not in vocab)

    def encode(self, text: str) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        return np.asarray(ids, dtype=np.int64)

    def masking_rng(self, uid: str) -> random.Random:
        """The generator of one masking draw of ``uid`` (the rule is in the class docstring)."""
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else -1
        draw = random.getrandbits(64)  # ESPnet's per-epoch / per-worker seeded global state
        # A str seed is hashed with SHA-512: the same in every process (no PYTHONHASHSEED).
        return random.Random(f"{self.seed}/{uid}/{worker}/{draw}")

    def lang_index(self, uid: str, lang: str) -> int:
        """The index of ``lang`` in ``languages``; an unknown label is an error."""
        try:
            return self.languages.index(lang.strip())
        except ValueError:
            raise ValueError(
                f"utterance {uid}: language {lang!r} ({self.lang_name}) is not in languages; "
                f"valid: {self.languages}"
            ) from None

    def prompt_fields(self, uid: str, data: Dict) -> Dict[str, str]:
        """The string fields a template may use, plus ``context`` when context templates are set."""
        fields = {k: v for k, v in data.items() if isinstance(v, str) and k != self.text_name}
        # No utt2task: the utterance is speech recognition, as everywhere else (kaldi_dir's
        # combine fills utt2task with asr, scoring treats a missing task as asr).
        if not (fields.get(self.task_name) or "").strip():
            fields[self.task_name] = "asr"
        rng = None
        for name in ("text_prev", "text_next"):
            fields[name] = (fields.get(name) or "").strip()
            if self.train and self.context_masking and fields[name]:
                rng = rng or self.masking_rng(uid)
                fields[name] = mask_context(fields[name], rng, **self.context_masking_conf)[0]
        if self.context is not None:
            fields["context"] = self.context.render(fields.get(self.lang_name), fields)
        return fields

    def prompt_values(self, fields: Mapping[str, str]) -> Dict[str, Optional[str]]:
        """The values of the ``prompt_key`` fields (``lang`` is the field ``lang_name``)."""
        return {
            k: fields.get(self.lang_name if k == PromptSelector.LANGUAGE_KEY else k)
            for k in self.prompt_key
        }

    def field(self, uid: str, data: Mapping, name: str, what: str) -> str:
        """The stripped string field ``name``; absent or empty is an error naming ``uid``."""
        value = data.get(name)
        if not isinstance(value, str):
            raise ValueError(
                f"utterance {uid}: {what} needs the field {name!r}, which this utterance "
                f"lacks (its string fields: {sorted(k for k, v in data.items() if isinstance(v, str))}"
                f"); give the data name {name!r} (e.g. the file {name} of the data directory)"
            )
        if not value.strip():
            if name == self.text_name:
                raise ValueError(
                    f"utterance {uid}: empty text; stage 3 of the recipe drops such "
                    f"utterances (or remove it from the 'text' file)"
                )
            raise ValueError(f"utterance {uid}: empty {name!r} (needed by {what})")
        return value.strip()

    def render_target(self, uid: str, data: Mapping) -> str:
        """``target_template`` (the one selected by ``prompt_key`` when it is a mapping)
        rendered with the utterance's string fields."""
        values = {k: v for k, v in data.items() if isinstance(v, str)}
        try:
            target = self.targets.select(self.prompt_values(values))
        except KeyError as e:
            raise KeyError(f"utterance {uid}: {e.args[0]}") from None
        fields = {f: self.field(uid, data, f, "target_template") for f in target.fields}
        return target.render(fields)

    def check_speech(self, uid: str, speech: np.ndarray, data: Mapping,
                     cached: bool = False) -> bool:
        """Whether the utterance is text-only; speech (L,) (or with ``cached`` the encoder
        output (T, D_enc)) must be empty exactly when its task is in ``text_only_tasks``, else
        the error names the utterance, its task and the list."""
        task = data.get(self.task_name)
        task = task.strip() if isinstance(task, str) else None
        text_only = task in self.text_only_tasks
        if speech.ndim != (2 if cached else 1):
            what = "encoder_feats must be (frames, dim)" if cached else \
                "speech must be a mono waveform"
            raise ValueError(f"utterance {uid}: {what}, got shape {speech.shape}")
        n = speech.shape[0]
        unit = "cached encoder frames" if cached else "samples"
        if text_only and n > 0:
            raise ValueError(
                f"utterance {uid}: task {task!r} is text-only (text_only_tasks "
                f"{self.text_only_tasks}) but the utterance has audio ({n} {unit}); "
                f"leave its wav.scp entry empty, or remove {task!r} from text_only_tasks"
            )
        if not text_only and n == 0:
            what = f"task {task!r}" if task is not None else \
                f"no {self.task_name!r} field (a speech task: asr)"
            raise ValueError(
                f"utterance {uid}: no audio (empty speech, e.g. an empty wav.scp entry) but "
                f"{what} is not a text-only task (preprocessor_conf.text_only_tasks "
                f"{self.text_only_tasks}); give it audio, or declare its task text-only"
            )
        return text_only

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        speech = data.get(self.speech_name)
        feats = data.get(self.encoder_feats_name)
        if (speech is None) == (feats is None):
            raise ValueError(
                f"utterance {uid}: " + ("both" if speech is not None else "neither")
                + f" '{self.speech_name}' and '{self.encoder_feats_name}' data (give the waveform,"
                f" or the frozen encoder's cached output, one of the two)")
        if feats is not None:
            # The cache stores float16; the dataset casts to --train_dtype after this.
            feats = np.asarray(feats)
            text_only = self.check_speech(uid, feats, data, cached=True)
        else:
            speech = np.asarray(speech, dtype=np.float32)
            text_only = self.check_speech(uid, speech, data)
        fields = self.prompt_fields(uid, data)
        try:
            template = self.prompts.select(self.prompt_values(fields))
        except KeyError as e:
            raise KeyError(f"utterance {uid}: {e.args[0]}") from None
        try:
            before, after = template.render(fields)
        except KeyError as e:
            raise KeyError(f"utterance {uid}: {e.args[0]}") from None
        out = {
            **({self.speech_name: speech} if feats is None else {self.encoder_feats_name: feats}),
            "prefix": np.concatenate([np.asarray(self.bos, dtype=np.int64), self.encode(before)]),
            "suffix": self.encode(after),
        }
        if self.languages is not None and fields.get(self.lang_name) is not None:
            out["lang_id"] = np.asarray([self.lang_index(uid, fields[self.lang_name])], np.int64)
        text = data.get(self.text_name)
        if text is not None:
            if not isinstance(text, str):  # already tokenised (e.g. a cached set)
                if not self.default_target:
                    raise ValueError(
                        f"utterance {uid}: '{self.text_name}' is already tokenised but "
                        f"target_template is {self.target_template!r}: give the text"
                    )
                out[self.text_name] = np.asarray(text, dtype=np.int64)
            else:
                target = self.render_target(uid, data)
                ids = self.encode(target)
                out[self.text_name] = np.append(ids, self.tokenizer.eos_token_id).astype(np.int64)
                if self.emit_ctc_text and text_only:
                    # No audio, no CTC: the field need not exist for it (kept, so rows collate).
                    out["ctc_text"] = np.zeros(0, dtype=np.int64)
                elif self.emit_ctc_text:
                    out["ctc_text"] = self.encode(self.field(uid, data, self.ctc_text_name,
                                                             "ctc_text_name"))
        return out
