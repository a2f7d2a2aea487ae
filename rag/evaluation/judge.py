"""The optional LLM judge: faithfulness and correctness of one answer, via prompts/judge.md.

Without a chat model nothing is scored: results say "not run", never a made-up number.
"""

from __future__ import annotations

import json
import re

NOT_RUN = "not run"
UNANSWERABLE_REFERENCE = "The interview doesn't cover this question."
VERDICTS = ("correct", "partly", "wrong")


def parse_judgement(text: str) -> dict | None:
    """The first JSON object in the reply with numeric faithfulness/correctness, clamped to [0, 1]."""
    text = re.sub(r"```(?:json)?", "", text or "")
    for m in re.finditer(r"\{", text):
        depth = 0
        for j in range(m.start(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                try:
                    obj = json.loads(text[m.start():j + 1])
                except json.JSONDecodeError:
                    break
                if isinstance(obj, dict) and "faithfulness" in obj and "correctness" in obj:
                    try:
                        f, c = float(obj["faithfulness"]), float(obj["correctness"])
                    except (TypeError, ValueError):
                        break
                    obj["faithfulness"] = min(max(f, 0.0), 1.0)
                    obj["correctness"] = min(max(c, 0.0), 1.0)
                    verdict = str(obj.get("verdict", "")).strip().lower()
                    obj["verdict"] = verdict if verdict in VERDICTS else None
                    return obj
                break
    return None


class Judge:
    def __init__(self, chat_model):
        from ..prompts import load_prompt

        self.model = chat_model
        self.prompt = load_prompt("judge")
        self.name = getattr(chat_model, "name", None) or getattr(chat_model, "model", None) or "chat model"

    def score(self, item: dict, answer) -> dict:
        from ..answer.generative import format_passages
        from ..errors import RagError

        reference = item.get("answer") or UNANSWERABLE_REFERENCE
        messages = self.prompt.render(question=item["question"], reference=reference,
                                      passages=format_passages(answer.hits) or "(none)",
                                      answer=answer.text)
        try:
            reply = self.model.complete(messages, temperature=0.0)
        except RagError as e:
            return {"status": f"error: {e}", "faithfulness": None, "correctness": None}
        parsed = parse_judgement(reply)
        if parsed is None:
            return {"status": "unparseable reply", "faithfulness": None, "correctness": None,
                    "raw": reply[:500]}
        return {"status": "ok", "faithfulness": parsed["faithfulness"],
                "correctness": parsed["correctness"], "verdict": parsed["verdict"],
                "unsupported_claims": parsed.get("unsupported_claims", []),
                "reason": str(parsed.get("reason", ""))[:300]}


def make_judge(config, chat_model=None):
    """A Judge when a chat model is passed in or configured, else None."""
    if chat_model is None and getattr(config, "chat_configured", False):
        from ..chat_models import OpenAIChatModel

        chat_model = OpenAIChatModel(config.chat_model, api_key=config.openai_api_key,
                                     base_url=config.openai_base_url)
    return Judge(chat_model) if chat_model is not None else None
