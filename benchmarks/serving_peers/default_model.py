"""The default model for the peer servers, in plain transformers + torch (they run in
.venv-bench-serving, without unified_nlp): the all-MiniLM-L6-v2 encoder folder, mean pooling
over the attention mask and the linear head of head.safetensors.

transformers has no class for that head (`pipeline("text-classification", model=FOLDER)` would
put a random CLS classifier on the encoder), so the peers get the same model as a small
BertPreTrainedModel subclass, which `pipeline` runs like any sequence classifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
    pipeline,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging

logging.set_verbosity_error()  # not the load report that lists the head this class adds as "missing"
logging.disable_progress_bar()

MAX_BATCH_SIZE = 32  # the peers' batch cap, as our server's --max-batch-size default


class MeanPoolingClassifier(BertPreTrainedModel):
    """BERT encoder -> mean over the attention mask -> linear layer (the default model's head)."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **_) -> SequenceClassifierOutput:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return SequenceClassifierOutput(logits=self.classifier(pooled))


# Registered for BERT configs in the peer's process only, so that `pipeline` knows it as a text classifier.
AutoModelForSequenceClassification.register(BertConfig, MeanPoolingClassifier, exist_ok=True)


def peer_arguments(description: str):
    """The options every peer server takes: the model folder, the port and the torch threads."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--folder", required=True, help="the default model's folder (encoder + head.safetensors)")
    parser.add_argument("--port", type=int, required=True, help="port to bind on 127.0.0.1")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    return parser.parse_args()


def load_model(folder: str | Path, threads: int) -> MeanPoolingClassifier:
    """The model of `folder` (our default model's folder), in eval mode on `threads` CPU threads."""
    torch.set_num_threads(threads)
    folder = Path(folder)
    labels = json.loads((folder / "unified_nlp.json").read_text())["labels"]
    id2label = dict(enumerate(labels))
    model = MeanPoolingClassifier.from_pretrained(
        folder, num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()}
    )
    model.classifier.load_state_dict(load_file(folder / "head.safetensors"))
    return model.eval()


def load_pipeline(folder: str | Path, threads: int):
    """transformers' text-classification pipeline of the default model, every label's score per text."""
    return pipeline(
        "text-classification",
        model=load_model(folder, threads),
        tokenizer=AutoTokenizer.from_pretrained(folder),
        top_k=None,
        truncation=True,
    )
