"""The names of the model-folder formats that are not a backend's export, one definition
each (the ``"format"`` a spec or unified_nlp.json carries). A folder written by ``convert
--to NAME`` has the format NAME, the backend's name (`registry.export_backends`).

A leaf module (no imports), so that every layer may name a format without an import
circle; `unified_nlp.formats` re-exports these and says what each folder is.
"""

HUGGINGFACE = "huggingface"  # the canonical folder: transformers' classifier folder (+ our mean-pooling extension)
PADDLE_NATIVE = "paddlenlp-native"  # a PaddleNLP save_pretrained folder, run as it is by the paddlenlp backend
SAVEDMODEL = "tfhub-savedmodel"  # a TF Hub / Keras SavedModel, read by the tfhub backend
