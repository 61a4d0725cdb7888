"""snn_compile.escape: every function's output is read back by its language as the same text,
never as code (checked with the real Python parser, g++, tclsh and sh)."""

import ast
import re
import shutil
import subprocess
import unicodedata

import pytest

from snn_compile import escape
from hostile import names


@pytest.fixture
def hostile(tmp_path):
    sentinel = tmp_path / "PWNED"
    yield names(sentinel) + ["\x00nul", "line\nbreak\r", "\\x41 looks escaped"], sentinel
    assert not sentinel.exists(), "injected code ran"


def test_printable_is_one_visible_line_and_one_to_one(hostile):
    texts, _ = hostile
    out = [escape.printable(t) for t in texts]
    for text in out:
        assert all(ch == " " or unicodedata.category(ch)[0] not in "CZ" for ch in text), text
    assert len(set(out)) == len(set(texts))
    assert escape.printable("a\nb") == "a\\nb" and escape.printable("a\\nb") == "a\\\\nb"
    assert escape.printable("\x1b[31m") == "\\x1b[31m"


def test_python_literal_and_docstring_read_back_as_data(hostile):
    texts, _ = hostile
    for text in texts:
        assert ast.literal_eval(escape.py_literal(text)) == text
        source = f'"""Run \'{escape.py_docstring(text)}\' now."""\n'
        tree = ast.parse(source)
        assert len(tree.body) == 1 and isinstance(tree.body[0].value, ast.Constant)
        assert tree.body[0].value.value == f"Run '{escape.printable(text)}' now."
        assert "\n" not in escape.py_comment(text)


@pytest.mark.hls
def test_cpp_strings_comments_and_identifiers_compile_to_the_same_bytes(hostile, tmp_path):
    if shutil.which("g++") is None:
        pytest.skip("g++ not available")
    texts, _ = hostile
    taken = set()
    idents = [escape.cpp_identifier(t, taken) for t in texts + ["fc", "fc_w", "FC", "fc"]]
    for ident in idents:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", ident) and len(ident) <= 40
        assert "__" not in ident and not ident.endswith("_")
    low = [i.lower() for i in idents]
    assert len(set(low)) == len(low)
    assert not any(a != b and b.startswith(a + "_") for a in low for b in low)
    lines = ["#include <cstdio>", "#include <cstring>"]
    for k, (text, ident) in enumerate(zip(texts, idents)):
        lines += [f"// line comment {escape.cpp_comment(text)}",
                  f"static const int {ident}_u = {k};",
                  f"/* block comment {escape.cpp_comment(text)} */ static const int m{k} = {k};"]
    strings = ", ".join(escape.cpp_string(t) for t in texts)
    sizes = ", ".join(str(len(t.encode())) for t in texts)
    lines += [f"static const char *S[] = {{{strings}}};", f"static const int N[] = {{{sizes}}};",
              "int main() {",
              *[f"  (void){ident}_u; (void)m{k};" for k, ident in enumerate(idents[:len(texts)])],
              f"  for (int i = 0; i < {len(texts)}; i++) {{",
              "    for (int j = 0; j < N[i]; j++) std::printf(\"%02x\", (unsigned char)S[i][j]);",
              "    std::printf(\"\\n\");", "  }", "}"]
    src = tmp_path / "t.cpp"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "t"
    # C++14 with trigraphs: a "??/" in a comment would splice the next line into it
    subprocess.run(["g++", "-std=c++14", "-trigraphs", "-w", str(src), "-o", str(exe)],
                   check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out.split("\n")[:-1] == [t.encode().hex() for t in texts]


def test_long_names_get_short_distinct_identifiers():
    taken = set()
    a = escape.cpp_identifier("x" * 300, taken)
    b = escape.cpp_identifier("x" * 299 + "y", taken)
    assert len(a) <= 40 and len(b) <= 40 and a != b


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not available")
def test_tcl_words_are_never_substituted(hostile, tmp_path):
    texts, _ = hostile
    texts = [t for t in texts if "\x00" not in t]  # Tcl strings hold NUL, but puts ends there
    script = "".join(f"set v {escape.tcl_word(t)}\n"
                     "puts [binary encode hex [encoding convertto utf-8 $v]]\n" for t in texts)
    path = tmp_path / "t.tcl"
    path.write_text(script, encoding="utf-8")
    out = subprocess.run(["tclsh", str(path)], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == [t.encode().hex() for t in texts]


def test_shell_words_are_literal(hostile):
    texts, _ = hostile
    for text in texts:
        done = subprocess.run(["sh", "-c", f"printf %s {escape.sh_word(text)}"],
                              capture_output=True, text=True, check=True)
        assert done.stdout == escape.printable(text)


def test_markdown_text_escapes_every_special_character(hostile):
    texts, _ = hostile
    punct = re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    token = re.compile(rf"(\\[{punct}]|[^{punct}])*")
    for text in texts:
        md = escape.md_text(text)
        assert token.fullmatch(md), md
        assert re.sub(rf"\\([{punct}])", r"\1", md) == escape.printable(text)


def test_matplotlib_labels_are_never_mathtext(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title(escape.mpl_text("$\\alpha^$\x1b"), parse_math=False)
    fig.savefig(tmp_path / "ok.png")
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.set_title("$\\alpha^$")
    with pytest.raises(ValueError):  # what an unescaped name does
        fig.savefig(tmp_path / "bad.png")
    plt.close(fig)
