"""Export every notebook's interview questions as an Anki deck (genanki).

    python tools/anki_cards.py build/interview.apkg      # or: make cards

One package, one deck per chapter as sub-decks of "Deep learning, built twice" (``…::00 · Core Building
Blocks``). Front: the question; back: the worked answer and the notebook it comes from. Markdown becomes HTML;
math stays math, as the MathJax delimiters Anki renders: ``$…$`` → ``\\(…\\)`` and ``$$…$$`` → ``\\[…\\]``.

Ids are stable, so re-importing an updated package updates the cards instead of duplicating them: the note
model id is a constant, a deck id is derived from the deck name and a note's guid from its notebook path and
question number (editing a question or answer updates that note in place).
"""

from __future__ import annotations

import hashlib
import html
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interview_sheet  # noqa: E402 - the sibling tool that knows how to read the interview sections

ROOT = interview_sheet.ROOT
DECK = "Deep learning, built twice"
MODEL_ID = 1_724_830_512          # fixed forever: changing it would make Anki treat every card as new
MATH_OR_CODE = re.compile(r"(`+)(.+?)\1|\$\$(.+?)\$\$|(?<![\\$])\$(?!\s)((?:[^$\n]|\n(?!\s*\n))+?)(?<![\s\\])\$", re.S)
CSS = """.card { font-family: sans-serif; font-size: 18px; text-align: left; color: black; background: white; }
.source { margin-top: 1em; font-size: 13px; color: #777; }
code, pre { font-size: 15px; background: #f4f4f4; }"""


def stable_id(text: str) -> int:
    """A deck id derived from ``text`` (in Anki's usual range, 2**30 … 2**31 - 1)."""
    return (1 << 30) + int(hashlib.sha256(text.encode()).hexdigest(), 16) % (1 << 30)


def to_html(markdown: str) -> str:
    """Markdown to HTML for a card, with ``$…$``/``$$…$$`` turned into ``\\(…\\)``/``\\[…\\]`` untouched by Markdown."""
    import mistune

    math: list[str] = []

    def protect(m: re.Match) -> str:
        if m.group(1):                      # a code span: leave it to Markdown
            return m.group(0)
        tex, display = (m.group(3), True) if m.group(3) is not None else (m.group(4), False)
        tex = " ".join(tex.split())
        math.append(f"\\[{html.escape(tex, quote=False)}\\]" if display else f"\\({html.escape(tex, quote=False)}\\)")
        return f"MATHPLACEHOLDER{len(math) - 1}X"

    body = mistune.html(MATH_OR_CODE.sub(protect, markdown)).strip()
    body = re.sub(r"MATHPLACEHOLDER(\d+)X", lambda m: math[int(m.group(1))], body)
    if body.startswith("<p>") and body.endswith("</p>") and body.count("<p>") == 1:
        body = body[3:-4]
    return body


def model():
    import genanki

    return genanki.Model(
        MODEL_ID, "DL built twice: interview question",
        fields=[{"name": "Question"}, {"name": "Answer"}, {"name": "Source"}],
        templates=[{"name": "Card 1", "qfmt": "{{Question}}",
                    "afmt": '{{FrontSide}}<hr id="answer">{{Answer}}<div class="source">{{Source}}</div>'}],
        css=CSS)


def decks(root: Path = ROOT) -> list:
    """One genanki deck per chapter, holding one note per interview question of its notebooks."""
    import genanki

    note_model, by_chapter = model(), {}
    for nb in interview_sheet.notebooks(root):
        title, body = interview_sheet.interview_section(nb)
        rel = nb.relative_to(root).as_posix()
        for n, (question, answer) in enumerate(interview_sheet.questions(body), start=1):
            name = f"{DECK}::{interview_sheet.chapter_name(nb.parent.name)}"
            deck = by_chapter.setdefault(name, genanki.Deck(stable_id(name), name))
            deck.add_note(genanki.Note(
                model=note_model, fields=[to_html(question), to_html(answer), html.escape(f"{title} — {rel}")],
                guid=genanki.guid_for(rel, n), tags=[nb.parent.name.split("_", 1)[0] + "_" + nb.stem]))
    return list(by_chapter.values())


def write(path: Path, root: Path = ROOT) -> int:
    """Write the package to ``path``; return the number of notes."""
    import genanki

    all_decks = decks(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    genanki.Package(all_decks).write_to_file(str(path))
    return sum(len(d.notes) for d in all_decks)


def main(args: list[str]) -> int:
    if len(args) != 1:
        print(__doc__)
        return 2
    path = Path(args[0])
    n = write(path)
    print(f"wrote {path}: {n} cards")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
