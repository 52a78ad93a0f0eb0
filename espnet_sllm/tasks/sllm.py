"""SLLMTask: the ESPnet task of Speech LLMs (registry, preprocessor, collate, build_model).

Imports are narrow on purpose: ``espnet2.tasks.asr`` pulls torchaudio, einops and a g2p that
tries an nltk download; we import ESPnet's components from their own modules instead.
"""
import argparse
import inspect
import logging
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.encoder.branchformer_encoder import BranchformerEncoder
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder
from espnet2.asr.encoder.transformer_encoder import TransformerEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.asr.frontend.s3prl import S3prlFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.trainer import Trainer
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import int_or_none, str2bool

from espnet_sllm.encoders.data2vec2 import Data2Vec2Encoder
from espnet_sllm.encoders.dual import DualEncoder
from espnet_sllm.encoders.wav2vec2 import HFWav2Vec2Encoder
from espnet_sllm.encoders.whisper import HFWhisperEncoder
from espnet_sllm.hf_audio_model import ESPnetHFAudioModel
from espnet_sllm.llm.abs_llm import AbsLLM
from espnet_sllm.llm.hf_causal_lm import HFCausalLM
from espnet_sllm.model import ESPnetSLLMModel, frontend_feats
from espnet_sllm.projectors import projector_classes
from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.prompts.preprocessor import SLLMPreprocessor

frontend_choices = ClassChoices(
    name="frontend",
    classes=dict(default=DefaultFrontend, s3prl=S3prlFrontend),
    type_check=AbsFrontend,
    default=None,  # HF encoders read the raw 16 kHz waveform
    optional=True,
)
specaug_choices = ClassChoices(
    name="specaug", classes=dict(specaug=SpecAug), type_check=AbsSpecAug, default=None,
    optional=True,
)
normalize_choices = ClassChoices(
    "normalize",
    classes=dict(global_mvn=GlobalMVN, utterance_mvn=UtteranceMVN),
    type_check=AbsNormalize,
    default=None,
    optional=True,
)
encoder_choices = ClassChoices(
    "encoder",
    classes=dict(
        whisper_hf=HFWhisperEncoder,
        mms_hf=HFWav2Vec2Encoder,
        data2vec2=Data2Vec2Encoder,
        dual=DualEncoder,
        conformer=ConformerEncoder,
        transformer=TransformerEncoder,
        e_branchformer=EBranchformerEncoder,
        branchformer=BranchformerEncoder,
    ),
    type_check=AbsEncoder,
    default="whisper_hf",
)
projector_choices = ClassChoices(
    "projector", classes=projector_classes, type_check=AbsProjector, default="linear"
)
llm_choices = ClassChoices("llm", classes=dict(hf=HFCausalLM), type_check=AbsLLM, default="hf")
model_choices = ClassChoices(
    "model", classes=dict(sllm=ESPnetSLLMModel, hf_audio=ESPnetHFAudioModel),
    type_check=AbsESPnetModel, default="sllm"
)
#: `model` choices that are one whole HF checkpoint (model_conf names it): no encoder,
#: projector or LLM of the registry (their *_conf must be empty)
WHOLE_MODELS = ("hf_audio",)

#: Data names a recipe may give besides speech/text: the per-utterance files of a data directory
#: that sllm.sh passes when present (its table ``data_files``: utt2lang -> lang, utt2task ->
#: task, utt2tgtlang -> tgt_lang, utt2subdialect -> subdialect, text_src, text_tgt, and the
#: context files text_prev / text_next). Keep the two lists equal (tests/recipe checks it).
OPTIONAL_DATA_NAMES = ("lang", "task", "tgt_lang", "subdialect", "text_prev", "text_next",
                       "text_src", "text_tgt")
#: The data name of a frozen encoder's cached output (espnet_sllm/encoders/cache.py): (T, D_enc)
#: frames per utterance in place of ``speech`` in training (sllm.sh --cache_encoder true).
ENCODER_FEATS_NAME = "encoder_feats"


def task_languages(args: argparse.Namespace) -> Optional[List[str]]:
    """The task option ``languages`` (None when unset or empty)."""
    languages = getattr(args, "languages", None)
    if isinstance(languages, str):  # `languages: en` in a YAML config
        languages = [languages]
    return list(languages) if languages else None


class StatsOnlyModel(AbsESPnetModel):
    """What ``--collect_stats true`` (stage 5) needs of the model: the frontend's features.

    Stage 5 derives shapes and feature statistics only; building the real model there would load
    Whisper-large-v3 and a 2-9B LLM in every job for nothing. ``frontend`` None (HF encoders read
    the waveform): no feature statistics are collected (ESPnet skips ``collect_feats`` when
    ``extract_feats_in_collect_stats`` is False), shapes still are.
    """

    def __init__(self, frontend: Optional[AbsFrontend]):
        super().__init__()
        self.frontend = frontend
        self.extract_feats_in_collect_stats = frontend is not None
        # ESPnet builds an optimizer even in collect_stats mode, and torch refuses an empty one.
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, **batch):
        raise RuntimeError("StatsOnlyModel is for --collect_stats only; it cannot be trained")

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        # Text-only rows (0 samples) get 0 frames: they add nothing to the feature statistics.
        feats, feats_lengths = frontend_feats(self.frontend, speech, speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}


def check_conf_keys(kind: str, name: str, cls: type, conf: Dict) -> None:
    """ValueError naming every key of ``<kind>_conf`` that ``cls`` does not take, with the valid
    ones (a raw TypeError from deep inside the build otherwise)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(conf) - set(params))
    if not unknown:
        return
    hint = ""
    if "downsample" in unknown and "num_queries" in params:
        hint = (" (a Q-Former gives num_queries frames whatever the input length: it has no "
                "rate; set num_queries instead)")
    valid = sorted(k for k in params if k not in ("self", "input_size", "output_size"))
    raise ValueError(f"{kind}_conf: unknown key(s) {unknown} for {kind} {name!r}{hint}; "
                     f"valid keys: {valid}")


class SLLMTask(AbsTask):
    """Speech encoder -> projector -> decoder-only LLM, trained with ESPnet's trainer."""

    num_optimizers: int = 1
    class_choices_list = [
        frontend_choices,
        specaug_choices,
        normalize_choices,
        encoder_choices,
        projector_choices,
        llm_choices,
        model_choices,
    ]
    trainer = Trainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--input_size",
            type=int_or_none,
            default=None,
            help="Input feature size when there is no frontend (HF encoders ignore it)",
        )
        group.add_argument(
            "--languages",
            type=str,
            nargs="+",
            default=None,
            help="The language labels (utt2lang values), one list read by the preprocessor "
            "(it emits lang_id, the index of the utterance's language) and the model (language "
            "ID losses, language embeddings), and by an encoder that takes `languages`",
        )
        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument(
            "--use_preprocessor", type=str2bool, default=True,
            help="Apply the prompt/tokenizer preprocessing (always needed for training)",
        )
        group.add_argument(
            "--preprocessor_conf",
            action=NestedDictAction,
            default=dict(),
            help="Keyword arguments of SLLMPreprocessor, e.g. prompt_template",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        # lang_id is one label per utterance: (B, 1), no lang_id_lengths.
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1, not_sequence=["lang_id"])

    @classmethod
    def build_preprocess_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Optional[Callable[[str, Dict[str, np.ndarray]], Dict[str, np.ndarray]]]:
        if not args.use_preprocessor:
            return None
        llm_conf = args.llm_conf or {}
        if getattr(args, "model", "sllm") in WHOLE_MODELS:
            # One checkpoint holds the tokenizer too (Whisper's, Qwen2-Audio's).
            model_conf = args.model_conf or {}
            if "model_name_or_path" not in model_conf:
                raise ValueError(f"model {args.model}: model_conf.model_name_or_path is required")
            llm_conf = {"model_name_or_path": model_conf["model_name_or_path"],
                        "trust_remote_code": model_conf.get("trust_remote_code", False)}
        if "model_name_or_path" not in llm_conf:
            raise ValueError("llm_conf.model_name_or_path is required (a local dir or hub id)")
        languages = task_languages(args)
        if "languages" in (args.preprocessor_conf or {}):
            raise ValueError(
                "preprocessor_conf.languages: set the top-level option `languages` instead "
                "(one list for the preprocessor and the model)"
            )
        preprocessor = SLLMPreprocessor(
            train=train,
            tokenizer_name_or_path=llm_conf.get("tokenizer_name_or_path")
            or llm_conf["model_name_or_path"],
            special_tokens=llm_conf.get("special_tokens", ()),
            trust_remote_code=llm_conf.get("trust_remote_code", False),
            languages=languages,
            **(args.preprocessor_conf or {}),
        )
        # A whole released model's prompt is made of its own special tokens (Whisper's
        # <|ja|><|transcribe|>, Qwen2-Audio's <|audio_bos|>): one it lacks is a config error.
        unknown = preprocessor.unknown_special_tokens() \
            if getattr(args, "model", "sllm") in WHOLE_MODELS else []
        if unknown:
            raise ValueError(f"preprocessor_conf.prompt_template: {unknown} are not tokens of "
                             f"{llm_conf['model_name_or_path']} (they would be read as text)")
        return preprocessor

    @classmethod
    def required_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        # Training reads speech or, from a frozen-encoder cache, encoder_feats (one of the two:
        # sllm_train checks the triples up front, the preprocessor each utterance).
        return ("speech",) if inference else ("text",)

    @classmethod
    def optional_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        speech = () if inference else ("speech", ENCODER_FEATS_NAME)
        return speech + (("text",) if inference else ()) + OPTIONAL_DATA_NAMES

    @classmethod
    def build_frontend(cls, args: argparse.Namespace) -> Tuple[Optional[AbsFrontend], int]:
        """The frontend (None: the encoder reads the waveform) and the encoder's input size."""
        frontend_class = frontend_choices.get_class(args.frontend)
        if frontend_class is not None:
            frontend = frontend_class(**args.frontend_conf)
            return frontend, frontend.output_size()
        return None, args.input_size if args.input_size is not None else 1

    @classmethod
    def encoder_conf(cls, args: argparse.Namespace) -> Dict:
        """``encoder_conf`` as the encoder's constructor gets it: with the task option
        ``languages`` when the constructor takes ``languages``."""
        encoder_class = encoder_choices.get_class(args.encoder)
        encoder_conf = dict(args.encoder_conf)
        if "languages" in inspect.signature(encoder_class.__init__).parameters:
            languages = task_languages(args)
            if encoder_conf.get("languages") not in (None, languages):
                raise ValueError(
                    f"encoder_conf.languages {encoder_conf['languages']} != languages "
                    f"{languages}: remove encoder_conf.languages (the task option is passed)"
                )
            encoder_conf["languages"] = languages
        return encoder_conf

    @classmethod
    def build_speech_side(cls, args: argparse.Namespace) -> Tuple[
            Optional[AbsFrontend], Optional[AbsSpecAug], Optional[AbsNormalize], AbsEncoder]:
        """frontend, specaug, normalize, encoder of the config (the model's speech side; the
        frozen-encoder cache builds these alone, espnet_sllm/encoders/cache.py)."""
        frontend, input_size = cls.build_frontend(args)
        specaug_class = specaug_choices.get_class(args.specaug)
        specaug = specaug_class(**args.specaug_conf) if specaug_class else None
        normalize_class = normalize_choices.get_class(args.normalize)
        normalize = normalize_class(**args.normalize_conf) if normalize_class else None
        encoder_class = encoder_choices.get_class(args.encoder)
        conf = cls.encoder_conf(args)
        check_conf_keys("encoder", args.encoder, encoder_class, conf)
        encoder = encoder_class(input_size=input_size, **conf)
        return frontend, specaug, normalize, encoder

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> AbsESPnetModel:
        if getattr(args, "collect_stats", False):
            logging.info("collect_stats: building the frontend only (no encoder, no LLM)")
            return StatsOnlyModel(cls.build_frontend(args)[0])
        languages = task_languages(args)
        if "languages" in (args.model_conf or {}):
            raise ValueError(
                "model_conf.languages: set the top-level option `languages` instead "
                "(one list for the preprocessor and the model)"
            )
        if args.model in WHOLE_MODELS:
            return cls.build_whole_model(args, languages)
        # 1. frontend, specaug, normalize, encoder; 2. LLM, then the projector between them
        frontend, specaug, normalize, encoder = cls.build_speech_side(args)
        check_conf_keys("llm", args.llm, llm_choices.get_class(args.llm), args.llm_conf)
        llm = llm_choices.get_class(args.llm)(**args.llm_conf)
        projector_conf = dict(args.projector_conf)
        for key, value in (("input_size", encoder.output_size()),
                           ("output_size", llm.hidden_size())):
            if projector_conf.setdefault(key, value) != value:
                raise ValueError(
                    f"projector_conf.{key}={projector_conf[key]} but the model needs {value} "
                    f"(encoder output {encoder.output_size()}, LLM hidden {llm.hidden_size()}); "
                    f"remove the key to have it set automatically"
                )
        check_conf_keys("projector", args.projector, projector_choices.get_class(args.projector),
                        projector_conf)
        projector = projector_choices.get_class(args.projector)(**projector_conf)

        model = model_choices.get_class(args.model)(
            frontend=frontend,
            specaug=specaug,
            normalize=normalize,
            encoder=encoder,
            projector=projector,
            llm=llm,
            languages=languages,
            **args.model_conf,
        )
        return cls.finish_model(model, args)

    @classmethod
    def build_whole_model(cls, args: argparse.Namespace,
                          languages: Optional[List[str]]) -> AbsESPnetModel:
        """``model: hf_audio``: the whole model from ``model_conf`` (a released checkpoint)."""
        for kind in ("encoder", "projector", "llm", "frontend", "specaug", "normalize"):
            conf = getattr(args, f"{kind}_conf", None)
            if conf:
                raise ValueError(
                    f"model {args.model} is one whole checkpoint (model_conf."
                    f"model_name_or_path): remove {kind}_conf {dict(conf)} from the config")
        model_class = model_choices.get_class(args.model)
        check_conf_keys("model", args.model, model_class, dict(args.model_conf or {}))
        model = model_class(languages=languages, **(args.model_conf or {}))
        return cls.finish_model(model, args)

    @classmethod
    def finish_model(cls, model: AbsESPnetModel, args: argparse.Namespace) -> AbsESPnetModel:
        """Checkpoint policy and the parameter count log, for every model class."""
        # ESPnet honours --save_strategy required_grad_only only with its own --use_adapter
        # (loralib / houlsby); our peft LoRA and frozen pretrained parts need it without.
        if (getattr(args, "save_strategy", "all") == "required_grad_only"
                and not getattr(args, "use_adapter", False)):
            model.save_trainable_only = True
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in model.parameters())
        # exact counts: a 1280 x 4096 alignment layer + 8 token rows is 5,279,744 (Wu et al.)
        logging.info(f"SLLM: {n_all:,} parameters, {n_train:,} trainable (before "
                     f"--freeze_param)")
        return model
