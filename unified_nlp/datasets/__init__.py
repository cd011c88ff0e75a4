"""Classify datasets of any size: files streamed in chunks (the local engine) or
Ray Data (the Ray engine), with the same output columns (`rows.output_schema`).

`unified_nlp.classify_dataset` is the entry point; `rows.classify_rows` is the one
step both engines run on a batch of rows.
"""
