"""rag.prompts: templates on disk, with their placeholders checked."""

import pytest

from rag.prompts import EXPECTED, Prompt, PromptError, load_prompt, prompt_dirs


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_prompts_load_with_expected_placeholders(name):
    prompt = load_prompt(name)
    assert prompt.placeholders == EXPECTED[name]
    assert prompt.system and prompt.user
    messages = prompt.render(**{k: f"<{k}>" for k in EXPECTED[name]})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all("{" + k + "}" not in m["content"] for m in messages for k in EXPECTED[name])


def test_prompts_found_in_source_checkout():
    assert any(d.name in ("prompts", "_prompts") for d in prompt_dirs())


def test_answer_prompt_says_how_to_cite_and_refuse():
    system = load_prompt("answer").system
    assert "[P2]" in system and "The interview doesn't cover this." in system


def test_judge_prompt_keeps_literal_json_braces():
    messages = load_prompt("judge").render(question="q", reference="r", passages="p", answer="a")
    assert '{"verdict": "correct", "faithfulness"' in messages[0]["content"]


def test_render_names_missing_and_unknown_values():
    prompt = load_prompt("answer")
    with pytest.raises(PromptError, match="missing values for passages"):
        prompt.render(question="q")
    with pytest.raises(PromptError, match="unknown placeholders chapter"):
        prompt.render(question="q", passages="p", chapter="c")


def _write(tmp_path, name, text):
    (tmp_path / f"{name}.md").write_text(text)
    return tmp_path


def test_load_rejects_unknown_placeholder(tmp_path):
    d = _write(tmp_path, "answer", "sys\n---user---\n{passages}\n{question}\n{passage}")
    with pytest.raises(PromptError, match="unknown placeholders passage"):
        load_prompt("answer", d)


def test_load_rejects_missing_placeholder(tmp_path):
    d = _write(tmp_path, "answer", "sys\n---user---\n{question}")
    with pytest.raises(PromptError, match="missing placeholders passages"):
        load_prompt("answer", d)


def test_load_rejects_missing_separator_and_bad_braces(tmp_path):
    with pytest.raises(PromptError, match="---user---"):
        load_prompt("rewrite", _write(tmp_path, "rewrite", "no separator {question}"))
    with pytest.raises(PromptError, match="brace"):
        load_prompt("rewrite", _write(tmp_path, "rewrite", "s {\n---user---\n{question}"))


def test_unknown_prompt_name():
    with pytest.raises(PromptError, match="no prompt named 'nope'"):
        load_prompt("nope")


def test_prompt_without_expected_set_checks_at_render():
    prompt = Prompt.parse("custom", "be brief\n---user---\n{a} and {b}")
    assert prompt.render(a=1, b=2)[1]["content"] == "1 and 2"
    with pytest.raises(PromptError, match="missing values for b"):
        prompt.render(a=1)
