"""The documentation a new user reads: generated where it can be, and never pointing elsewhere.

docs/asyncapi.yaml must be what tools/asyncapi.py writes and pass the AsyncAPI parser; every
link and file name in the Markdown must resolve inside the repository; nothing in the
repository may refer to the team's workspace outside it.
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from homeapp.identity.tokens import TokenIdentifier
from homeapp.schemas.examples import EXAMPLES
from homeapp.schemas.outgoing import SERVER_EVENTS
from tests.credentials import NODE_DIR, require_node
from tests.live import Peer, settle
from tools import asyncapi

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.md"))]

# ---------------------------------------------------------------- docs/asyncapi.yaml


def test_asyncapi_yaml_is_what_the_generator_writes():
    written = asyncapi.OUTPUT.read_text() if asyncapi.OUTPUT.is_file() else ""
    assert written == asyncapi.render(), (
        f"docs/asyncapi.yaml is out of date with the schemas: run `{asyncapi.COMMAND}` and commit it")


@pytest.fixture(scope="module")
def parsed():
    """What the AsyncAPI project's parser (tests/node/asyncapi.js) says about docs/asyncapi.yaml."""
    require_node()
    proc = subprocess.run(["node", str(NODE_DIR / "asyncapi.js"), str(asyncapi.OUTPUT)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_asyncapi_parser_finds_no_error_or_warning(parsed):
    # severity 2 and 3 are information and hints, such as "AsyncAPI 3.1 exists"
    problems = [d for d in parsed["diagnostics"] if d["severity"] <= 1]
    assert problems == []


def test_every_client_event_has_an_example_that_its_schema_accepts(parsed):
    checked = {e["message"]: e["errors"] for e in parsed["examples"]}
    assert checked == {event: [] for event in EXAMPLES}


def test_the_yaml_reads_back_as_the_generated_document(parsed):
    assert parsed["document"] == json.loads(json.dumps(asyncapi.build()))


def test_every_event_is_described():
    messages = asyncapi.build()["components"]["messages"]
    described = {m["name"] for m in messages.values()}
    assert set(EXAMPLES) | set(SERVER_EVENTS) <= described
    assert {"ack", "messageAck", "refusal"} <= set(messages)


def test_every_event_is_explained_in_the_protocol_prose():
    prose = (ROOT / "docs" / "protocol.md").read_text()
    missing = [e for e in [*EXAMPLES, *SERVER_EVENTS] if f"`{e.split('-{')[0]}" not in prose]
    assert missing == []


# ---------------------------------------------------------------- links and file names

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# a file name with one of these extensions, with or without directories before it
FILE_NAME = re.compile(r"(?<![\w/.:<{-])((?:[\w.-]+/)*[\w.-]*[\w-]"
                       r"\.(?:md|py|js|ya?ml|json|txt|conf|html|css|ini|lock|sh))(?!\.?[\w/])")
DIRECTORY = re.compile(r"(?<![\w/.:<{-])((?:[\w.-]+/)+)(?![\w<{])")
# names that look like files and are not: a runtime, and a method call in a JavaScript example
NOT_FILES = {"Node.js", "response.json"}
# what the benchmark writes into bench/results/<time>/ (gitignored), named by bench/README.md
BENCH_OUTPUTS = {"results.md", "results.json", "profile.txt", "profile.svg", "top.md", "logs/",
                 "bench/results/profile/"}
# where the browser tests leave their screenshots (gitignored), named by docs/demo.md: it
# exists once they have run, so this test must not depend on running after them
TEST_OUTPUTS = {"test-artifacts/"}


def _tracked():
    """Paths of the repository's files: committed, or new and not ignored."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def _slug(heading):
    """The anchor a Markdown renderer gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _resolves(name, doc, tracked):
    """True when `name`, seen in `doc`, is a file or directory of the repository: relative to
    the document or the root, or, for a name given without its leading directories, the end of
    one file's path."""
    for base in (ROOT / doc).parent, ROOT:
        path = Path(os.path.normpath(base / name))  # not resolve(): node_modules may be a link
        if path.is_relative_to(ROOT) and path.exists():
            return True
    if name.endswith("/"):
        return any(f"/{name}" in f"/{p}" for p in tracked)
    return any(f"/{p}".endswith(f"/{name}") for p in tracked)


def _problems(doc, text, tracked):
    """What in `text`, the Markdown of `doc`, does not resolve inside the repository."""
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        if path:
            resolved = Path(os.path.normpath((ROOT / doc).parent / path))
            if not (resolved.is_relative_to(ROOT) and resolved.exists()):
                problems.append(f"link {target}")
        elif anchor not in anchors:
            problems.append(f"link {target}: no such heading")
    for name in {*FILE_NAME.findall(text), *DIRECTORY.findall(text)} - NOT_FILES - BENCH_OUTPUTS - TEST_OUTPUTS:
        if not _resolves(name, doc, tracked):
            problems.append(name)
    return problems


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_and_file_name_resolves_inside_the_repository(doc):
    assert _problems(doc, (ROOT / doc).read_text(), _tracked()) == []


def test_the_link_check_finds_what_does_not_resolve():
    text = ("# Title\nSee [the guide](docs/missing.md), docs/absent.md, `homeapp/nothing.py`, "
            "[up](../x.md), [here](#nowhere), [top](#title), [auth](docs/auth.md), app.py and "
            "services/rooms.py, Node.js, results.md.\n")
    tracked = ["app.py", "docs/auth.md", "homeapp/services/rooms.py"]
    assert sorted(_problems("README.md", text, tracked)) == sorted([
        "link docs/missing.md", "link ../x.md", "link #nowhere: no such heading",
        "docs/missing.md", "docs/absent.md", "homeapp/nothing.py", "../x.md"])


# ---------------------------------------------------------------- references outside

OUTSIDE = re.compile(r"\.\./shared|shared/spec|/work/shared|contract section", re.I)


def test_nothing_refers_to_the_workspace_outside_the_repository():
    this = str(Path(__file__).relative_to(ROOT))  # names the patterns it looks for
    found = []
    for path in _tracked():
        if path == this:
            continue
        try:
            text = (ROOT / path).read_text()
        except UnicodeDecodeError:  # images
            continue
        found += [f"{path}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
                  for m in OUTSIDE.finditer(text)]
    assert found == []



# ---------------------------------------------------------------- examples run as written

FENCE = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def shell_example(doc, first_words):
    """The first ```sh block of doc that starts with first_words, as the page shows it."""
    blocks = [b for b in FENCE.findall((ROOT / doc).read_text()) if b.startswith(first_words)]
    assert blocks, f"{doc} has no sh example starting with {first_words!r}"
    return blocks[0]


def run_shell(script, env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("HOMEAPP_")}
    full.update(env)
    done = subprocess.run(["sh", "-c", script], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_backend_api_curl_example_performs_its_message(server_factory):
    tokens = "docs-example-token-0123456789abcdef-one,docs-example-token-0123456789abcdef-two"
    server = server_factory(HOMEAPP_API_TOKENS=tokens)
    script = shell_example("docs/backend-api.md", "curl ")
    assert "http://127.0.0.1:5000/" in script
    ben = Peer(server.url, "2")  # user 2's tab, subscribed to his own channel
    bystander = Peer(server.url, "3")
    try:
        for peer in (ben, bystander):
            assert peer.call("joinRoom", peer.user_id) == {"ok": True}
        # as written but for the port: the test's server is not on 5000
        out = run_shell(script.replace("http://127.0.0.1:5000/", server.url + "/"),
                        {"HOMEAPP_API_TOKENS": tokens})
        answer = json.loads(out)
        documented = json.loads(re.search(r"^# (\{.*\})$", script, re.M).group(1).replace("5f0c…", "x"))
        assert answer["ok"] is True and re.fullmatch(r"[0-9a-f]{32}", answer["id"]), answer
        assert set(answer) == set(documented) and set(answer["date"]) == set(documented["date"])
        ben.wait_for("messageResponseNotify")
        settle(ben, bystander)
        got = dict(ben.got())
        assert sorted(got) == ["messagePage", "messageResponseNotify"]
        assert got["messagePage"] == {"roomID": "1:2", "lastMessage": "Hello! Are you free on Friday?"}
        assert bystander.got() == []
    finally:
        ben.close()
        bystander.close()


def test_the_token_helper_example_prints_a_token_the_server_accepts():
    script = shell_example("docs/auth.md", "HOMEAPP_AUTH=jwt")
    secret = re.search(r"HOMEAPP_JWT_SECRET=(\S+)", script).group(1)
    token = run_shell(script, {}).strip()
    identity = TokenIdentifier(secret).verify(token)
    assert (identity.user_id, identity.username) == ("2", "jane")
