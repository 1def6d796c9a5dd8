"""The front page stays a front page, and its links lead somewhere."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_readme_is_a_front_page():
    assert len(_readme().splitlines()) <= 200


def test_readme_links_point_to_files_in_the_repository():
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _readme())
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links into the docs"
    missing = [t for t in local if not os.path.exists(os.path.join(ROOT, t))]
    assert missing == []
