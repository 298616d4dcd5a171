"""ChatML: how chat messages travel over a plain-prompt protocol (TGI ``text_generation``, ``/v1/completions``).

A raw-prompt endpoint has no notion of roles, so the client has to render the conversation into
one string. ChatML (``<|im_start|>role\\n...<|im_end|>``) is the template of SmolLM2, Qwen and many
other open models; when the served model uses another template, configure ``use_chat`` so the
server applies the model's own. The dev server parses ChatML back into messages so that a backend
behind it sees the conversation, not a string with markup in it.
"""

from __future__ import annotations

import re
from typing import cast

from hera_router.backends.base import Message, Role

_START, _END = "<|im_start|>", "<|im_end|>"
_TURN = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)<\|im_end\|>\n?", re.DOTALL)


def render_chatml(messages: list[Message]) -> str:
    """The conversation as one ChatML prompt, ending with an open assistant turn.

    A conversation that ends with an assistant message is a prefill: that turn is left open, so
    the model continues the message instead of starting a new one.
    """
    if messages and messages[-1].role == "assistant":
        *closed, last = messages
        turns = "".join(f"{_START}{m.role}\n{m.content}{_END}\n" for m in closed)
        return f"{turns}{_START}assistant\n{last.content}"
    turns = "".join(f"{_START}{m.role}\n{m.content}{_END}\n" for m in messages)
    return f"{turns}{_START}assistant\n"


def parse_chatml(prompt: str) -> list[Message]:
    """Messages from a ChatML prompt; a prompt without ChatML markup is one user message."""
    if _START not in prompt:
        return [Message(role="user", content=prompt)]
    messages = [Message(role=cast(Role, role), content=content) for role, content in _TURN.findall(prompt)]
    # An open assistant turn after the last closed one is a prefill the model is to continue.
    tail = prompt[prompt.rfind(_END) + len(_END) :] if _END in prompt else prompt
    opened = tail.lstrip("\n")
    if opened.startswith(f"{_START}assistant\n") and len(opened) > len(f"{_START}assistant\n"):
        messages.append(Message(role="assistant", content=opened[len(f"{_START}assistant\n") :]))
    return messages or [Message(role="user", content=prompt)]
