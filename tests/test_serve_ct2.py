"""`aiayn serve --backend ct2`: the same API on a CTranslate2 export. Greedy answers equal our
backend's on the same model, n_best hypotheses come scored and ranked, /v1/attention says it is
not available (501), a bad export folder is one line before any port is bound, and a real
server process under load loses nothing and batches."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from benchmarks.serve_load import run_load, start_server

from aiayn.cli import main
from aiayn.data import BOS_ID, EOS_ID
from aiayn.export.ct2 import Ct2Translator
from aiayn.serve.app import create_app
from serve_helpers import export_ct2, in_process, random_translator

SENTENCES = ["1 2 3", "4 5", "9", "3 1 4 1 5 9 2 6", "7 7 7 7", "0 8"]


@pytest.fixture(scope="module")
def ct2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random tiny model of `random_translator`, exported float32."""
    return export_ct2(random_translator(), tmp_path_factory.mktemp("ct2") / "export")


@functools.cache
def our_model() -> torch.nn.Module:
    return random_translator().model


def our_log_prob(src: list[int], out: list[int], eos: bool) -> float:
    """Our model's log P of `out` (and of the EOS after it when `eos`)."""
    model = our_model()
    target = torch.tensor([*out, EOS_ID] if eos else out)
    with torch.no_grad():
        logits = model(torch.tensor([src]), torch.tensor([[BOS_ID, *out][: len(target)]]))
    return float(logits[0].log_softmax(-1)[torch.arange(len(target)), target].sum())


async def answers(app: Any, bodies: list[dict[str, Any]], path: str = "/v1/translate") -> list:
    async with in_process(app) as client:
        return [await client.post(path, json=body) for body in bodies]


def test_greedy_answers_equal_our_backends_on_the_same_model(ct2_folder: Path) -> None:
    bodies = [{"text": SENTENCES}, *({"text": s} for s in SENTENCES)]
    ours = asyncio.run(answers(create_app(random_translator()), bodies))
    theirs = asyncio.run(answers(create_app(Ct2Translator(ct2_folder, threads=1)), bodies))
    for a, b in zip(ours, theirs, strict=True):
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.json()["translations"] == b.json()["translations"]  # text, tokens, null scores
    texts = [t["text"] for t in theirs[0].json()["translations"]]
    assert len(set(texts)) > len(SENTENCES) // 2  # outputs vary with the source
    assert any(
        len(t.split()) == len(s.split()) + 5 for s, t in zip(SENTENCES, texts, strict=True)
    )  # cap


def test_n_best_gives_n_hypotheses_with_descending_scores_and_true_log_probs(
    ct2_folder: Path,
) -> None:
    translator = Ct2Translator(ct2_folder, threads=1)
    found = translator.translate_full(SENTENCES, beam_size=4, alpha=0.6, n_best=3)
    alone = [translator.translate_full([s], beam_size=4, alpha=0.6, n_best=3)[0] for s in SENTENCES]
    for text, translation, single in zip(SENTENCES, found, alone, strict=True):
        hyps = translation.hypotheses
        assert len(hyps) == 3 and len({tuple(h.tokens) for h in hyps}) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        # A sentence's answer does not depend on its batch (up to float rounding).
        assert [h.tokens for h in hyps] == [h.tokens for h in single.hypotheses]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in single.hypotheses])
        src = translator.vocabs.src.encode(text)
        limit = len(src) + translator.decode.max_len_offset - 1
        for h in hyps:  # log_prob is our model's log P of the tokens (and EOS unless at cap)
            assert len(h.tokens) <= limit
            assert h.log_prob == pytest.approx(
                our_log_prob(src, h.tokens, eos=len(h.tokens) < limit), abs=1e-3
            )
            steps = len(h.tokens) + (len(h.tokens) < limit)
            assert h.score == pytest.approx(h.log_prob / steps**0.6, abs=1e-5)

    [answer] = asyncio.run(
        answers(create_app(translator), [{"text": SENTENCES[3], "beam": 4, "n_best": 3}])
    )
    [got] = answer.json()["translations"]
    assert [h["score"] for h in got["n_best"]] == pytest.approx(
        [h.score for h in found[3].hypotheses], abs=1e-5
    )
    assert got["text"] == found[3].text and got["score"] == got["n_best"][0]["score"]


def test_attention_is_a_501_naming_the_reason_and_info_says_so(ct2_folder: Path) -> None:
    app = create_app(Ct2Translator(ct2_folder, threads=1))

    async def scenario() -> None:
        async with in_process(app) as client:
            attention = await client.post("/v1/attention", json={"text": "1 2 3"})
            assert attention.status_code == 501
            assert "not available with CTranslate2" in attention.json()["error"]
            assert "--backend ours" in attention.json()["error"]
            info = (await client.get("/v1/info")).json()
            assert info["attention_unavailable"] == attention.json()["error"]
            assert (info["heads"], info["layers"]) == (4, {"encoder": 2, "decoder": 2})
            translated = await client.post("/v1/translate", json={"text": "1 2 3"})
            assert translated.status_code == 200  # and it keeps translating
            ours = create_app(random_translator())
            async with in_process(ours) as our_client:
                assert (await our_client.get("/v1/info")).json()["attention_unavailable"] is None

    asyncio.run(scenario())


def test_bad_folders_and_options_are_one_line_errors_before_any_port_is_bound(
    ct2_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import uvicorn

    def no_bind(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("uvicorn.run was called: a port would be bound")

    monkeypatch.setattr(uvicorn, "run", no_bind)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for f in ct2_folder.iterdir():
        (damaged / f.name).symlink_to(f)
    (damaged / "model.bin").unlink()
    (damaged / "model.bin").write_bytes(b"not a model")
    cases = [
        (["--backend", "ct2", "--model", str(tmp_path / "nothing")], "export.json"),
        (["--backend", "ct2", "--model", str(damaged)], "CTranslate2 cannot load it"),
        (["--backend", "ct2"], "--backend ct2 needs --model"),
        (["--backend", "ct2", "--model", str(ct2_folder), "--run", "r"], "not --run"),
        (["--model", str(ct2_folder)], "--model is for --backend ct2"),
        ([], "--run DIR is required"),
    ]
    for options, words in cases:
        assert main(["serve", *options]) == 2, options
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("aiayn serve: error:"), (options, err)
        assert words in err, (options, err)


@pytest.mark.slow  # a server process
def test_a_ct2_server_under_load_loses_nothing_and_batches(
    ct2_folder: Path, tmp_path: Path
) -> None:
    sentences = [" ".join(str((i * 7 + j * 3) % 10) for j in range(2 + i % 5)) for i in range(50)]
    expected = dict(zip(sentences, Ct2Translator(ct2_folder).translate(sentences), strict=True))

    def right(text: str, answer: dict[str, Any]) -> bool:
        return [t["text"] for t in answer["translations"]] == [expected[text]]

    args = ["--threads", "1"]
    log = tmp_path / "serve.log"
    with start_server(ct2_folder, args, log=log, backend="ct2") as server:
        result = asyncio.run(run_load(server.url, sentences, 8, 50, timeout_s=60, check=right))
        assert result.lost == 0 and result.statuses == {"200": 400}, result
        assert result.wrong == 0  # each answer is its own sentence's translation
        assert result.mean_batch > 1, result
        attention = httpx.post(f"{server.url}/v1/attention", json={"text": "1 2"})
        assert attention.status_code == 501
