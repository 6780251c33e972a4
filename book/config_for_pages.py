"""Write the configuration of the published book: the book's own _config.yml plus the URL of the
repository it is built from, and the buttons that need that URL (repository, issues, and the
Binder launch button; the download button is there in every build).

No repository URL is written in the repository: the Pages workflow passes it from the GitHub
Actions context, and a local build, which reads _config.yml alone, shows none of these buttons.

    python book/config_for_pages.py https://github.com/OWNER/NAME --branch main --output FILE
    jupyter-book build book/ -W --config FILE
"""

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

BOOK = Path(__file__).resolve().parent
BINDERHUB_URL = "https://mybinder.org"  # the public Binder service; binder/ says what it installs


def pages_config(repository_url: str, branch: str) -> dict:
    """The book's configuration with the repository's URL, its buttons and a Binder button.

    Raises ValueError (one line) when the URL is not of the form http(s)://HOST/OWNER/NAME.
    """
    url = urlparse(repository_url)
    parts = url.path.strip("/").split("/")
    if url.scheme not in ("http", "https") or not url.netloc or len(parts) != 2 or not all(parts):
        raise ValueError(
            f"expected a repository URL https://HOST/OWNER/NAME, got {repository_url!r}"
        )
    if not branch:
        raise ValueError("expected a branch name, got an empty one")
    config = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
    config["repository"] = {
        "url": repository_url.rstrip("/"),
        "path_to_book": BOOK.name,
        "branch": branch,
    }
    config["html"] = {
        **config.get("html", {}),
        "use_repository_button": True,
        "use_issues_button": True,
    }
    config["launch_buttons"] = {"binderhub_url": BINDERHUB_URL, "notebook_interface": "jupyterlab"}
    return config


def main(argv: list[str] | None = None) -> None:
    """Command line: write pages_config(URL, --branch) as YAML to --output."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repository_url", help="e.g. https://github.com/OWNER/NAME")
    parser.add_argument("--branch", default="main", help="the branch Binder runs (default: main)")
    parser.add_argument("--output", required=True, type=Path, help="the YAML file to write")
    args = parser.parse_args(argv)
    try:
        text = yaml.safe_dump(
            pages_config(args.repository_url, args.branch), sort_keys=False, allow_unicode=True
        )
    except ValueError as err:
        sys.exit(f"config_for_pages.py: {err}")
    args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
