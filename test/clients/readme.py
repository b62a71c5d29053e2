"""Keep the README's client snippets identical to the tested code.

In README.md, a line

    <!-- snippet: test/clients/psycopg/client.py#psycopg -->

is followed by a fenced code block holding the region of that file between the
lines marked `README:psycopg` and `README:end` (dedented); without `#NAME` the
block holds the whole file.  Every region marked in a file under test/clients
or examples must be shown somewhere.

Usage: readme.py           check; "ok"/"not ok" per snippet, exit 1 on a difference
       readme.py --write   rewrite the README's blocks from the files
"""
import difflib
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- snippet: (?P<path>[^#\s]+)(?:#(?P<name>[\w-]+))? -->$")
REGION = re.compile(r"README:(?P<name>[\w-]+)")


def regions(path):
    """{name: text} of the marked regions of a file."""
    found, current, lines = {}, None, []
    for line in (ROOT / path).read_text().splitlines():
        m = REGION.search(line)
        if m and m.group("name") == "end":
            found[current] = textwrap.dedent("\n".join(lines)).strip("\n") + "\n"
            current = None
        elif m:
            current, lines = m.group("name"), []
        elif current:
            lines.append(line)
    return found


def snippet(path, name):
    if name is None:
        return (ROOT / path).read_text()
    return regions(path).get(name)


def main():
    write = sys.argv[1:] == ["--write"]
    lines = README.read_text().splitlines(keepends=True)
    out, failed, shown, n, i = [], 0, set(), 0, 0
    while i < len(lines):
        out.append(lines[i])
        m = MARKER.match(lines[i].strip())
        i += 1
        if not m:
            continue
        path, name = m.group("path"), m.group("name")
        shown.add((path, name))
        want = snippet(path, name)
        fence = lines[i] if i < len(lines) else ""
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        n += 1
        label = f"README snippet {path}{'#' + name if name else ''}"
        if write and want is not None and not fence.startswith("```"):
            lang = {".py": "python", ".js": "js", ".go": "go", ".java": "java"}.get(pathlib.Path(path).suffix, "")
            out += [f"```{lang}\n", want, "```\n"]
            continue
        if want is None or not fence.startswith("```") or end is None:
            print(f"not ok {n} - {label}: no such region, or no code block after the marker")
            failed += 1
            continue
        have = "".join(lines[i + 1:end])
        if write:
            out += [fence, want, "```\n"]
        else:
            out += lines[i:end + 1]
            if have == want:
                print(f"ok {n} - {label} is the tested code")
            else:
                failed += 1
                print(f"not ok {n} - {label} differs from the tested code:")
                sys.stdout.writelines(difflib.unified_diff(
                    have.splitlines(keepends=True), want.splitlines(keepends=True), "README.md", path))
        i = end + 1
    for path in sorted(p for d in ("test/clients", "examples") for p in (ROOT / d).rglob("*")
                       if p.is_file() and "node_modules" not in p.parts and p.suffix in (".py", ".js", ".go", ".java")
                       and p != pathlib.Path(__file__).resolve()):
        rel = str(path.relative_to(ROOT))
        for name in regions(rel):
            n += 1
            if (rel, name) in shown:
                print(f"ok {n} - region {rel}#{name} is in the README")
            else:
                failed += 1
                print(f"not ok {n} - region {rel}#{name} is marked but the README does not show it")
    if write:
        README.write_text("".join(out))
    print(f"# README snippets: {n - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
