"""The `unified-nlp` command line.

    unified-nlp backends
    unified-nlp classify [--backend B] [--model M] [--json] TEXT...   (or one text per line from --file / stdin)
    unified-nlp classify --input FILE --output FILE [--text-column C] [--engine local|ray] [--on-error skip]
    unified-nlp convert --to B SRC OUT
    unified-nlp compare --backends huggingface,tfhub [--texts FILE]
    unified-nlp fit --backend B --train FILE --validation FILE --out DIR [--early-stopping loss --keep-best --plot P]
    unified-nlp evaluate --backend B --model M --data FILE
    unified-nlp inspect PATH [--preprocessor DIR] [--json]
    unified-nlp bench [--backends ...] [--quick]
    unified-nlp worker register BACKEND PYTHON
    unified-nlp cache list [--json] | cache clear [--older-than DAYS] [KEY...]

Exit status: 0 success, 1 a parity check failed, 2 an error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import InvalidInputError, UnifiedNLPError
from .progress import counted
from .registry import AUTO_PRECISION, PRECISIONS, backend_names, backends_help, canonical_name, title, training_backends


def _split_pairs(lines: list[str], where: str) -> list[tuple[str, str]]:
    out = []
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise InvalidInputError(
                f"{where} {number}: expected 'text<TAB>text_pair' with --pairs, got {len(parts)} columns"
            )
        out.append((parts[0], parts[1]))
    return out


def _texts(args: argparse.Namespace) -> list:
    from .benchdata import read_lines, read_pairs

    if args.file:  # blank lines are not texts
        return read_pairs(args.file) if args.pairs else [t for t in read_lines(args.file) if t.strip()]
    if args.texts and args.texts != ["-"]:
        return _split_pairs(list(args.texts), "argument") if args.pairs else list(args.texts)
    if sys.stdin is None or (sys.stdin.isatty() and args.texts != ["-"]):
        raise InvalidInputError("no texts: give them as arguments, with --file, or on stdin")
    raw = sys.stdin.buffer.read()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InvalidInputError(f"stdin line {line}: not valid UTF-8 (byte {raw[e.start]:#x})") from None
    lines = [t for t in lines if t.strip()]  # blank lines are not texts
    return _split_pairs(lines, "stdin line") if args.pairs else lines


def _shown(text) -> str:
    text = " ||| ".join(text) if isinstance(text, tuple) else text
    return text if len(text) <= 80 else text[:77] + "..."


def _as_json_text(text) -> dict:
    return {"text": text[0], "text_pair": text[1]} if isinstance(text, tuple) else {"text": text}


def _announce(what: str, texts: list, clf=None) -> None:
    """A notice on stderr before long work (unified_nlp.progress: quiet with UNIFIED_NLP_PROGRESS=0)."""
    from .progress import LONG, notice

    if len(texts) >= LONG:
        notice(f"{what}" + (f" on {clf.backend}" if clf is not None else "") + " ...")


def cmd_backends(args: argparse.Namespace) -> int:
    from .registry import list_backends

    rows = list_backends()
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    print(f"{'backend':<12} {'installed':<9} {'runs':<11} {'fast here':<11} {'versions':<48} environment")
    for r in rows:
        versions = ", ".join(f"{k} {v}" for k, v in r.versions.items()) or "-"
        fast, installed = ",".join(r.fast_precisions), "yes" if r.installed else "no"
        print(f"{r.name:<12} {installed:<9} {r.runs:<11} {fast:<11} {versions:<48} {r.environment}")
    print(f"\n{cpu_summary()}")
    return 0


def cpu_summary() -> str:
    """One line: the CPU and the precisions it runs in hardware (what "fast here" means)."""
    from . import cpu

    fast = ", ".join(cpu.fast_precisions())
    return (
        f"CPU: {cpu.model_name() or 'unknown'}; precisions it runs in hardware: {fast} "
        "(bf16: AVX512-BF16 or AMX; int8: VNNI or AMX); load_classifier(precision=...) takes the backend's own"
    )


def _classify_dataset(args: argparse.Namespace) -> int:
    from .datasets.classify import classify_dataset

    if args.texts or args.file:
        raise InvalidInputError("--input classifies a file of rows; give either --input or texts/--file, not both")
    if not args.output:
        raise InvalidInputError("--input needs --output (a .parquet, .jsonl, .csv or .tsv file to write)")
    summary = classify_dataset(
        args.input,
        args.output,
        model=args.model,
        backend=args.backend,
        text_column=args.text_column,
        pair_column=args.pair_column,
        id_column=args.id_column,
        keep_columns=args.keep_columns,
        engine=args.engine,
        address=args.address,
        num_actors=args.num_actors,
        batch_size=args.batch_size,
        chunk_rows=args.chunk_rows,
        on_error=args.on_error,
        resume=not args.no_resume,
        num_threads=args.threads,
        input_format=args.input_format,
        progress=None,
        **{k: v for k, v in _model_options(args).items() if v is not None},
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from .api import load_classifier

    if args.input or args.output:
        if not args.input:
            raise InvalidInputError("--output goes with --input (a dataset file to classify)")
        return _classify_dataset(args)
    texts = _texts(args)
    if not texts:  # an empty file or stdin: nothing to load a model for
        print(f"unified-nlp: nothing to classify: {args.file or 'stdin'} has no texts", file=sys.stderr)
        return 0
    start = time.perf_counter()
    clf = load_classifier(args.model, backend=args.backend, num_threads=args.threads, **_model_options(args))
    loaded = time.perf_counter()
    every = args.all_scores and not clf.multi_label
    _announce(f"classifying {counted(len(texts), 'text')}", texts, clf)
    preds = clf.predict(texts, batch_size=args.batch_size, top_k=None if every else "best", progress=None)
    done = time.perf_counter()
    if clf.multi_label:  # every label above the threshold, best first
        for text, found in zip(texts, preds):
            if args.json:
                row = {**_as_json_text(text), "labels": [{"label": p.label, "score": round(p.score, 6)} for p in found]}
                print(json.dumps(row, ensure_ascii=False))
            else:
                print(f"{','.join(p.label for p in found) or '-':<20} {_shown(text)}")
    elif every:  # every label's score, best first
        for text, ranked in zip(texts, preds):
            if args.json:
                scores = {p.label: round(p.score, 6) for p in ranked}
                row = {
                    **_as_json_text(text),
                    "label": ranked[0].label,
                    "scores": scores,
                    "truncated": ranked[0].truncated,
                }
                print(json.dumps(row, ensure_ascii=False))
            else:
                print(f"{'  '.join(f'{p.label} {p.score:.4f}' for p in ranked)}  {_shown(text)}")
    elif args.json:
        for text, p in zip(texts, preds):
            row = {**_as_json_text(text), "label": p.label, "score": round(p.score, 6), "truncated": p.truncated}
            print(json.dumps(row, ensure_ascii=False))
    else:
        for text, p in zip(texts, preds):
            mark = " [truncated]" if p.truncated else ""
            print(f"{p.label:<10} {p.score:.4f}  {_shown(text)}{mark}")
    rate = len(texts) / (done - loaded) if done > loaded and texts else 0.0
    print(
        f"[{clf.backend}, {clf.runs}, {clf.num_threads or 'default'} threads] load {loaded - start:.2f}s, {counted(len(texts), 'text')} in "
        f"{done - loaded:.3f}s ({rate:.0f} texts/s)",
        file=sys.stderr,
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .api import convert
    from .atomic import check_writable

    check_writable(args.out)  # before the conversion, not after it
    start = time.perf_counter()
    out = convert(args.source, to=args.to, out=args.out, num_threads=args.threads, preprocessor=args.preprocessor)
    print(f"wrote {args.to} model to {out} ({time.perf_counter() - start:.1f}s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .api import load_classifier
    from .benchdata import read_tsv, sst2_path
    from .datasets.labelled import read_texts
    from .parity import compare

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if len(names) != 2:
        raise InvalidInputError("--backends takes exactly two names, e.g. huggingface,tfhub")
    if args.texts:
        texts = read_texts(args.texts, text_column=args.text_column, pair_column=args.pair_column, pairs=args.pairs)
    else:
        texts = read_tsv(sst2_path("dev"))[0]
    a = load_classifier(args.model, backend=names[0], num_threads=args.threads, **_model_options(args))
    b = load_classifier(args.model, backend=names[1], num_threads=args.threads, **_model_options(args))
    _announce(f"comparing {a.backend} and {b.backend} on {counted(len(texts), 'text')}", texts)
    report = compare(a, b, texts, tolerance=args.tolerance)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report)
    return 0 if report.passed else 1


def cmd_zero_shot(args: argparse.Namespace) -> int:
    from .zero_shot import candidates, hypothesis, zero_shot

    labels = candidates(args.labels)  # checked before any model loads
    hypothesis(args.template, labels[0])
    args.pairs = False
    texts = _texts(args)
    if not texts:
        print(f"unified-nlp: nothing to classify: {args.file or 'stdin'} has no texts", file=sys.stderr)
        return 0
    options = {"num_threads": args.threads, **_model_options(args)}
    _announce(f"scoring {counted(len(labels), 'label')} for {counted(len(texts), 'text')}", texts)
    results = zero_shot(
        texts, labels, args.template, args.multi_label, model=args.model, backend=args.backend, **options
    )
    for result in results:
        if args.json:
            scores = {label: round(score, 6) for label, score in zip(result["labels"], result["scores"])}
            print(json.dumps({"text": result["sequence"], "scores": scores}, ensure_ascii=False))
        else:
            ranked = "  ".join(f"{label} {score:.4f}" for label, score in zip(result["labels"], result["scores"]))
            print(f"{ranked}  {_shown(result['sequence'])}")
    return 0


def _labelled(path: str, args: argparse.Namespace, limit: int | None = None):
    """Texts (or pairs) and labels of a labelled file (.tsv, .csv, .jsonl, .parquet), read
    and checked before any model loads (`unified_nlp.datasets.labelled`)."""
    from .datasets.labelled import read_labelled

    columns = {"text_column": args.text_column, "pair_column": args.pair_column, "label_column": args.label_column}
    return read_labelled(path, **columns, pairs=args.pairs).head(limit)


def _for(clf, data):
    """(texts, labels) of a labelled set for `clf`: a multi-label row's labels are a list
    or comma-separated names."""
    if data is None:
        return None
    if not clf.multi_label:
        return data.texts, data.labels
    split = [x if isinstance(x, list) else [y.strip() for y in str(x).split(",") if y.strip()] for x in data.labels]
    return data.texts, split


def _check_labels(data, labels: list, known: list[str], *, given: bool) -> None:
    """Every label of a labelled file is one of the model's, by name or index; else an
    error that names the file and line (before training) and says how --labels helps."""
    for i, label in enumerate(labels):
        for x in label if isinstance(label, list) else [label]:
            if isinstance(x, int) and 0 <= x < len(known) or x in known:
                continue
            where = data.where(i)
            if given:
                raise InvalidInputError(f"{where}: label {x!r} is not one of --labels {','.join(known)}")
            raise InvalidInputError(
                f"{where}: label {x!r} is not one of the model's labels ({', '.join(known)}); "
                "to train a fresh head on this file's labels, give them all with --labels A,B,..."
            )


def _class_weight(text: str | None):
    """--class-weight: 'balanced', or 'LABEL=WEIGHT,LABEL=WEIGHT' (checked against the labels by fit)."""
    if text is None or text == "balanced":
        return text
    out = {}
    for item in text.split(","):
        label, sep, weight = item.rpartition("=")
        try:
            out[label.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not label.strip():
            raise InvalidInputError(f"--class-weight: expected 'balanced' or LABEL=WEIGHT,..., got {item!r}")
    return out


def _training_backend(text: str) -> str:
    """argparse type of fit --backend: a backend that trains, by name or alias."""
    try:
        name = canonical_name(text)
    except UnifiedNLPError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if name not in training_backends():
        raise argparse.ArgumentTypeError(
            f"{name} runs models but does not fit them; use {backends_help(training_backends())}"
        )
    return name


def _eval_every(text: str):
    """argparse type of --eval-every: 'epoch' or a positive number of steps."""
    return text if text == "epoch" else _positive(text)


def cmd_fit(args: argparse.Namespace) -> int:
    from .api import load_classifier
    from .atomic import check_writable

    label_names = args.labels.split(",") if args.labels else None
    problem = "multi_label_classification" if args.multi_label else None
    train = _labelled(args.train, args, args.max_rows)
    validation = _labelled(args.validation, args) if args.validation else None
    class_weight = _class_weight(args.class_weight)
    check_writable(args.out)  # every output before training, not after it
    if args.checkpoint_dir:
        check_writable(args.checkpoint_dir)
    for path in (args.plot, args.history_csv):
        if path:
            check_writable(path, file=True)
    clf = load_classifier(
        args.model,
        backend=args.backend,
        labels=label_names,
        problem_type=problem,
        num_threads=args.threads,
        **_model_options(args),
    )
    if isinstance(class_weight, dict):  # a label given by its index: "0=2.5"
        class_weight = {int(k) if k not in clf.labels and k.isdigit() else k: v for k, v in class_weight.items()}
    early_stopping = None
    if args.early_stopping:
        early_stopping = {"metric": args.early_stopping, "patience": args.patience, "min_delta": args.min_delta}
    (texts, labels), validation_set = _for(clf, train), _for(clf, validation)
    _check_labels(train, labels, clf.labels, given=bool(label_names))
    if validation is not None:
        _check_labels(validation, validation_set[1], clf.labels, given=bool(label_names))
    history = clf.fit(
        texts,
        labels,
        validation=validation_set,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        schedule=args.schedule,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        dropout=args.dropout,
        freeze_encoder=args.freeze_encoder,
        seed=args.seed,
        max_length=args.max_length,
        gradient_accumulation=args.gradient_accumulation,
        class_weight=class_weight,
        eval_every=args.eval_every,
        early_stopping=early_stopping,
        keep_best=args.keep_best,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    clf.save(args.out)
    if args.history_csv or args.plot:
        from .fit_report import plot, write_csv

        if args.history_csv:
            write_csv(history, args.history_csv)
        if args.plot:
            plot(history, args.plot, title=f"fit on {clf.backend}")
    keys = ("steps", "seconds", "texts_per_second", "epoch_loss", "val_accuracy", "best", "stopped_early")
    summary = {k: history[k] for k in (*keys, "restored_best", "resumed_from")}
    print(json.dumps({"out": args.out, **summary}, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .api import load_classifier

    data = _labelled(args.data, args)
    clf = load_classifier(args.model, backend=args.backend, num_threads=args.threads, **_model_options(args))
    texts, labels = _for(clf, data)
    _announce(f"evaluating on {counted(len(texts), 'text')}", texts, clf)
    report = clf.evaluate(texts, labels)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        micro = f", micro F1 {report['micro_f1']:.4f}" if "micro_f1" in report else ""
        print(
            f"{clf.backend}: accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f}{micro} on {counted(report['n'], 'text')}"
        )
        for name, m in report["per_class"].items():
            print(
                f"  {name:<12} precision {m['precision']:.4f} recall {m['recall']:.4f} f1 {m['f1']:.4f} n={m['support']}"
            )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .api import inspect_model

    info = inspect_model(args.model, preprocessor=args.preprocessor)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    shown = dict(info)
    shown["format"] = f"{info['format']}: {info['description']}"
    for key, value in shown.items():
        if isinstance(value, list):
            shown[key] = ", ".join(map(str, value)) or "-"
    rows = [(key.replace("_", " ") + ":", value) for key, value in shown.items() if key != "description"]
    width = max(len(key) for key, _ in rows) + 1
    for key, value in rows:
        if value is not None:
            print(f"{key:<{width}}{value}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .atomic import check_writable
    from .registry import register_worker

    if args.config:
        check_writable(args.config, file=True)
    config = register_worker(args.backend, args.python, Path(args.config) if args.config else None)
    print(f"registered {args.python} for backend {args.backend} in {config}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from . import store
    from .store_paths import store_dir, store_origin

    if args.cache_command == "clear":
        removed = store.clear(args.keys, older_than_days=args.older_than)
        freed = sum(e.size for e in removed)
        for e in removed:
            print(f"removed {e.kind}/{e.key} ({store.human_size(e.size)})")
        print(f"removed {counted(len(removed), 'entry', 'entries')}, {store.human_size(freed)}, from {store_dir()}")
        return 0
    found = store.entries()
    if args.json:
        print(json.dumps({"store": str(store_dir()), "entries": [e.as_dict() for e in found]}, indent=2))
        return 0
    total = store.human_size(sum(e.size for e in found))
    print(f"model store {store_dir()} ({store_origin()}): {counted(len(found), 'entry', 'entries')}, {total}")
    rows = [
        (
            e.kind,
            e.key,
            store.human_size(e.size),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.last_used)),
            e.model or "-",
            e.source or "-",
        )
        for e in found
    ]
    if rows:
        header = ("kind", "key", "size", "last use (UTC)", "model", "source")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        for row in [header, *rows]:  # columns as wide as their widest cell; size right-aligned
            cells = [c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row[:5], widths))]
            print("  ".join([*cells, row[5]]))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .atomic import check_writable
    from .bench.runner import default_out
    from .bench.runner import main as bench_main

    check_writable(args.out or default_out())  # before the first measurement, not after the last
    return bench_main(args)


def _model_options(args: argparse.Namespace) -> dict:
    return {
        "preprocessor": args.preprocessor,
        "pooling": args.pooling,
        "precision": getattr(args, "precision", None),
        "device": getattr(args, "device", None),
    }


def _add_model_arguments(
    p: argparse.ArgumentParser, *, pooling: bool = True, precision: bool = True, device: bool = True
) -> None:
    """--preprocessor (and --pooling) for a TF Hub encoder SavedModel given as the model,
    and --precision and --device where a model is loaded to run."""
    p.add_argument(
        "--preprocessor", help="the TF Hub preprocessor SavedModel of an encoder SavedModel given as the model"
    )
    if pooling:
        p.add_argument(
            "--pooling",
            choices=("pooled", "mean"),
            help="how a TF Hub encoder's fresh head reads it on tfhub: pooled_output (default) or mean pooling",
        )
    if precision:
        p.add_argument(
            "--precision",
            choices=(*PRECISIONS, AUTO_PRECISION),
            help="fp32, or bf16 / int8 on a backend that offers it (bf16: huggingface and paddlenlp on a CPU with "
            "AVX512-BF16 or AMX; int8: onnxruntime); auto: bf16 where offered here, else fp32; default: as stored",
        )
    if device:
        _add_device_argument(p)


def _add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        help='where the model runs: "cpu" (default), "cuda" or "cuda:N" (a GPU the backend\'s framework '
        "can use; docs/backends.md, 'Devices')",
    )


def _positive_or_auto(text: str) -> int | None:
    """argparse type: "auto" (None) or an integer >= 1."""
    return None if text == "auto" else _positive(text)


def _positive(text: str) -> int:
    """argparse type: an integer >= 1, checked before any model loads."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


class _Once(argparse._StoreAction):
    """An option given at most once: a second value is an error, not silently the last
    (`--output a.csv --output b.csv` wrote b.csv only). The action of every option that
    takes one value (`_Parser` registers it as the default)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = namespace.__dict__.setdefault("_given_once", set())
        if option_string is not None and self.dest in given:
            raise argparse.ArgumentError(self, "given twice; it takes one value")
        given.add(self.dest)
        setattr(namespace, self.dest, values)


def _keep_columns(text: str):
    """argparse type of --keep-columns: None ('none' or empty), 'all', or a list of names."""
    if text.strip() in ("", "none"):
        return None
    if text.strip() == "all":
        return "all"
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME,NAME, 'all' or 'none', got {text!r}")
    return names


def _add_labelled_arguments(p: argparse.ArgumentParser) -> None:
    """fit, evaluate: the columns of a labelled file, as classify --input names them."""
    p.add_argument(
        "--text-column",
        help="the text column of a .csv, .jsonl, .parquet or .tsv with a header (without it: text; a .tsv "
        "without a 'text' column is read as sentence<TAB>label rows)",
    )
    p.add_argument("--pair-column", help="the second text of sentence pairs (--pairs: text_pair)")
    p.add_argument("--label-column", help="the label column (without it: label)")
    p.add_argument(
        "--pairs",
        action="store_true",
        help="sentence pairs: a .tsv's rows are 'sentence1<TAB>sentence2<TAB>label'; by column names, "
        "--pair-column (default text_pair)",
    )


def add_threads_option(p: argparse.ArgumentParser) -> None:
    from .threads import available_cores

    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="threads of the framework (default: $OMP_NUM_THREADS if set, else the cores this process may use, "
        f"{available_cores()} here); on a busy machine, fewer threads than cores are faster",
    )


BACKEND_HELP = backends_help()
MODEL_HELP = "'default', a model folder, or a Hugging Face id already in the local cache"


def _joined(words: list[str]) -> str:
    """'a, b and c'."""
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except flags and options that have none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """The parser of every command and subcommand: help texts show defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)  # argument groups share the parser's registry
        self.register("action", "store", _Once)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="unified-nlp",
        description=f"One text-classification API over {_joined([title(n) for n in backend_names()])}.",
        epilog="Exit status: 0 success, 1 a parity check failed (compare), 2 an error (one line on stderr), "
        "130 interrupted. `unified-nlp COMMAND --help` lists a command's options.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"unified-nlp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in (
        _add_backends_command,
        _add_classify_command,
        _add_convert_command,
        _add_compare_command,
        _add_fit_command,
        _add_evaluate_command,
        _add_inspect_command,
        _add_bench_command,
        _add_cache_command,
        _add_worker_command,
        _add_serve_command,
        _add_zero_shot_command,
    ):
        add_command(sub)
    return parser


def _add_backend_and_model(p: argparse.ArgumentParser, model_help: str = MODEL_HELP) -> None:
    p.add_argument("--backend", default="huggingface", help=BACKEND_HELP)
    p.add_argument("--model", default="default", help=model_help)


def _add_backends_command(sub) -> None:
    p = sub.add_parser("backends", help="list backends, versions and where they run")
    p.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    p.set_defaults(func=cmd_backends)


def _add_classify_command(sub) -> None:
    p = sub.add_parser("classify", help="classify texts (arguments, --file, or stdin)")
    p.add_argument("texts", nargs="*", help="texts to classify; none, or '-': one per line from stdin")
    _add_backend_and_model(p)
    p.add_argument("--file", help="one text per line (UTF-8; blank lines are skipped)")
    p.add_argument("--batch-size", type=_positive, default=32, help="texts per forward pass")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--pairs", action="store_true", help="each text is a sentence pair: 'text<TAB>text_pair'")
    p.add_argument("--all-scores", action="store_true", help="every label's score per text, best first")
    _add_dataset_arguments(p.add_argument_group("datasets (--input): a whole file, streamed in chunks and resumable"))
    add_threads_option(p)
    _add_model_arguments(p)
    p.set_defaults(func=cmd_classify)


def _add_dataset_arguments(d: argparse._ArgumentGroup) -> None:
    """classify --input: a whole file through `classify_dataset`."""
    d.add_argument("--input", help="a .parquet, .jsonl, .csv or .tsv file of rows (instead of texts/--file)")
    d.add_argument(
        "--output", help="the file to write (.parquet, .jsonl, .csv or .tsv): id, label, score, prob_<label>"
    )
    d.add_argument(
        "--input-format", choices=("parquet", "jsonl", "csv", "tsv"), help="the input's format (default: by suffix)"
    )
    d.add_argument("--text-column", default="text", help="the input column to classify")
    d.add_argument("--pair-column", help="a second text column: classify (text, pair) sentence pairs")
    d.add_argument(
        "--id-column",
        help="the column that keys each row, written first (without it: 'row', the 0-based row number)",
    )
    d.add_argument(
        "--keep-columns",
        type=_keep_columns,
        help="input columns written beside the predictions: NAME,NAME, 'all', or 'none' (without it: none)",
    )
    d.add_argument("--engine", choices=("local", "ray"), default="local", help="local: this process; ray: Ray Data")
    d.add_argument("--address", help="--engine ray: the Ray cluster to join (default: start a local one)")
    d.add_argument(
        "--num-actors",
        type=int,
        help="--engine ray: classifier actors (default: cores // --threads; a joined cluster keeps one CPU for reading)",
    )
    d.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="a bad row (None, not a string, not UTF-8): stop naming it, or write it to OUTPUT.errors.jsonl and go on",
    )
    d.add_argument(
        "--no-resume",
        action="store_true",
        help="start over instead of going on from the finished parts of a crashed run",
    )
    from .datasets.local import CHUNK_ROWS

    d.add_argument("--chunk-rows", type=_positive, default=CHUNK_ROWS, help="rows per part (and per resume step)")


def _add_zero_shot_command(sub) -> None:
    from .zero_shot import TEMPLATE

    p = sub.add_parser(
        "zero-shot", help="score candidate labels with an NLI model (as transformers' zero-shot pipeline)"
    )
    p.add_argument("texts", nargs="*", help="texts to classify; none, or '-': one per line from stdin")
    p.add_argument("--labels", required=True, help="the candidate labels, comma-separated")
    p.add_argument("--template", default=TEMPLATE, help="the hypothesis, {} standing for a label")
    p.add_argument(
        "--multi-label", action="store_true", help="score each label on its own (entailment against contradiction)"
    )
    p.add_argument("--backend", default="huggingface", help=BACKEND_HELP)
    p.add_argument(
        "--model", required=True, help="an NLI sentence-pair model (with an entailment label): " + MODEL_HELP
    )
    p.add_argument("--file", help="one text per line (UTF-8; blank lines are skipped)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_threads_option(p)
    _add_model_arguments(p)
    p.set_defaults(func=cmd_zero_shot)


def _add_convert_command(sub) -> None:
    p = sub.add_parser("convert", help="write a model in another backend's native format")
    p.add_argument("source", help="'default' or a model folder")
    p.add_argument("out", help="the folder to write (replaced atomically if it exists)")
    p.add_argument("--to", required=True, help="the target format: " + BACKEND_HELP)
    add_threads_option(p)
    _add_model_arguments(p, pooling=False, precision=False, device=False)
    p.set_defaults(func=cmd_convert)


def _add_compare_command(sub) -> None:
    p = sub.add_parser("compare", help="numerical parity report between two backends")
    p.add_argument("--backends", required=True, help="two names, e.g. huggingface,tfhub")
    p.add_argument("--model", default="default", help=MODEL_HELP)
    p.add_argument(
        "--texts",
        help="the texts: a .csv, .jsonl or .parquet (--text-column), a .tsv (sentence<TAB>label, or a header naming "
        "text), or one text per line; default SST-2 dev",
    )
    p.add_argument("--text-column", help="the text column of a .csv, .jsonl, .parquet or .tsv (without it: text)")
    p.add_argument("--pair-column", help="the second text of sentence pairs (--pairs: text_pair)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest |logit difference| that passes")
    add_threads_option(p)
    p.add_argument("--pairs", action="store_true", help="sentence pairs: 'text<TAB>text_pair' (.tsv: plus a label)")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    _add_model_arguments(p)
    p.set_defaults(func=cmd_compare)


def _add_fit_command(sub) -> None:
    p = sub.add_parser("fit", help="fine-tune on a labelled .tsv, .csv, .jsonl or .parquet; save the canonical format")
    p.add_argument(
        "--backend",
        type=_training_backend,
        default="huggingface",
        help="a backend that trains: " + backends_help(training_backends()),
    )
    p.add_argument("--model", default="default", help="the model to start from: " + MODEL_HELP)
    p.add_argument(
        "--train",
        required=True,
        help="training file: .tsv rows sentence<TAB>label (header optional), or a .csv, .jsonl or .parquet "
        "with text and label columns (--text-column, --label-column)",
    )
    p.add_argument("--validation", help="a file like --train, evaluated every --eval-every")
    p.add_argument("--out", required=True, help="folder for the trained model (canonical format)")
    p.add_argument("--labels", help="comma-separated label names for a fresh head")
    _add_optimizer_arguments(p)
    _add_validation_arguments(p)
    p.add_argument("--checkpoint-dir", help="folder for training checkpoints (the newest is kept)")
    p.add_argument("--checkpoint-every", type=_positive, help="write a checkpoint every N optimizer steps")
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir (same options)"
    )
    p.add_argument("--plot", help="write the loss and validation curves to this PNG")
    p.add_argument("--history-csv", help="write the history to this CSV (one row per step)")
    p.add_argument("--max-rows", type=int, help="use only the first N training rows")
    p.add_argument("--freeze-encoder", action="store_true", help="train the head only")
    p.add_argument("--seed", type=int, default=0, help="data order")
    add_threads_option(p)
    _add_labelled_arguments(p)
    p.add_argument(
        "--multi-label",
        action="store_true",
        help="a fresh multi-label head; labels comma-separated per row (or a JSON or Parquet list)",
    )
    _add_model_arguments(p, precision=False)  # training is fp32
    p.set_defaults(func=cmd_fit)


def _add_optimizer_arguments(p: argparse.ArgumentParser) -> None:
    """fit: epochs, batches, AdamW, its learning-rate schedule and the loss's class weights."""
    p.add_argument("--epochs", type=_positive, default=1, help="passes over the training set")
    p.add_argument("--batch-size", type=_positive, default=32, help="texts per optimisation step")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="peak learning rate of AdamW")
    p.add_argument(
        "--schedule",
        choices=("linear", "cosine", "constant"),
        default="linear",
        help="after the linear warm-up: linear or cosine decay to 0, or constant (default linear)",
    )
    p.add_argument("--warmup-ratio", type=float, default=0.1, help="share of the steps spent warming up")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW's decoupled weight decay")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="clip the gradient to this global norm (0: off)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout while training (0 keeps backends identical)")
    p.add_argument("--max-length", type=_positive, help="tokens per training text (default: the model's maximum)")
    p.add_argument(
        "--gradient-accumulation", type=_positive, default=1, help="micro-batches per optimizer step (default 1)"
    )
    p.add_argument(
        "--class-weight", help="'balanced', or LABEL=WEIGHT,... (weighted cross-entropy; other labels weigh 1)"
    )


def _add_validation_arguments(p: argparse.ArgumentParser) -> None:
    """fit: when --validation is evaluated, early stopping, and the best weights."""
    p.add_argument(
        "--eval-every", type=_eval_every, default="epoch", help="evaluate --validation every N steps, or 'epoch'"
    )
    p.add_argument(
        "--early-stopping",
        metavar="METRIC",
        help="stop when this validation metric (loss, accuracy, macro_f1, micro_f1) stops improving",
    )
    p.add_argument("--patience", type=int, default=1, help="evaluations without improvement before stopping")
    p.add_argument("--min-delta", type=float, default=0.0, help="the least change that counts as an improvement")
    p.add_argument("--keep-best", action="store_true", help="end with the weights of the best evaluation")


def _add_evaluate_command(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, macro F1 and per-class figures on a labelled file")
    _add_backend_and_model(p)
    p.add_argument("--data", required=True, help="a labelled file, as fit --train takes it")
    add_threads_option(p)
    p.add_argument("--json", action="store_true", help="the report as JSON")
    _add_labelled_arguments(p)
    _add_model_arguments(p)
    p.set_defaults(func=cmd_evaluate)


def _add_inspect_command(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="what a model folder is: format, architecture, labels, head, tokenizer, where it runs and converts",
    )
    p.add_argument("model", help="'default', a model folder (Hugging Face, PaddleNLP, SavedModel) or a convert output")
    p.add_argument("--preprocessor", help="the TF Hub preprocessor SavedModel that goes with an encoder SavedModel")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_inspect)


def _add_bench_command(sub) -> None:
    p = sub.add_parser("bench", help="cross-framework benchmark")
    from .bench.options import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_bench)


def _add_cache_command(sub) -> None:
    p = sub.add_parser("cache", help="list or clear the model store (derived models, $UNIFIED_NLP_HOME)")
    csub = p.add_subparsers(dest="cache_command", required=True)
    c = csub.add_parser("list", help="every entry: kind, key, size, last use, source")
    c.add_argument("--json", action="store_true", help="one JSON object with every entry")
    c.set_defaults(func=cmd_cache)
    c = csub.add_parser("clear", help="remove entries (all of them unless keys or --older-than are given)")
    c.add_argument("keys", nargs="*", metavar="KEY", help="an entry's key, a unique start of one, or KIND/KEY")
    c.add_argument("--older-than", type=float, metavar="DAYS", help="only entries last used more than DAYS ago")
    c.set_defaults(func=cmd_cache)


def _add_worker_command(sub) -> None:
    p = sub.add_parser("worker", help="register the environment that runs a backend in a worker")
    wsub = p.add_subparsers(dest="worker_command", required=True)
    r = wsub.add_parser("register", help="run BACKEND with the interpreter PYTHON of another environment")
    r.add_argument("backend", help="the backend to run there, e.g. paddlenlp")
    r.add_argument("python", help="path to that environment's bin/python")
    r.add_argument("--config", help="config file to write (default: this environment's unified_nlp.json)")
    r.set_defaults(func=cmd_worker)


def cmd_serve(args: argparse.Namespace) -> int:
    models = {
        "name": args.name,
        "backend": args.backend,
        "precision": args.precision,
        "models": args.models,
        "repository": args.repository,
        "shadows": args.shadows,
        "shadow_fraction": args.shadow_fraction,
    }
    limits = {
        "max_batch_size": args.max_batch_size,
        "max_batch_tokens": args.max_batch_tokens,
        "max_queue": args.max_queue,
        "max_client_batch_size": args.max_client_batch_size,
        "payload_limit": args.payload_limit,
        "instances": args.instances,
    }
    if args.engine == "ray":
        return _serve_on_ray(args, models, limits)
    given = [flag for flag in ("address", "replicas", "autoscale") if getattr(args, flag) is not None]
    if given:
        raise InvalidInputError(f"--{given[0]} is an option of --engine ray")
    from .serving import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        **models,
        model_control=args.model_control,
        grpc_port=args.grpc_port,
        device=args.device,
        num_threads=args.threads,
        **limits,
        drain_timeout=args.drain_timeout,
        api_key=args.api_key,
        access_log=args.access_log,
    )
    return 0


def _serve_on_ray(args: argparse.Namespace, models: dict, limits: dict) -> int:
    """`serve --engine ray`: the same models and app options, as Ray Serve replicas."""
    import os

    from .serving.app import API_KEY_VARIABLE
    from .serving.ray_engine import serve_on_ray
    from .serving.repository import add_shadows, model_entries

    if args.grpc_port is not None:
        raise InvalidInputError("--grpc-port is served by --engine local only: Ray Serve's proxy takes HTTP here")
    load = {k: v for k, v in (("num_threads", args.threads), ("device", args.device)) if v is not None}
    shadows, fraction = models.pop("shadows"), models.pop("shadow_fraction")
    entries = add_shadows(model_entries(args.model, **models, load_options=load), shadows, fraction)
    api_key = args.api_key if args.api_key is not None else (os.environ.get(API_KEY_VARIABLE) or None)
    options = {**limits, "api_key": api_key, "access_log": args.access_log, "model_control": args.model_control}
    serve_on_ray(
        entries,
        address=args.address,
        replicas=args.replicas,
        autoscale=args.autoscale,
        host=args.host,
        port=args.port,
        app_options=options,
        drain_timeout=args.drain_timeout,
    )
    return 0


def _min_max(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    try:
        bounds = int(low), int(high)
    except ValueError:
        bounds = (0, 0)
    if not sep or not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX with 1 <= MIN <= MAX, got {text!r}")
    return bounds


def _add_batching_options(p) -> None:
    p.add_argument("--max-batch-size", type=_positive, default=32, help="rows per forward pass")
    p.add_argument("--max-batch-tokens", type=_positive, default=16384, help="padded tokens per forward pass")
    p.add_argument("--max-queue", type=_positive, default=256, help="requests in flight; beyond: 429")
    p.add_argument(
        "--instances",
        type=_positive_or_auto,
        default=None,
        help="model instances running batches side by side under load, the threads shared among them "
        "(default auto: 2 on onnxruntime's CPU for a model file under 1 GiB, each with its own copy of the "
        "weights; other backends run one)",
    )
    p.add_argument("--max-client-batch-size", type=_positive, default=256, help="texts per request")
    p.add_argument("--payload-limit", type=_positive, default=2_000_000, help="request body bytes; beyond: 413")


def _add_serve_command(sub) -> None:
    p = sub.add_parser("serve", help="serve models over HTTP (Open Inference Protocol v2 and TEI's API) and gRPC")
    p.add_argument("model", nargs="?", help=f"{MODEL_HELP} (none with --model or --repository: 'default')")
    p.add_argument("--backend", default="huggingface", help=f"{BACKEND_HELP}; of every model that names none")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--name", help="the model's name in /v2/models/NAME (default: the folder's name, or 'default')")
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        metavar="NAME=PATH[@BACKEND[:PRECISION]]",
        help="one more model to serve, named NAME (repeatable); TEI's routes answer with the first model",
    )
    p.add_argument(
        "--repository",
        metavar="FILE",
        help="a TOML file of the models to serve ([models.NAME] model/backend/precision); SIGHUP re-reads it",
    )
    p.add_argument(
        "--shadow",
        dest="shadows",
        action="append",
        metavar="NAME@BACKEND[:PRECISION]",
        help="run model NAME also on this backend and precision, beside it, on a sample of its requests, and "
        "report agreement live at /v2/models/NAME/shadow (clients get the served model's answers only)",
    )
    p.add_argument(
        "--shadow-fraction",
        type=float,
        default=0.1,
        help="the fraction of requests offered to the shadows, in (0, 1]",
    )
    p.add_argument(
        "--model-control",
        action="store_true",
        help="allow POST /v2/repository/models/NAME/load and /unload (replace a model under traffic); "
        "off by default: anyone who reaches the server could use them (with --api-key: who has the key)",
    )
    p.add_argument("--grpc-port", type=int, help="also serve the Open Inference Protocol v2 over gRPC on this port")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: Ray Serve replicas behind Ray's HTTP proxy (scale out)",
    )
    p.add_argument("--address", help="--engine ray: the Ray cluster to join (HEAD:6379); default: a local one")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=_positive, help="--engine ray: replicas of the app (default 1)")
    scale.add_argument(
        "--autoscale",
        type=_min_max,
        metavar="MIN:MAX",
        help="--engine ray: replicas between MIN and MAX, by Ray Serve's autoscaler (queued requests per replica)",
    )
    _add_batching_options(p)
    p.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to answer accepted requests on SIGTERM")
    p.add_argument(
        "--api-key",
        help="require 'Authorization: Bearer KEY' on every route but the health probes and /metrics "
        "(default: $UNIFIED_NLP_API_KEY, the better place: a command line is visible to other users)",
    )
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one log line per request: method, path, status, ms, texts",
    )
    add_threads_option(p)
    p.add_argument(
        "--precision",
        choices=(*PRECISIONS, AUTO_PRECISION),
        help="fp32, or bf16 / int8 on a backend that offers it; auto: bf16 where offered here, else fp32",
    )
    _add_device_argument(p)
    p.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UnifiedNLPError as e:
        print(f"unified-nlp: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unified-nlp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
