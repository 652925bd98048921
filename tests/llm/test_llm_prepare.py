"""Tokenized dataset preparation: output layout, equality with build_example, label masking, EOS,
drop / truncate policy, MotionGPT-LoRA train.json in digits format, caching and the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import random
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from motiongpt.llm.dataset_builder import write_records  # noqa: E402
from motiongpt.llm.prepare import PrepareConfig, load_prepared, prepare_dataset  # noqa: E402
from motiongpt.llm.tasks import MotionItem, TaskConfig, build_item_records  # noqa: E402
from motiongpt.llm.templates import IGNORE_INDEX, build_example, load_instructions  # noqa: E402
from motiongpt.llm.tokens import MotionTokenFormat, load_motion_format, save_motion_format, text_to_codes  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
VOCAB = MotionTokenFormat("vocab", 512)
DIGITS = MotionTokenFormat("digits", 512)
WORDS = ("a person walks forward turns left right jumps runs waves the hand arm sits down stands up slowly "
         "quickly in a circle backwards kicks with his her leg then stops and").split()
TASK_LIST = ["t2m", "t2m_keys", "t2m_keys_pos", "m2t", "pred", "inbetween"]
LORA_T2M = "Generate a sequence of motion tokens matching the following human motion description."


def _records(n_items: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    instructions = load_instructions()
    cfg = TaskConfig(tasks=TASK_LIST, records_per_clip=1)
    out = []
    for i in range(n_items):
        caps = tuple(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(2))
        item = MotionItem(f"{seed}_{i:04d}", tuple(rng.randrange(512) for _ in range(rng.randint(5, 49))), caps)
        out += build_item_records(item, cfg, VOCAB, instructions, seed)[0]
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("records")
    write_records(d / "train.json", _records(40, 0))
    write_records(d / "val.json", _records(6, 1))
    save_motion_format(VOCAB, d)
    return d


@pytest.fixture(scope="module")
def prepared(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("prep") / "p"
    prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(out), base_model="nano"))
    return {"out": out, **load_prepared(out)}


def _response_codes(example: dict, tokenizer, fmt: MotionTokenFormat) -> list[int]:
    resp = [i for i, lab in zip(example["input_ids"], example["labels"], strict=True) if lab != IGNORE_INDEX]
    assert resp[-1] == tokenizer.eos_token_id
    res = text_to_codes(tokenizer.decode(resp[:-1], skip_special_tokens=True), fmt)
    assert res.ok, res.problems
    return res.codes


def test_layout_columns_and_config(prepared, data_dir):
    out = prepared["out"]
    assert sorted(p.name for p in out.iterdir()) == ["instruction_config.json", "motion_format.json",
                                                     "prepare_config.yaml", "stats.json", "tokenizer", "train", "val"]
    # records written by hand, not by the instruction builder: no settings to carry, and why
    if not (data_dir / "meta.json").is_file():
        assert prepared["instruction"]["config"] is None and "meta.json not found" in prepared["instruction"]["reason"]
    from datasets import List, Value

    for split in ("train", "val"):
        ds = prepared[split]
        assert ds.column_names == ["input_ids", "labels", "length", "task", "motion"]
        assert ds.features["input_ids"] == List(Value("int32")) and ds.features["labels"] == List(Value("int32"))
        assert ds.features["length"] == Value("int32") and ds.features["task"] == Value("string")
    cfg = yaml.safe_load((out / "prepare_config.yaml").read_text())
    assert (cfg["base_model"], cfg["format"], cfg["nb_code"], cfg["template"], cfg["max_len"]) == (
        "nano", "vocab", 512, "alpaca", 512)
    assert cfg["train_on_prompt"] is False and cfg["vocab_size"] == 2000 and cfg["seed"] == 0
    assert load_motion_format(out) == VOCAB
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()} == {0o666 & ~umask}
    tok = prepared["tokenizer"]
    stats = prepared["stats"]
    assert stats["tokenizer"]["size"] == len(tok) == stats["tokenizer"]["base_size"] + 514
    assert tok("<motion_id_7>", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids("<motion_id_7>")]
    assert set(stats["inputs"]) == {"train.json", "val.json", "motion_format.json", "instructions"}


def test_examples_equal_build_example(prepared, data_dir):
    """Batched tokenization gives exactly build_example's ids; labels are -100 exactly on the
    prompt; EOS is the last label; the response decodes back to the record's codes."""
    tok = prepared["tokenizer"]
    for split in ("train", "val"):
        records = json.loads((data_dir / f"{split}.json").read_text())
        ds = prepared[split]
        assert len(ds) == len(records)  # max_len 512: nothing dropped
        for rec, ex in zip(records, ds, strict=True):
            ref = build_example(rec, tok, "alpaca", train_on_prompt=False)
            assert ex["input_ids"] == ref["input_ids"] and ex["labels"] == ref["labels"]
            n_prompt = ref["num_prompt_tokens"]
            assert ex["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
            assert IGNORE_INDEX not in ex["labels"][n_prompt:]
            assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:]
            assert ex["labels"][-1] == tok.eos_token_id and ex["input_ids"][0] == tok.bos_token_id
            assert ex["length"] == len(ex["input_ids"]) and ex["task"] == rec["task"] and ex["motion"] == rec["motion"]
            if rec["task"] != "m2t":
                assert _response_codes(ex, tok, VOCAB) == text_to_codes(rec["output"], VOCAB).codes
    stats = prepared["stats"]["splits"]["train"]
    assert stats["records"] == stats["kept"] == len(prepared["train"]) and stats["dropped_too_long"] == 0
    lengths = prepared["train"]["length"]
    assert (stats["length"]["min"], stats["length"]["max"]) == (min(lengths), max(lengths))
    assert stats["tokens"] == sum(lengths) == sum(t["tokens"] for t in stats["per_task"].values())
    assert {t: v["records"] for t, v in stats["per_task"].items()} == {t: 40 for t in TASK_LIST}


def test_drop_too_long(prepared, data_dir, tmp_path):
    tok = prepared["tokenizer"]
    records = json.loads((data_dir / "train.json").read_text())
    full = [len(build_example(r, tok)["input_ids"]) for r in records]
    max_len = sorted(full)[len(full) // 2]
    out = prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(tmp_path / "p"), base_model="nano",
                                        max_len=max_len))
    res = load_prepared(out)
    stats = res["stats"]["splits"]["train"]
    expected_dropped = sum(n > max_len for n in full)
    assert 0 < expected_dropped < len(records)
    assert stats["dropped_too_long"] == expected_dropped and stats["truncated"] == 0
    assert stats["kept"] == len(res["train"]) == len(records) - expected_dropped
    assert sum(t["dropped_too_long"] for t in stats["per_task"].values()) == expected_dropped
    kept_records = [r for r, n in zip(records, full, strict=True) if n <= max_len]
    for rec, ex in zip(kept_records, res["train"], strict=True):
        assert ex["motion"] == rec["motion"] and len(ex["input_ids"]) <= max_len
        assert ex["labels"][-1] == tok.eos_token_id


def test_truncate_keeps_response_and_eos(prepared, data_dir, tmp_path):
    tok = prepared["tokenizer"]
    records = json.loads((data_dir / "train.json").read_text())
    refs = [build_example(r, tok) for r in records]
    max_len = sorted(len(r["input_ids"]) for r in refs)[len(refs) // 2]
    out = prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(tmp_path / "t"), base_model="nano",
                                        max_len=max_len, truncate=True))
    res = load_prepared(out)
    stats = res["stats"]["splits"]["train"]
    expected_truncated = sum(
        len(r["input_ids"]) > max_len and len(r["input_ids"]) - r["num_prompt_tokens"] + 1 < max_len for r in refs)
    assert stats["truncated"] == expected_truncated > 0
    assert stats["kept"] + stats["dropped_too_long"] == len(records)
    kept = {ex["motion"] + ex["task"]: ex for ex in res["train"]}
    for rec, ref in zip(records, refs, strict=True):
        ex = kept.get(rec["motion"] + rec["task"])
        if ex is None:
            continue
        n_prompt = ref["num_prompt_tokens"]
        response = ref["input_ids"][n_prompt:]
        assert len(ex["input_ids"]) <= max_len and ex["input_ids"][0] == tok.bos_token_id
        assert ex["input_ids"][-len(response):] == response  # response + eos intact
        assert [x for x in ex["labels"] if x != IGNORE_INDEX] == response
        kept_prompt = ex["input_ids"][: len(ex["input_ids"]) - len(response)]
        assert kept_prompt[1:] == ref["input_ids"][n_prompt - (len(kept_prompt) - 1): n_prompt]  # prompt end kept


def test_train_on_prompt(data_dir, tmp_path):
    out = prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(tmp_path / "p"), base_model="nano",
                                        train_on_prompt=True, splits=["train"]))
    res = load_prepared(out)
    assert "val" not in res
    assert all(ex["labels"] == ex["input_ids"] for ex in res["train"])


def test_motiongpt_lora_train_json_digits(tmp_path):
    """MotionGPT-LoRA's own train.json (instruction/input/output only, bare digit outputs) is
    prepared unchanged in the digits format and decodes back to the same codes."""
    rng = random.Random(0)
    lora = [{"instruction": LORA_T2M, "input": "a person walks forward.", "output": "315,91,406,12"}]
    for _ in range(30):
        codes = [rng.randrange(512) for _ in range(rng.randint(3, 30))]
        cap = " ".join(rng.choice(WORDS) for _ in range(6)) + "."
        lora.append({"instruction": LORA_T2M, "input": cap, "output": ",".join(map(str, codes))})
        lora.append({"instruction": LORA_T2M.replace(".", " given the initial token."),
                     "input": f"{cap}<Motion Token>{codes[0]}</Motion Token>", "output": ",".join(map(str, codes))})
    d = tmp_path / "lora"
    d.mkdir()
    (d / "train.json").write_text(json.dumps(lora, indent=4))
    with pytest.raises(ValueError, match="format=vocab|digits"):
        prepare_dataset(PrepareConfig(data_dir=str(d), out_dir=str(tmp_path / "x"), base_model="nano"))
    with pytest.raises(ValueError, match=r"train.json: record 0 \(task t2m\).*not a valid vocab"):
        prepare_dataset(PrepareConfig(data_dir=str(d), out_dir=str(tmp_path / "x"), base_model="nano", format="vocab"))
    out = prepare_dataset(PrepareConfig(data_dir=str(d), out_dir=str(tmp_path / "p"), base_model="nano",
                                        format="digits"))
    res = load_prepared(out)
    assert res["format"] == DIGITS and res["stats"]["tokenizer"]["motion_tokens_added"] == 2  # the wrappers
    ds = res["train"]
    assert len(ds) == len(lora)
    assert ds["task"] == ["t2m"] + ["t2m", "t2m_init"] * 30 and set(ds["motion"]) == {""}
    for rec, ex in zip(lora, ds, strict=True):
        assert _response_codes(ex, res["tokenizer"], DIGITS) == [int(c) for c in rec["output"].split(",")]
        assert ex["input_ids"] == build_example(rec, res["tokenizer"])["input_ids"]
    assert json.loads((d / "train.json").read_text()) == lora  # read, never rewritten
    bad = tmp_path / "bad"
    bad.mkdir()
    for output, problem in (("315,512", "out of range"), ("315, 91", "whitespace"), ("007,1", "non-canonical")):
        (bad / "train.json").write_text(json.dumps(lora[:3] + [{**lora[0], "output": output}]))
        with pytest.raises(ValueError, match=rf"record 3 \(task t2m\).*{problem}"):
            prepare_dataset(PrepareConfig(data_dir=str(bad), out_dir=str(tmp_path / "x"), base_model="nano",
                                          format="digits"))


def test_cache_noop_and_invalidation(data_dir, tmp_path):
    cfg = PrepareConfig(data_dir=str(data_dir), out_dir=str(tmp_path / "p"), base_model="nano", splits=["train"])
    out = prepare_dataset(cfg)

    def stamp() -> dict[str, int]:
        return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*"))}

    first = stamp()
    assert prepare_dataset(cfg) == out and stamp() == first  # no-op: nothing rewritten
    prepare_dataset(PrepareConfig(**{**cfg.__dict__, "max_len": 300}))
    second = stamp()
    assert second != first and yaml.safe_load((out / "prepare_config.yaml").read_text())["max_len"] == 300
    prepare_dataset(PrepareConfig(**{**cfg.__dict__, "max_len": 300}), force=True)
    assert stamp() != second


def test_input_change_rebuilds(data_dir, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    records = json.loads((data_dir / "train.json").read_text())[:30]
    write_records(d / "train.json", records)
    save_motion_format(VOCAB, d)
    cfg = PrepareConfig(data_dir=str(d), out_dir=str(tmp_path / "p"), base_model="nano")
    out = prepare_dataset(cfg)
    assert load_prepared(out)["stats"]["splits"]["train"]["records"] == 30
    write_records(d / "train.json", records[:20])
    prepare_dataset(cfg)
    assert load_prepared(out)["stats"]["splits"]["train"]["records"] == 20


def test_local_tokenizer_dir_and_guard(data_dir, tmp_path):
    from motiongpt.llm.model import train_bpe_tokenizer

    base = tmp_path / "base"
    train_bpe_tokenizer([" ".join(WORDS)] * 3 + ["### Instruction:", "### Response:"], 300, base)
    out = prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(tmp_path / "p"), base_model=str(base),
                                        splits=["train"]))
    res = load_prepared(out)
    assert "base_tokenizer" in res["stats"]["inputs"]
    assert res["stats"]["tokenizer"]["base_size"] == len(train_bpe_tokenizer(
        [" ".join(WORDS)] * 3 + ["### Instruction:", "### Response:"], 300))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an earlier prepare output"):
        prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(foreign), base_model="nano"))
    with pytest.raises(ValueError, match="neither a preset"):
        prepare_dataset(PrepareConfig(data_dir=str(data_dir), out_dir=str(tmp_path / "q"),
                                      base_model=str(tmp_path / "missing")))


def test_cli(data_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("prepare_motion", REPO / "scripts" / "prepare_motion.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = cli.main(["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "c"), "--base_model", "nano",
                    "--max_len", "200", "--truncate", "--vocab_size", "500", "--template", "compact",
                    "splits=[train]"])
    cfg = yaml.safe_load((out / "prepare_config.yaml").read_text())
    assert (cfg["max_len"], cfg["truncate"], cfg["vocab_size"], cfg["splits"]) == (200, True, 500, ["train"])
    assert cfg["template"] == "compact"
    printed = json.loads(capsys.readouterr().out)
    assert printed["splits"]["train"]["kept"] == len(load_prepared(out)["train"])
    with pytest.raises(SystemExit):
        cli.main(["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "c"), "max_len=4"])
