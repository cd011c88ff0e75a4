"""The PaddleNLP format, in numpy: what any environment (no paddle, no adapter) needs to read
and write PaddleNLP 2.8 folders.

- families/: one literal table per family (transformers name <-> PaddleNLP name + transform,
  config mapping), keyed by transformers' model_type;
- tensors.py: canonical tensors <-> PaddleNLP tensors through those tables;
- tokenizer_files.py: PaddleNLP tokenizer files <-> the canonical tokenizer.json;
- paddle_folder.py: folders PaddleNLP's save_pretrained wrote (pdparams through the restricted
  reader in unified_nlp.safe_pickle, safetensors, sharded or not).

The core's format detection and dispatch call exactly these four:

>>> from unified_nlp import paddlenlp_format as pf
>>> pf.is_native(Path("bert-paddle"))                              # doctest: +SKIP
True
>>> pf.describe_native(Path("bert-paddle"))["convertible"]         # doctest: +SKIP
True
>>> pf.to_canonical(Path("bert-paddle"), Path("bert-hf"))          # doctest: +SKIP
>>> pf.native_spec(Path("ernie-m-paddle")).format                 # doctest: +SKIP
'paddlenlp-native'
"""

from __future__ import annotations

from .canonical import to_canonical
from .paddle_folder import NATIVE_FORMAT, describe_native, is_native, native_spec, read_weights, save_native

__all__ = [
    "NATIVE_FORMAT",
    "describe_native",
    "is_native",
    "native_spec",
    "read_weights",
    "save_native",
    "to_canonical",
]
