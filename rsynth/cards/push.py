"""`rsynth push`: upload a carded build to the Hugging Face Hub as a dataset repo.

Only what a dataset user needs goes up: the card, its plots, manifests, Arrow shards and export
files. Completion caches, Ray blocks, partition sidecars and temporary files stay local.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from rsynth.errors import UserError, require

# The Hub's repo id rules (huggingface_hub.utils.validate_repo_id), plus the namespace a dataset
# repo needs: checked before anything is uploaded, so a typo fails in one line, offline.
REPO_PART = re.compile(r"^[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?$")
UPLOAD_SUFFIXES = {".arrow", ".json", ".jsonl", ".parquet", ".png", ".md"}
LOCAL_ONLY = {"partition.json"}


def check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if (
        len(parts) != 2
        or not all(REPO_PART.match(p) for p in parts)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise UserError(
            f"--repo-id {repo_id!r}: expected NAMESPACE/NAME of letters, digits, '-', '_' and '.' "
            "(no '--' or '..', at most 96 characters each), e.g. me/gsm8k-omegaprm"
        )


def missing_data(root: Path, files: list[Path]) -> list[str]:
    """Card config globs that match none of the files `push` would upload (a card written with
    `-o` elsewhere points back at data outside the pushed directory)."""
    import yaml

    text = (root / "README.md").read_text()
    head = yaml.safe_load(text.split("---")[1]) if text.startswith("---") else {}
    globs = [f["path"] for c in (head or {}).get("configs", []) for f in c.get("data_files", [])]
    uploaded = [f.relative_to(root).as_posix() for f in files]
    missing = [g for g in globs if not fnmatch.filter(uploaded, g)]
    if not globs and not any(u.endswith(".arrow") for u in uploaded):
        missing.append("(no configs and no .arrow files)")
    return missing


def upload_list(root: Path) -> list[Path]:
    """The files `push` sends, in a stable order; refuses a directory without a card."""
    if not (root / "README.md").exists():
        raise UserError(f"push: {root} has no README.md; run `rsynth card {root}` first")
    files = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if not f.is_file() or any(part.startswith(".") for part in rel.parts) or f.name in LOCAL_ONLY:
            continue
        if f.suffix in UPLOAD_SUFFIXES:
            files.append(f)
    return files


def push_files(root: Path, files: list[Path], repo_id: str, *, private: bool) -> str:
    """Create the dataset repo if needed and upload `files` in one commit; any hub failure is one line."""
    hub = require("huggingface_hub", feature="rsynth push", extra="hf")
    api = hub.HfApi()
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(root),
            repo_id=repo_id,
            repo_type="dataset",
            allow_patterns=[f.relative_to(root).as_posix() for f in files],
            commit_message="rsynth push",
        )
    except Exception as exc:  # offline, auth, or hub errors come in many types; all are one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"push to {repo_id} failed: {type(exc).__name__}: {first}") from None
    return f"https://huggingface.co/datasets/{repo_id}"
