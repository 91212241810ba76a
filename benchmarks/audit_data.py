"""Synthetic chat datasets for the audit benchmark: varied, with a few planted problems.

Inputs are support-style requests assembled from independent choices (product, action,
symptom, context, filler), so texts differ in many words, as real ones do, and near-copies
only appear where they are planted.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PRODUCTS = ["invoice export", "mobile app", "calendar sync", "team dashboard", "API gateway",
            "billing page", "report builder", "file uploader", "search index", "SSO login",
            "webhook relay", "audit log", "data import", "offline mode", "push alerts",
            "time tracker", "route planner", "parts catalogue", "crew scheduler", "map view"]
ACTIONS = ["open", "save", "export", "share", "delete", "rename", "sync", "print", "filter",
           "sort", "archive", "restore", "merge", "split", "tag", "approve", "reject", "assign"]
SYMPTOMS = ["it spins forever", "nothing happens", "it shows error code {n}", "it crashes",
            "the page goes blank", "it logs me out", "the numbers are wrong", "it takes {n} s",
            "the button is greyed out", "it duplicates every row", "it drops the last item",
            "the totals are off by {n}", "the dates shift by a day", "it asks me to log in again"]
CONTEXTS = ["since the update on {d}", "only on my tablet", "for {n} of our users",
            "when the list has more than {n} items", "in the EU region", "on slow networks",
            "after I changed my password", "on the shared workspace", "with the dark theme",
            "when two people edit at once", "from the desktop client", "in our staging account"]
FILLERS = ["Could you take a look?", "This blocks our month-end close.", "Thanks in advance.",
           "We have a demo tomorrow.", "Is there a workaround?", "Happy to share logs.",
           "It worked last week.", "Our admin is also stuck.", "Please advise.", ""]
LABELS = ["BUG", "BILLING", "ACCOUNT", "FEATURE", "HOWTO"]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu amber basil cedar dune ember fjord grove harbor iris jade kelp lotus").split()


def request(rng: random.Random) -> str:
    n, d = rng.randint(2, 999), f"{rng.randint(1, 28)} {rng.choice(['May', 'June', 'July'])}"
    symptom = rng.choice(SYMPTOMS).format(n=n)
    context = rng.choice(CONTEXTS).format(n=n, d=d)
    detail = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
    return (f"When I {rng.choice(ACTIONS)} in the {rng.choice(PRODUCTS)}, {symptom} {context}. "
            f"Workspace {detail}. {rng.choice(FILLERS)}").strip()


def chat_records(n: int, seed: int = 0) -> list[dict]:
    """`n` OpenAI-format records; about 1% exact copies, 1% near-copies, 0.5% contradictions
    (a copied request with another label), a few e-mails."""
    rng = random.Random(seed)
    records: list[dict] = []
    for i in range(n):
        roll = rng.random()
        if records and roll < 0.01:
            records.append(json.loads(json.dumps(rng.choice(records))))
            continue
        if records and roll < 0.02:
            copy = json.loads(json.dumps(rng.choice(records)))
            copy["messages"][1]["content"] += " Thanks!"
            records.append(copy)
            continue
        if records and roll < 0.025:
            copy = json.loads(json.dumps(rng.choice(records)))
            answer = copy["messages"][2]
            answer["content"] = rng.choice([x for x in LABELS if x != answer["content"]])
            records.append(copy)
            continue
        text = request(rng)
        if roll < 0.03:
            text += f" Reach me at user{i}@example.org."
        records.append({"messages": [
            {"role": "system", "content": "Classify the support request."},
            {"role": "user", "content": text},
            {"role": "assistant", "content": rng.choice(LABELS)},
        ]})
    return records


def write_chat_file(path: Path, n: int, seed: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for record in chat_records(n, seed):
            fh.write(json.dumps(record) + "\n")
    return path
