"""Cross-framework benchmark: each backend in its own fresh process, same model,
data and machine, with reference rows (raw framework call, transformers pipeline,
the machine's matmul ceiling). See runner.py."""
