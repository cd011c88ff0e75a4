"""LitServe with its batching: requests are gathered into batches of up to 32 (5 ms wait) and
the batch goes through transformers' pipeline of the default model.

    python litserve_server.py --folder MODEL_FOLDER --port 8001
"""

from __future__ import annotations

import litserve as ls
from default_model import MAX_BATCH_SIZE, load_pipeline, peer_arguments


class Classifier(ls.LitAPI):
    def __init__(self, folder: str, threads: int) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE, batch_timeout=0.005)
        self.folder, self.threads = folder, threads

    def setup(self, device) -> None:
        self.pipe = load_pipeline(self.folder, self.threads)

    def decode_request(self, request: dict) -> str:
        (text,) = request["inputs"]  # one text per request, as the benchmark sends
        return text

    def predict(self, texts: list[str]) -> list:
        return self.pipe(list(texts), batch_size=len(texts))

    def encode_response(self, scores: list) -> list:
        return [scores]


if __name__ == "__main__":
    args = peer_arguments(__doc__)
    server = ls.LitServer(Classifier(args.folder, args.threads), accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, log_level="warning", generate_client_file=False)
