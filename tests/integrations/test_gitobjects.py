"""Object ids computed locally are git's own (checked against the git binary when it is installed)."""

from __future__ import annotations

import subprocess

from integrations.github.gitobjects import blob_sha, folder_tree_sha

FILES = {
    "main.tf": b'resource "x" "y" {}\n',
    "modules/net/vnet.tf": b"# vnet\n",
    "modules/net.tf": b"# sorts before the net/ folder's entries? git says: by name + '/'\n",
    "modules-a.tf": b"a\n",
    "README.md": "Unicode: \u00e9\u00e8\n".encode(),
}


def test_blob_sha_of_known_content():
    # `printf 'hello\n' | git hash-object --stdin`
    assert blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert blob_sha(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_empty_tree_sha():
    assert folder_tree_sha({}) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def test_tree_sha_matches_git(tmp_path):
    for path, content in FILES.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    tree = subprocess.run(
        ["git", "-C", str(tmp_path), "write-tree"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert folder_tree_sha(FILES) == tree
