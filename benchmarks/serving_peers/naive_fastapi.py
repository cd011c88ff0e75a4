"""The server users write first: FastAPI + uvicorn, transformers' pipeline called per request
(a plain `def` endpoint, which FastAPI runs in its thread pool), no batching across requests.

    python naive_fastapi.py --folder MODEL_FOLDER --port 8001
"""

from __future__ import annotations

import uvicorn
from default_model import load_pipeline, peer_arguments
from fastapi import FastAPI

args = peer_arguments(__doc__)
classify = load_pipeline(args.folder, args.threads)
app = FastAPI()


@app.post("/predict")
def predict(body: dict) -> list:
    return classify(body["inputs"])


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
