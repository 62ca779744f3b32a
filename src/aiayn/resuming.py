"""What may change when a run resumes, and the record that catches anything else changing.

`aiayn train --out R --resume` continues run R with R's own config (config.yaml). Options given
with `--resume` may change how long, where or how visibly it trains and what it does at the end
(`RESUMABLE`): `--resume --max-epochs 30` trains longer. Anything else (the data, the model,
the optimizer, the batches) would make the resumed run a different experiment from the
checkpoints it continues, so a change to it is refused, naming the field; that includes a
config.yaml edited by hand, caught by the fingerprint that run.json records when the run begins.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiayn.config import RunConfig
from aiayn.errors import ConfigError

RESUMABLE: frozenset[str] = frozenset(
    {
        "train.max_steps",
        "train.max_epochs",
        "train.max_minutes",
        "train.device",
        "train.precision",
        "train.compile",
        "train.progress",
        "train.valid_bleu",
        "train.log_every",
        "train.validate_every",
        "train.save_every",
        "train.keep_last",
        "train.average_last",
        "train.average_over",
        "train.dist_timeout",
        "decode.beam_size",
        # Where the Multi30k files are, not what they hold: a run moved to another machine
        # resumes with --data-dir. (Different text would also change the batches per epoch,
        # which the data position in the checkpoint refuses.)
        "data.data_dir",
        # How downloads are checked, not what they hold.
        "data.checksum_file",
    }
)
"""The `section.key` fields a resumed run may change."""


def flat_fields(config: RunConfig) -> dict[str, Any]:
    """Every field as `section.key` -> value; the model section as the fields it resolves to.

    A model preset is compared by what it means (its fields), so `preset: multi30k` and the
    same fields spelt out are the same model.
    """
    fields: dict[str, Any] = {}
    for section, values in config.to_dict().items():
        if section != "model":
            fields.update({f"{section}.{key}": value for key, value in values.items()})
    model = config.model_config(100, 100).to_dict()  # vocabulary sizes come from the data
    for key in ("src_vocab_size", "tgt_vocab_size"):
        model.pop(key)
    fields.update({f"model.{key}": value for key, value in model.items()})
    return fields


def identity_fields(config: RunConfig) -> dict[str, Any]:
    """The fields that define what a run trains: everything but `RESUMABLE`."""
    return {k: v for k, v in flat_fields(config).items() if k not in RESUMABLE}


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """What run.json records when a run begins: the identity fields and their SHA-256."""
    fields = identity_fields(config)
    text = json.dumps(fields, sort_keys=True)
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "fields": fields}


def _describe(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(changes.items()))


def check_unedited(config: RunConfig, recorded: dict[str, Any] | None, where: str) -> None:
    """Refuse a saved config whose identity fields differ from the run's record.

    Args:
        config: the run's config.yaml as it is now.
        recorded: run.json's `config_fingerprint` (None for runs made before it existed).
        where: the config file, for the message.

    Raises:
        ConfigError: naming each field that changed.
    """
    if not recorded:
        return
    now = fingerprint(config)
    if now["sha256"] == recorded.get("sha256"):
        return
    before = recorded.get("fields", {})
    # A field added to aiayn after the run began is missing from its record: at its default
    # it is what the run always did, so it is no edit.
    defaults = identity_fields(RunConfig())
    keys = set(before) | set(now["fields"])
    changes = {
        k: (before.get(k), now["fields"].get(k))
        for k in keys
        if before.get(k) != now["fields"].get(k)
        and not (k not in before and k in defaults and now["fields"][k] == defaults[k])
    }
    if not changes:
        return
    raise ConfigError(
        f"{where} was edited after the run began ({_describe(changes) or 'its fingerprint'}); "
        f"only {', '.join(sorted(RESUMABLE))} may change on --resume: undo the edit, or train "
        "a new run in another --out"
    )


def resume_changes(saved: RunConfig, requested: RunConfig) -> dict[str, tuple[Any, Any]]:
    """The fields `requested` changes in `saved`, if a resumed run may change them.

    Args:
        saved: the run's config.
        requested: what the resumed run is asked to use (the saved config with the options of
            the `--resume` command applied, or a whole `--config` file).

    Returns:
        `section.key` -> (saved value, requested value) for each field that changes.

    Raises:
        ConfigError: a field outside `RESUMABLE` would change; the message names each.
    """
    before, after = flat_fields(saved), flat_fields(requested)
    changes = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    refused = {k: v for k, v in changes.items() if k not in RESUMABLE}
    if refused:
        raise ConfigError(
            f"cannot change {_describe(refused)} when resuming a run; only "
            f"{', '.join(sorted(RESUMABLE))} may change (train a new run in another --out to "
            "change the rest)"
        )
    return changes
