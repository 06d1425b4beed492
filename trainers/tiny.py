"""A tiny randomly initialised model and a tokenizer trained in-process: no hub, no downloads.

``vtforge train`` without ``--model`` and every CPU test use these. The tokenizer is byte-level BPE
(any text encodes, nothing is unknown) trained on the texts the run will see, wrapped in
``PreTrainedTokenizerFast`` with a ChatML chat template, so TRL treats it like a real chat model.
"""

from __future__ import annotations

from collections.abc import Iterable

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]

# ChatML. The assistant turn ends with <|im_end|>, the eos token, so the model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Always in the training corpus, so code and diffs tokenise sensibly even on a tiny sample.
BASE_CORPUS = [
    "diff --git a/src/module.py b/src/module.py\n--- a/src/module.py\n+++ b/src/module.py\n@@ -1,3 +1,3 @@\n",
    "def test_fix():\n    assert compute(2) == 4\n",
    "<think>The failing test calls the function with an empty list.</think>\n",
    "system user assistant localizer bugfixer testwriter\n",
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer trained on ``texts`` plus a small fixed corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([*BASE_CORPUS, *texts], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token=IM_END,
        pad_token=PAD,
        additional_special_tokens=[IM_START],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


TINY_MAX_POSITIONS = 4096  # room for a real BugFixer prompt (a file or two) plus a completion
TINY_MARKER = "vtforge_tiny"  # set in the model's config (saved with it): a run can tell a tiny lineage


def tiny_model(
    tokenizer,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    max_positions: int = TINY_MAX_POSITIONS,
):
    """A 2-layer Qwen2 model sized to ``tokenizer``, randomly initialised with ``seed``.

    Its window (``max_positions``) caps the context budget of runs on it: rows that do not fit are
    handled by the truncation policy, never cut. Positions are rotary (no parameters), so the 4,096
    default costs nothing until a row is that long; the config carries ``vtforge_tiny = True``.
    """
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    setattr(config, TINY_MARKER, True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
