"""The names of the model-folder formats that are not a backend's export, one definition
each (the ``"format"`` a spec or unified_nlp.json carries). A folder written by ``convert
--to NAME`` has the format NAME, the backend's name (`registry.export_backends`).

A leaf module (no imports), so that every layer may name a format without an import
circle; `unified_nlp.formats` re-exports these and says what each folder is.
"""

HUGGINGFACE = "huggingface"  # the canonical folder: transformers' classifier folder (+ our mean-pooling extension)
PADDLE_NATIVE = "paddlenlp-native"  # a PaddleNLP save_pretrained folder, run as it is by the paddlenlp backend
SAVEDMODEL = "tfhub-savedmodel"  # a TF Hub / Keras SavedModel, read by the tfhub backend
TF_H5 = "huggingface-tf"  # a Hugging Face folder with tf_model.h5 (transformers 4's TF classes): imported
# deployment exports, run as black boxes by their own stack's backend (formats.BLACK_BOXES)
ONNX_EXPORT = "onnx-optimum"  # an ONNX classifier folder in Hugging Face Optimum's layout, run by onnxruntime
KERAS_FILE = "keras-file"  # a single-file Keras model (.keras, or a Keras .h5) taking strings, run by tfhub
PADDLE_INFERENCE = "paddle-inference"  # paddle.jit.save's inference.json/.pdmodel + .pdiparams, run by paddlenlp
