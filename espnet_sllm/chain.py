"""Chained training: cumulative checkpoints and LoRA merges between the stages of a chain.

``sllm.sh --train_config "s1.yaml s2.yaml s3.yaml"`` trains the configs in turn, each stage
starting from the one before. After stage k, `write_stage` (CLI: ``espnet_sllm.bin.chain_step``)
writes ``<exp_k>/chain/``:

``model.pth``
    The cumulative checkpoint: every weight that rebuilding the model from stage k's config
    would not give back, i.e. everything trained so far in the chain (also what stage k froze,
    e.g. a projector trained in stage 1) and everything not loaded from a pretrained checkpoint
    (new modules, added-token rows). Frozen weights of a component that loads a pretrained
    checkpoint (``loads_pretrained``: ``whisper_hf``, ``llm: hf``) are left out when they equal
    what the config reloads, so with a frozen Whisper and LLM the file holds the small trained
    part only. With stage k's ``config.yaml`` it decodes on its own.
``llm/`` or ``merged/`` (only where the chain merges; with ``chain_mode`` merge after every
stage, the last one too)
    Stage k's LLM with its LoRA adapters and learned added-token rows folded in, as a plain HF
    checkpoint + tokenizer; stage k+1 loads it as its pretrained LLM (Iterative LoRA Training:
    every round merges the adapters of the round before and starts new ones). ``model: hf_audio``
    (a whole Whisper / Qwen2-Audio with LoRA anywhere) writes ``merged/``: the whole model +
    processor + LID embeddings, which stage k+1 loads as ``model_conf.model_name_or_path``.
``next_opts``
    The ``sllm_train`` options that start stage k+1 (one per line): ``--init_param`` on
    ``model.pth`` and, after a merge, ``--llm_conf`` pointing at ``llm/``.
``chain.yaml``
    What was kept and decided, and why.

Boundaries (`plan_next`): the chain merges after stage k when ``chain_mode`` is ``merge``, or
when the LoRA of stage k+1 differs from that of stage k (rank, alpha or target modules, or
LoRA on one side only): adapters of one shape cannot be loaded into another, and folding them
in keeps what they learned exactly (fp32). When stage k+1 names another LLM than stage k (an
LLM swap), its LLM and CTC head (over the LLM's vocabulary) are not initialised from the chain;
everything else is. Any other key that does not fit stage k+1's model is an error that names it
(`ESPnetSLLMModel.load_state_dict`), never a silent re-initialisation.
"""
import logging
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set

import torch
import yaml

from espnet_sllm.torch_utils import PRETRAINED_ATTR

CHAIN_MODES = ("cumulative", "merge")


class ChainError(ValueError):
    """A checkpoint that does not fit the model of its stage, or an impossible chain."""


def read_config(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise ChainError(f"{path}: not a YAML mapping")
    return conf


def reloadable_keys(model: torch.nn.Module) -> Set[str]:
    """State-dict keys of the weights that rebuilding from the config reloads: in the components
    with ``loads_pretrained`` True, the frozen parameters loaded from their checkpoint (marked by
    `torch_utils.mark_pretrained`) and the persistent buffers. Computed without calling ``state_dict`` (which
    `ESPnetSLLMModel` filters with these keys)."""
    keys: Set[str] = set()
    for prefix, module in model.named_modules():
        if not getattr(module, "loads_pretrained", False):
            continue
        head = f"{prefix}." if prefix else ""
        # remove_duplicate=False: tied input/output embeddings have two state-dict names.
        for name, p in module.named_parameters(remove_duplicate=False):
            # Only tensors loaded from the checkpoint (mark_pretrained): a LoRA adapter or an
            # added-token parameter of the same component is not given back by rebuilding.
            if not p.requires_grad and getattr(p, PRETRAINED_ATTR, False):
                keys.add(head + name)
        for sub_name, sub in module.named_modules(remove_duplicate=False):
            sub_head = f"{sub_name}." if sub_name else ""
            for name, _ in sub.named_buffers(recurse=False):
                if name not in sub._non_persistent_buffers_set:
                    keys.add(head + sub_head + name)
    return keys


def full_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Every weight of ``model``, whatever its ``state_dict`` leaves out for saving."""
    full = getattr(model, "full_state_dict", None)
    return full() if full is not None else model.state_dict()


def apply_freeze_param(model: torch.nn.Module, freeze_param: Iterable[str]) -> None:
    """ESPnet's ``--freeze_param`` (as in AbsTask.main_worker): no gradient for these prefixes."""
    for t in freeze_param or ():
        for k, p in model.named_parameters():
            if k == t or k.startswith(t + "."):
                p.requires_grad = False


def load_states(files: Sequence[str]) -> Dict[str, torch.Tensor]:
    """The union of the state dicts in ``files`` (later files win); memory-mapped, so a full
    checkpoint of a large frozen LLM is not read into memory to be compared."""
    state: Dict[str, torch.Tensor] = {}
    for path in files:
        try:
            part = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # not in the zip format: mmap is impossible
            part = torch.load(path, map_location="cpu", weights_only=True)
        part = part.get("module", part)  # DeepSpeed
        if not isinstance(part, Mapping):
            raise ChainError(f"{path}: not a state dict")
        state.update(part)
    return state


def check_fits(state: Mapping[str, torch.Tensor], model: torch.nn.Module, where: str,
               allowed_missing: Set[str]) -> None:
    """Raise ChainError naming every key of ``state`` the model lacks, every shape that differs
    and every missing key outside ``allowed_missing``."""
    own = full_state_dict(model)
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)
    )
    missing = sorted(k for k in own if k not in state and k not in allowed_missing)
    problems = []
    if unexpected:
        problems.append(f"keys the model does not have: {_few(unexpected)}")
    if shapes:
        problems.append(f"shapes that differ (checkpoint vs model): {_few(shapes)}")
    if missing:
        problems.append(f"trained or non-pretrained keys missing: {_few(missing)}")
    if problems:
        raise ChainError(f"{where} does not fit the model: " + "; ".join(problems))


def _few(items: List[str], n: int = 8) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def cumulative_state(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor]
) -> Dict[str, torch.Tensor]:
    """What of ``state`` (the trained weights of a stage) rebuilding ``model`` (freshly built from
    that stage's config, pretrained weights loaded) would not give back: a key is left out only
    when it is frozen, belongs to a component that loads a pretrained checkpoint and equals the
    reloaded value exactly."""
    fresh = full_state_dict(model)
    reloadable = reloadable_keys(model)
    out = {}
    for key, value in state.items():
        if (key in reloadable and key in fresh and value.dtype == fresh[key].dtype
                and torch.equal(value, fresh[key])):
            continue
        out[key] = value
    return out


#: model class -> (the conf key naming its pretrained model and LoRA, its state-dict prefix,
#: the directory its merge writes): ``model: sllm`` merges its LLM, ``model: hf_audio`` the
#: whole checkpoint (Whisper / Qwen2-Audio with LoRA anywhere, ILT)
MERGED_PART = {"sllm": ("llm_conf", "llm.", "llm"), "hf_audio": ("model_conf", "hf.", "merged")}


def _part(conf: Mapping) -> tuple:
    model = conf.get("model", "sllm")
    if model not in MERGED_PART:
        raise ChainError(f"unknown model {model!r}; valid: {sorted(MERGED_PART)}")
    return MERGED_PART[model]


def lora_signature(llm_conf: Mapping) -> Optional[tuple]:
    """(rank, alpha, sorted target modules) of an ``llm_conf``, None without LoRA (dropout does
    not change the weights, so it may differ between stages)."""
    r = int(llm_conf.get("lora_r", 0) or 0)
    if r == 0:
        return None
    targets = llm_conf.get("lora_target_modules", ("q_proj", "k_proj", "v_proj"))
    return (r, float(llm_conf.get("lora_alpha", 32)), tuple(sorted(targets)))


def _llm_identity(conf: Mapping) -> tuple:
    key = _part(conf)[0]
    llm_conf = conf.get(key) or {}
    return (conf.get("model", "sllm"), conf.get("llm", "hf") if key == "llm_conf" else None,
            llm_conf.get("model_name_or_path"),
            llm_conf.get("tokenizer_name_or_path") or llm_conf.get("model_name_or_path"))


def plan_next(this_conf: Mapping, next_conf: Mapping, chain_mode: str) -> dict:
    """How stage k+1 starts from stage k. ``this_conf`` and ``next_conf`` are the stages'
    configs as the user wrote them (before a merge redirected an LLM path).

    Returns {"merge": bool, "exclude": [key prefixes not initialised], "reason": str}.
    """
    if chain_mode not in CHAIN_MODES:
        raise ChainError(f"unknown chain_mode {chain_mode!r}; valid: {list(CHAIN_MODES)}")
    if _llm_identity(this_conf) != _llm_identity(next_conf):
        if chain_mode == "merge":
            raise ChainError(
                f"chain_mode merge: the next stage names another LLM "
                f"({_llm_identity(next_conf)[2]!r} vs {_llm_identity(this_conf)[2]!r}); a merged "
                f"LLM can only start a stage of the same LLM (use chain_mode cumulative)"
            )
        return {"merge": False, "exclude": ["llm.", "ctc."],
                "reason": "the next stage names another LLM: its LLM and CTC head (over the "
                          "LLM vocabulary) start from their own checkpoint, everything else "
                          "from this stage"}
    key, prefix, _ = _part(this_conf)
    this_lora = lora_signature(this_conf.get(key) or {})
    next_lora = lora_signature(next_conf.get(key) or {})
    if chain_mode == "merge":
        return {"merge": True, "exclude": [prefix],
                "reason": "chain_mode merge: the LLM with this stage's LoRA folded in starts "
                          "the next stage as its pretrained LLM"}
    if this_lora != next_lora:
        return {"merge": True, "exclude": [prefix],
                "reason": f"the LoRA changes ({_lora_text(this_lora)} -> "
                          f"{_lora_text(next_lora)}): this stage's adapters are folded into the "
                          f"LLM, which starts the next stage as its pretrained LLM"}
    return {"merge": False, "exclude": [],
            "reason": "same LLM and LoRA: the next stage starts from every weight of this one"}


def _lora_text(sig: Optional[tuple]) -> str:
    if sig is None:
        return "no LoRA"
    return f"LoRA r={sig[0]} alpha={sig[1]:g} on {','.join(sig[2])}"


def next_stage_options(model_path: str, llm_dir: Optional[str], plan: Mapping,
                       model: str = "sllm") -> List[str]:
    """``sllm_train`` options that start the next stage (ESPnet's ``--init_param
    <file>:<src_key>:<dst_key>:<exclude prefixes>``)."""
    init = model_path
    if plan["exclude"]:
        init += ":::" + ",".join(plan["exclude"])
    opts = ["--init_param", init]
    if plan["merge"] and model == "hf_audio":
        opts += ["--model_conf", f"model_name_or_path={llm_dir}"]
    elif plan["merge"]:
        for key, value in (("model_name_or_path", llm_dir), ("tokenizer_name_or_path", llm_dir),
                           ("pretrained", "true")):
            opts += ["--llm_conf", f"{key}={value}"]
    return opts


def write_stage(
    config: str,
    model_file: str,
    out_dir: str,
    input_config: Optional[str] = None,
    next_config: Optional[str] = None,
    chain_mode: str = "cumulative",
    init_files: Sequence[str] = (),
) -> dict:
    """Write ``out_dir``/model.pth (+ llm/ at a merge, next_opts, chain.yaml) for one stage.

    Args:
        config: the stage's ``config.yaml`` as ESPnet wrote it in the experiment directory.
        model_file: its trained weights (e.g. ``valid.acc.best.pth``).
        input_config: the stage's config as the user wrote it (LLM identity and LoRA are read
            from it; default ``config``).
        next_config: the next stage's config as written by the user (None: last stage).
        init_files: checkpoints the stage started from (``model.pth`` of the stage before),
            under ``model_file``: weights ``model_file`` lacks come from them.
    """
    from espnet_sllm.tasks.sllm import SLLMTask

    if chain_mode not in CHAIN_MODES:
        raise ChainError(f"unknown chain_mode {chain_mode!r}; valid: {list(CHAIN_MODES)}")
    model, args = SLLMTask.build_model_from_file(config, None, "cpu")
    apply_freeze_param(model, getattr(args, "freeze_param", ()))
    state = load_states(list(init_files) + [model_file])
    check_fits(state, model, model_file, allowed_missing=reloadable_keys(model))
    keep = cumulative_state(model, state)
    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, "model.pth")
    torch.save(keep, model_path + ".tmp")
    os.replace(model_path + ".tmp", model_path)  # a crash never leaves half a checkpoint
    n_keep = sum(v.numel() for v in keep.values())
    n_all = sum(v.numel() for v in full_state_dict(model).values())
    report = {
        "config": config,
        "model_file": model_file,
        "cumulative_checkpoint": model_path,
        "kept_tensors": len(keep),
        "kept_parameters": n_keep,
        "model_parameters": n_all,
        "left_out": f"{len(state) - len(keep)} frozen tensors equal to what the config reloads",
    }
    logging.info(f"chain: {model_path}: {len(keep)} tensors, {n_keep / 1e6:.2f}M of "
                 f"{n_all / 1e6:.2f}M values (the rest is reloaded from pretrained checkpoints)")
    this_conf = read_config(input_config or config)
    if next_config is not None or chain_mode == "merge":
        # chain_mode merge: the merge (and how a next stage would start from it) does not depend
        # on the next stage, so the last stage is merged too (the final model, for packing).
        next_conf = read_config(next_config) if next_config is not None else this_conf
        plan = plan_next(this_conf, next_conf, chain_mode)
        llm_dir = None
        if plan["merge"]:
            llm_dir = os.path.join(out_dir, _part(this_conf)[2])
            model.load_state_dict(state, strict=False)
            # model: sllm merges its LLM; hf_audio the whole model (+ its LID embeddings)
            part = model.llm if this_conf.get("model", "sllm") == "sllm" else model
            part.save_pretrained(llm_dir)
        opts = next_stage_options(model_path, llm_dir, plan, this_conf.get("model", "sllm"))
        with open(os.path.join(out_dir, "next_opts"), "w", encoding="utf-8") as f:
            f.write("\n".join(opts) + "\n")
        report.update(next_config=next_config, chain_mode=chain_mode, merge=plan["merge"],
                      merged_dir=llm_dir, exclude=plan["exclude"], reason=plan["reason"],
                      next_options=opts)
        logging.info(f"chain: next stage {next_config}: {plan['reason']}")
    with open(os.path.join(out_dir, "chain.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(report, f, sort_keys=False, allow_unicode=True)
    return report
