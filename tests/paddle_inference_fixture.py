"""A Paddle Inference model as PaddleNLP's text-classification export_model.py writes it, in the
Paddle environment (.venv-paddle), once per test session:

    .venv-paddle/bin/python tests/paddle_inference_fixture.py OUT_DIR [TEXTS_JSON]

OUT_DIR/checkpoint: a tiny PaddleNLP BertForSequenceClassification (hidden 32, 2 layers, 3 labels,
every matrix scaled up so the logits depend on the input), written by save_pretrained, with
PaddleNLP's BertTokenizer over a vocabulary trained on SST-2 text (tests/paddle_fixtures.py).
OUT_DIR/export: what export_model.py makes of it: ``paddle.jit.to_static`` with int64 input_ids and
token_type_ids [None, None], ``paddle.jit.save`` to ``inference`` (Paddle 3: inference.json +
inference.pdiparams), and the tokenizer's save_pretrained. OUT_DIR/reference.npz: Paddle Inference's
own predictor on the export, fed by PaddleNLP's tokenizer, on the texts and pairs of OUT_DIR/texts.json
(the texts of TEXTS_JSON, a JSON list, if given; to 64 tokens, the positions the graph embeds).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.paddle_fixtures import LABELS, SHARPEN, SIZES, texts, tokenizer_for  # noqa: E402

TEXTS = ["This is a great movie!", "a dull , lifeless script", "ok", "the plot drags on and on for far too long"]
# sentence pairs: PaddleNLP's tokenizer gives the second text segment 1, as the exported graph was fed
PAIRS = [["A man plays a guitar.", "A person makes music."], ["the film is great", "it was bad , really bad"]]


def predictor_logits(export: Path, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
    """Paddle Inference's own run of the export (no oneDNN: its plain CPU kernels)."""
    import paddle.inference as pi

    program = export / "inference.json"
    config = pi.Config(
        str(program if program.is_file() else export / "inference.pdmodel"), str(export / "inference.pdiparams")
    )
    config.disable_gpu()
    predictor = pi.create_predictor(config)
    feed = {"input_ids": ids, "token_type_ids": types}
    for name in predictor.get_input_names():
        predictor.get_input_handle(name).copy_from_cpu(feed[name])
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def main(out: Path, given: list[str] = TEXTS) -> None:
    import paddle
    import paddlenlp.transformers as pt

    tok = tokenizer_for("BertTokenizer", texts(), Path(tempfile.mkdtemp(prefix="bert-tok-")))
    options = dict(SIZES, vocab_size=len(tok), num_labels=len(LABELS), max_position_embeddings=64)
    options |= {"id2label": dict(enumerate(LABELS)), "label2id": {name: i for i, name in enumerate(LABELS)}}
    paddle.seed(0)
    model = pt.BertForSequenceClassification(pt.BertConfig(**options))
    rng = np.random.default_rng(0)
    for key, value in model.state_dict().items():
        array = value.numpy()
        array = (
            rng.normal(0.0, 0.5, array.shape)
            if key.startswith("classifier")
            else array * (SHARPEN if array.ndim == 2 else 1)
        )
        value.set_value(array.astype(np.float32))
    model.eval()
    model.save_pretrained(str(out / "checkpoint"))
    tok.save_pretrained(str(out / "checkpoint"))
    # export_model.py (PaddleNLP's applications/text_classification): to_static with two int64 inputs, jit.save
    spec = [paddle.static.InputSpec([None, None], "int64", name) for name in ("input_ids", "token_type_ids")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), str(out / "export" / "inference"))
    tok.save_pretrained(str(out / "export"))
    encoded = tok(given, padding=True, truncation=True, max_length=64, return_attention_mask=False)
    ids = np.asarray(encoded["input_ids"], np.int64)
    types = np.asarray(encoded["token_type_ids"], np.int64)
    pairs = tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_attention_mask=False)
    pair_ids = np.asarray(pairs["input_ids"], np.int64)
    pair_types = np.asarray(pairs["token_type_ids"], np.int64)
    np.savez(
        out / "reference.npz",
        input_ids=ids,
        logits=predictor_logits(out / "export", ids, types),
        pair_input_ids=pair_ids,
        pair_token_type_ids=pair_types,
        pair_logits=predictor_logits(out / "export", pair_ids, pair_types),
    )
    (out / "texts.json").write_text(json.dumps({"texts": given, "labels": LABELS, "pairs": PAIRS}), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")) if sys.argv[2:] else TEXTS)
