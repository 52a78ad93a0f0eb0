"""Train a small sentencepiece tokenizer and save it as a Hugging Face tokenizer directory.

Used by recipes that train an LLM from scratch (stage 4, via :mod:`espnet_sllm.llm.scratch`), by
tests and by the demo: the result is
loaded with ``AutoTokenizer.from_pretrained(dir)``, exactly like a real LLM's tokenizer.
"""
import os
import tempfile
from typing import Iterable, Optional

DEFAULT_SENTENCES = (
    "hello world this is a small test sentence",
    "the quick brown fox jumps over the lazy dog",
    "transcribe speech to text please",
    "bonjour le monde et la petite maison",
    "guten tag die katze sitzt auf der matte",
    "今日は良い天気です",
    "สวัสดีครับ วันนี้อากาศดี",
    "one two three four five six seven eight nine ten",
)


def train_sentencepiece_tokenizer(
    out_dir: str,
    sentences: Optional[Iterable[str]] = None,
    vocab_size: int = 200,
    model_type: str = "bpe",
    character_coverage: float = 1.0,
) -> str:
    """Train sentencepiece on ``sentences`` and save an HF ``LlamaTokenizer`` to ``out_dir``.

    Special ids: 0 <unk>, 1 <s> (BOS), 2 </s> (EOS), 3 <pad>. ``vocab_size`` is lowered
    automatically when the text is too small for it (sentencepiece would refuse).
    Returns ``out_dir``.
    """
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    sentences = [s.strip() for s in (sentences or DEFAULT_SENTENCES) if s.strip()]
    if not sentences:
        raise ValueError("train_sentencepiece_tokenizer: no non-empty sentence given")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "text.txt")
        with open(text_path, "w", encoding="utf-8") as f:
            f.write("\n".join(sentences) + "\n")
        prefix = os.path.join(tmp, "sp")
        size = vocab_size
        while True:
            try:
                spm.SentencePieceTrainer.train(
                    input=text_path,
                    model_prefix=prefix,
                    vocab_size=size,
                    model_type=model_type,
                    character_coverage=character_coverage,
                    unk_id=0,
                    bos_id=1,
                    eos_id=2,
                    pad_id=3,
                    minloglevel=2,
                )
                break
            except RuntimeError as e:
                # sentencepiece says "Vocabulary size too high (N). Please set it to a value <= M."
                msg = str(e)
                if "<=" not in msg or size <= 8:
                    raise
                size = int(msg.rsplit("<=", 1)[1].strip().rstrip(".").split()[0])
        sp_dir = os.path.join(tmp, "sp_dir")
        os.makedirs(sp_dir)
        os.replace(prefix + ".model", os.path.join(sp_dir, "tokenizer.model"))
        # transformers converts the sentencepiece model to its tokenizers backend here.
        tok = LlamaTokenizer.from_pretrained(sp_dir)
        tok.pad_token = "<pad>"
        tok.save_pretrained(out_dir)
    return out_dir
