"""An external voice-cloning TTS run once per utterance (`CommandTTS`, registry name ``command``).

The step "TTS of English accents" of ILT (egs2/mlc_slm, `espnet_sllm.data.accent_tts`) speaks
selected English text in the voice of a prompt segment of the MLC-SLM training set, with a
zero-shot voice-cloning TTS (F5-TTS, Spark-TTS, ...).  Such systems come with their own
environment and command line, so this backend runs a **command template** per utterance::

    python -m espnet_sllm.bin.synthesize --in data/text --out data/text_tts --nj 2 \\
        --tts command --tts_conf prompts=data/prompts timeout=600 \\
        "command=f5-tts_infer-cli --ref_audio {prompt_wav} --ref_text={prompt_text} \\
                 --gen_text={text} --output_dir {out_dir} --output_file {out_wav}"

    from espnet_sllm.tts.command import CommandTTS
    tts = CommandTTS("my_tts --ref {prompt_wav} --ref_text {prompt_text} --text {text} "
                     "--out {out_wav}", prompts="data/prompts")

Voices are prompts: ``prompts`` is a Kaldi data directory (``wav.scp`` [+ ``segments``],
``text``; every utterance is a prompt, its id the voice name) or a list of prompts, each a dict
``{"id", "wav", "text", "start", "end"}`` (``text`` empty when unknown; ``start``/``end`` in
seconds, absent for a whole file; ``wav`` any wav.scp entry: a file, ``cmd |``, ``ark:offset``)
or a `espnet_sllm.data.kaldi_dir.Utterance`.  `voices` returns the prompt ids; the caller draws
one per utterance (`espnet_sllm.tts.synthesize`: seeded by the utterance id).

Per utterance, in a fresh temporary folder: the prompt (the segment of its recording, mono,
16 kHz, 16-bit) is written to ``prompt.wav``; the template, with its placeholders filled in, is
run by ``bash -c`` (in ``cwd`` when given, in its own process group, killed whole after
``timeout`` seconds); its output is read back (any rate and channel count soundfile reads:
averaged to mono, resampled to 16 kHz) and the folder removed.  Placeholders (each value
shell-quoted: write ``{text}``, never ``'{text}'``; a literal brace is ``{{`` / ``}}``):

    {text}         the text to speak (blanks collapsed)
    {prompt_wav}   the prompt's WAV
    {prompt_text}  the prompt's transcript ("" when the prompts have none)
    {out_wav}      where the command must write its audio: <tmp>/out/tts.wav
    {out_dir}      <tmp>/out, an empty folder: a command that names its own file (Spark-TTS's
                   timestamp) may write there instead; the one audio file found there is read
    {seed}         an integer drawn from the utterance's random stream (for commands that
                   take a sampling seed: the same utterance gets the same seed on a rerun)
    {voice}        the prompt id

``{text}`` and one of ``{out_wav}`` / ``{out_dir}`` are required.

Failures.  A command exiting with a non-zero status, running past ``timeout``, or leaving no
readable audio raises `espnet_sllm.tts.abs_tts.SynthesisFailed` (its last output lines in the
message): `espnet_sllm.tts.synthesize.synthesize_dir` drops the utterance as ``failed``, counts
it, and stops with an error when more than its ``max_fail_ratio`` (5 %) failed.  A text
without anything to pronounce is ``not_speakable`` (the command is not run); a prompt whose
audio cannot be read stops the run (a setup error, not a failure of one utterance).  `check`:
the program (the first word of the template after ``VAR=value`` assignments, or ``program``)
exists (on PATH, or as a path, relative to ``cwd`` when given), ``cwd`` exists, every prompt
file exists.

Example templates (their options checked against the projects' sources; versions differ, so
check ``--help`` of the installed one):

* F5-TTS (``pip install f5-tts``; ``f5-tts_infer-cli``, `f5_tts/infer/infer_cli.py`): the
  output is ``Path(output_dir) / output_file``, so an absolute ``{out_wav}`` is used as it is;
  ``--ref_text ""`` makes F5-TTS transcribe the prompt itself (Whisper).  The model is loaded
  at every call (tens of seconds): use ``--nj`` (several commands at once) or a wrapper
  around a loaded model for large sets::

      f5-tts_infer-cli --model F5TTS_v1_Base --ref_audio {prompt_wav}
          --ref_text={prompt_text} --gen_text={text} --output_dir {out_dir} --output_file {out_wav}

* Spark-TTS (a clone of github.com/SparkAudio/Spark-TTS with its model, ``cwd=`` that clone;
  ``cli/inference.py`` writes ``<save_dir>/<timestamp>.wav``, found in ``{out_dir}``; its
  prompt is the audio and its transcript)::

      python -m cli.inference --model_dir pretrained_models/Spark-TTS-0.5B --device 0
          --text={text} --prompt_speech_path {prompt_wav} --prompt_text={prompt_text}
          --save_dir {out_dir}

  (``--opt={text}`` rather than ``--opt {text}``: argparse would take a text starting with
  ``-`` for an option.)

Constructor arguments (``--tts_conf key=value``): ``command`` (the template), ``prompts``,
``timeout`` (seconds, default 600; 0: none), ``cwd``, ``program`` (what `check` looks for).
`config` (what an output folder records, a rerun with another one being refused): the
template, ``cwd``, the number of prompts and a hash of them (ids, audio entries, times, texts).
"""
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile

from espnet_sllm.data.kaldi_dir import Utterance, read_data_dir
from espnet_sllm.tts.abs_tts import AbsTTS, SynthesisFailed, TextNotSpeakable
from espnet_sllm.tts.espeak import speakable

SR = 16000
PLACEHOLDERS = ("text", "prompt_wav", "prompt_text", "out_wav", "out_dir", "seed", "voice")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
TAIL_LINES = 5


class Prompt(dict):
    """One prompt: ``id``, ``wav`` (a wav.scp entry), ``text``, ``start``/``end`` (None for the
    whole recording)."""


def _prompt(p: Union[Mapping[str, Any], Utterance], where: str) -> Prompt:
    if isinstance(p, Utterance):
        seg = p.segment
        return Prompt(id=p.uttid, wav=p.wav, text=" ".join((p.text or "").split()),
                      start=seg.start if seg else None, end=seg.end if seg else None)
    if not isinstance(p, Mapping):
        raise ValueError(f"{where}: a prompt is a dict (id, wav, text, start, end) or an "
                         f"Utterance, got {type(p).__name__}")
    unknown = sorted(set(p) - {"id", "uttid", "wav", "text", "start", "end"})
    if unknown:
        raise ValueError(f"{where}: unknown prompt field(s) {unknown}; valid: id, wav, text, "
                         f"start, end")
    pid = p.get("id", p.get("uttid"))
    if not pid or not isinstance(pid, str) or any(c.isspace() for c in pid):
        raise ValueError(f"{where}: prompt id must be a non-empty token, got {pid!r}")
    if not p.get("wav"):
        raise ValueError(f"{where}: prompt {pid}: no wav")
    start, end = p.get("start"), p.get("end")
    if (start is None) != (end is None):
        raise ValueError(f"{where}: prompt {pid}: give both start and end, or neither")
    if start is not None and not 0 <= float(start) < float(end):
        raise ValueError(f"{where}: prompt {pid}: need 0 <= start < end, got {start}, {end}")
    return Prompt(id=pid, wav=str(p["wav"]), text=" ".join(str(p.get("text") or "").split()),
                  start=None if start is None else float(start),
                  end=None if end is None else float(end))


def load_prompts(prompts: Union[str, "os.PathLike[str]", Sequence[Any]]) -> List[Prompt]:
    """The prompts of a data directory (every utterance with audio) or of a list."""
    if isinstance(prompts, (str, os.PathLike)):
        d = os.fspath(prompts)
        if not os.path.isdir(d):
            raise ValueError(f"CommandTTS: prompts directory {d} does not exist")
        out = [_prompt(u, d) for u in read_data_dir(d) if u.wav]
        where = d
    else:
        where = "CommandTTS prompts"
        out = [_prompt(p, f"{where}[{i}]") for i, p in enumerate(prompts)]
    if not out:
        raise ValueError(f"{where}: no prompt (with audio)")
    seen = set()
    for p in out:
        if p["id"] in seen:
            raise ValueError(f"{where}: prompt id {p['id']!r} given twice")
        seen.add(p["id"])
    return out


def parse_template(command: str) -> List[str]:
    """The placeholders of ``command``; a ValueError for an unknown one, a format spec, a
    quoted placeholder, or a template without ``{text}`` or an output."""
    if not isinstance(command, str) or not command.strip():
        raise ValueError("CommandTTS: command is empty")
    fields = []
    try:
        parsed = list(string.Formatter().parse(command))
    except ValueError as e:
        raise ValueError(f"CommandTTS: command {command!r}: {e} (a literal brace is {{{{ or "
                         f"}}}})") from None
    for literal, field, spec, conv in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise ValueError(f"CommandTTS: unknown placeholder {{{field}}} in the command; "
                             f"valid: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        if spec or conv:
            raise ValueError(f"CommandTTS: placeholder {{{field}}} with a conversion or format "
                             f"spec; write it bare")
        if literal and literal[-1] in "'\"":
            raise ValueError(f"CommandTTS: placeholder {{{field}}} is quoted in the command; "
                             f"values are shell-quoted already: write {{{field}}} bare")
        fields.append(field)
    if "text" not in fields:
        raise ValueError("CommandTTS: the command has no {text}")
    if "out_wav" not in fields and "out_dir" not in fields:
        raise ValueError("CommandTTS: the command has neither {out_wav} nor {out_dir}: where "
                         "does it write its audio?")
    return fields


def first_program(command: str) -> str:
    """The program a template runs: its first word after ``VAR=value`` assignments."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"CommandTTS: command {command!r}: {e}") from None
    for w in words:
        if not _ASSIGNMENT.match(w):
            return w
    raise ValueError(f"CommandTTS: command {command!r} runs no program")


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4000))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [x.strip() for x in re.split(r"[\r\n]+", data) if x.strip()]
    return " | ".join(lines[-TAIL_LINES:])


class CommandTTS(AbsTTS):
    """A voice-cloning command per utterance; voices are prompt ids (see the module docstring)."""

    def __init__(self, command: str, prompts: Union[str, Sequence[Any]],
                 timeout: float = 600.0, cwd: Optional[str] = None,
                 program: Optional[str] = None):
        self.command = str(command)
        self.fields = parse_template(self.command)
        self.program = str(program) if program else first_program(self.command)
        self.timeout = float(timeout) if timeout else 0.0
        if self.timeout < 0:
            raise ValueError(f"CommandTTS: timeout must be >= 0, got {timeout}")
        self.cwd = os.fspath(cwd) if cwd else None
        self.prompts_source = os.fspath(prompts) if isinstance(prompts, (str, os.PathLike)) \
            else None
        plist = load_prompts(prompts)
        self.prompts: Dict[str, Prompt] = {p["id"]: p for p in plist}
        blob = json.dumps([[p["id"], p["wav"], p["start"], p["end"], p["text"]] for p in plist],
                          ensure_ascii=False)
        self.prompts_sha = hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]

    def config(self) -> Dict[str, Any]:
        return {"command": self.command, "cwd": self.cwd, "n_prompts": len(self.prompts),
                "prompts_sha": self.prompts_sha}

    def voices(self) -> List[str]:
        return list(self.prompts)

    def check(self) -> None:
        prog = self.program
        if "/" in prog:
            path = prog if os.path.isabs(prog) or not self.cwd else os.path.join(self.cwd, prog)
            found = os.path.isfile(path) and os.access(path, os.X_OK)
        else:
            found = shutil.which(prog) is not None
        if not found:
            raise RuntimeError(f"CommandTTS: program {prog!r} (run by the command "
                               f"{self.command[:120]!r}) not found"
                               + ("" if "/" in prog else " on PATH")
                               + ": install it, activate its environment, or fix the command "
                                 "(program=... names what to look for when the command starts "
                                 "with a shell builtin)")
        if self.cwd and not os.path.isdir(self.cwd):
            raise RuntimeError(f"CommandTTS: cwd {self.cwd} does not exist")
        for p in self.prompts.values():
            entry = p["wav"].strip()
            if entry.endswith("|") or re.search(r":\d+$", entry):
                continue  # a pipe or an archive offset: read when used
            if not os.path.isfile(entry):
                raise RuntimeError(f"CommandTTS: audio of prompt {p['id']} not found: {entry}")

    # ------------------------------------------------------------------------- one utterance
    def prompt_audio(self, voice: str) -> np.ndarray:
        """The prompt's samples: mono float32 at 16 kHz (RuntimeError when unreadable)."""
        from espnet_sllm.data.formatting import FormatError, Source, resample, to_mono

        if voice not in self.prompts:
            raise ValueError(f"CommandTTS: unknown voice {voice!r} (not a prompt id)")
        p = self.prompts[voice]
        where = f"prompt {voice}"
        try:
            src = Source(p["wav"], where)
            try:
                start = 0 if p["start"] is None else int(round(p["start"] * src.rate))
                stop = src.frames if p["end"] is None else min(src.frames,
                                                              int(round(p["end"] * src.rate)))
                x = src.read(start, stop)
            finally:
                src.close()
        except (FormatError, RuntimeError, OSError) as e:
            raise RuntimeError(f"CommandTTS: cannot read {where} ({p['wav']}): {e}") from None
        if len(x) == 0:
            raise RuntimeError(f"CommandTTS: {where} ({p['wav']} {p['start']}-{p['end']} s) "
                               f"holds no audio")
        return resample(to_mono(x, "mean", where), src.rate, SR).astype(np.float32)

    def synthesize(self, text: str, voice: str,
                   rng: np.random.Generator) -> Tuple[np.ndarray, int]:
        wav, sr, _ = self.synthesize_with_info(text, voice, rng)
        return wav, sr

    def synthesize_with_info(self, text: str, voice: str, rng: np.random.Generator
                             ) -> Tuple[np.ndarray, int, Dict[str, Any]]:
        seed = int(rng.integers(0, 2 ** 31 - 1))
        text = " ".join(text.split())
        if not speakable(text):
            raise TextNotSpeakable(f"nothing to pronounce in {text!r}")
        prompt = self.prompt_audio(voice)
        tmp = tempfile.mkdtemp(prefix="command_tts_")
        try:
            prompt_wav = os.path.join(tmp, "prompt.wav")
            soundfile.write(prompt_wav, prompt, SR, subtype="PCM_16", format="WAV")
            out_dir = os.path.join(tmp, "out")
            os.mkdir(out_dir)
            out_wav = os.path.join(out_dir, "tts.wav")
            values = {"text": text, "prompt_wav": prompt_wav,
                      "prompt_text": self.prompts[voice]["text"], "out_wav": out_wav,
                      "out_dir": out_dir, "seed": str(seed), "voice": voice}
            cmd = self.command.format_map({k: shlex.quote(v) for k, v in values.items()})
            self._run(cmd, os.path.join(tmp, "log.txt"))
            x, sr = self._read_output(out_wav, out_dir, os.path.join(tmp, "log.txt"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return x, sr, {"seed": seed}

    def _run(self, cmd: str, log_path: str) -> None:
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(["bash", "-c", "set -o pipefail\n" + cmd],
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.cwd,
                                        start_new_session=True)
            except OSError as e:  # no bash, a cwd that went away: nothing will work
                raise RuntimeError(f"CommandTTS: cannot start the command: {e}") from None
            try:
                rc = proc.wait(timeout=self.timeout or None)
            except subprocess.TimeoutExpired:
                rc = None
            finally:
                if proc.poll() is None:  # timed out, or interrupted: the whole group goes
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
        if rc is None:
            raise SynthesisFailed(f"command timed out after {self.timeout:g} s: "
                                  f"{_tail(log_path)}")
        if rc != 0:
            raise SynthesisFailed(f"command exited with status {rc}: {_tail(log_path)}")

    @staticmethod
    def _read_output(out_wav: str, out_dir: str, log_path: str) -> Tuple[np.ndarray, int]:
        from espnet_sllm.data.formatting import resample

        if os.path.isfile(out_wav):
            path = out_wav
        else:
            found = sorted(f for f in os.listdir(out_dir)
                           if f.lower().endswith(AUDIO_SUFFIXES)
                           and os.path.isfile(os.path.join(out_dir, f)))
            if len(found) != 1:
                raise SynthesisFailed(
                    f"the command exited with status 0 but wrote "
                    + ("no audio file" if not found else f"{len(found)} audio files "
                                                         f"({', '.join(found[:3])})")
                    + f" ({{out_wav}} or one file in {{out_dir}}): {_tail(log_path)}")
            path = os.path.join(out_dir, found[0])
        try:
            x, sr = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as e:  # soundfile: LibsndfileError (a RuntimeError)
            raise SynthesisFailed(f"cannot read the command's output "
                                  f"{os.path.basename(path)}: {e}") from None
        x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
        return resample(x, int(sr), SR).astype(np.float32), SR
