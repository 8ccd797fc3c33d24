"""The index kept on disk between starts (policy/index_cache.py): read back it is the index
built, it is read again only for the same lists, and a damaged, foreign or unwritable
cache costs time, never a verdict."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from typogate import Config, Guard
from typogate.domains import CandidateIndex, parse_domain
from typogate.policy.index_cache import KEEP, MIN_DOMAINS, _build, built_index
from typogate.policy.lists import domain_lists

TYPOGATE = str(Path(sys.executable).with_name("typogate"))


def check(cache: Path, *args: str, **env: str) -> tuple[dict[str, str], str]:
    """``typogate check --json`` with its cache in ``cache`` (and ``env``): the verdicts by
    recipient, and what it wrote to stderr."""
    done = subprocess.run(
        [TYPOGATE, "check", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(cache), **env},
    )
    assert done.returncode == 0, done.stderr
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    return {verdict["recipient"]: verdict["action"] for verdict in verdicts}, done.stderr


def kept(cache: Path) -> list[Path]:
    return sorted((cache / "typogate").glob("*.index"))


def slips_of(domains: list[str]) -> list[str]:
    """Each domain, and it with a letter dropped and with its suffix changed."""
    typed = []
    for text in domains:
        name, _, suffix = text.partition(".")
        typed += [text, f"{name[1:] or name}.{suffix}", f"{name}.{suffix[:-1] or 'co'}"]
    return typed


def test_an_index_read_back_finds_what_the_index_built_finds(tmp_path):
    config = Config()
    lists = domain_lists(config)
    index, protected = built_index(config, lists, None)
    assert len(index) >= MIN_DOMAINS
    # A build that will be kept files the keys' text first: the same postings.
    keyed = _build(config, lists, keep=True)
    assert keyed._postings == index._postings
    read = CandidateIndex.from_bytes(keyed.to_bytes())
    assert read.domains == index.domains
    assert read.protected_domains == index.protected_domains
    assert {domain.ascii for domain in read.protected_domains} == protected
    # What each finds for slips of every 5th domain listed, and of a doppelganger.
    sample = [domain.unicode for domain in index.domains[::5]] + ["chnyahoo.com"]
    for text in slips_of(sample):
        try:
            typed = parse_domain(text)
        except ValueError:
            continue  # a slip that is no domain (a suffix left alone)
        assert sorted(read.candidates(typed, 2)) == sorted(index.candidates(typed, 2)), text
    # Learning goes on in the index read as in the one built.
    learned = parse_domain("example-correspondent.com")
    assert read.add(learned) and learned in read
    assert read.discard(learned) and learned not in read


def test_keys_of_every_shape_are_read_back():
    # One-letter names (x.com) are filed under an empty key too; IDN names under their
    # Unicode form; a name past the first slice of keys read.
    texts = ["x.com", "q.mil", "bücher.de", "яндекс.рф", "army.mil", "gmail.com"]
    texts += [f"agency{number}.gov" for number in range(3000)]
    index = CandidateIndex(
        [parse_domain(text) for text in texts[3:]],
        protected=[parse_domain(text) for text in texts[:3]],
        closed=["gov", "mil"],
        keep_keys=True,
    )
    read = CandidateIndex.from_bytes(index.to_bytes())
    assert read.domains == index.domains
    for text in ["xx.com", "c.com", "bucher.de", "bücker.de", "яндекс.ру", "agency2999.gov"]:
        typed = parse_domain(text)
        assert sorted(read.candidates(typed)) == sorted(index.candidates(typed)), text
    assert parse_domain("x.com") in read.candidates(parse_domain("c.com"))  # the empty key


def test_an_index_writes_its_keys_once_and_only_when_it_kept_them():
    domains = [parse_domain(text) for text in ("army.mil", "gmail.com")]
    with pytest.raises(ValueError, match="kept no keys"):
        CandidateIndex(domains).to_bytes()
    index = CandidateIndex(domains, keep_keys=True)
    CandidateIndex.from_bytes(index.to_bytes())
    with pytest.raises(ValueError, match="kept no keys"):
        index.to_bytes()  # the keys' text is let go of as it is written
    changed = CandidateIndex(domains, keep_keys=True)
    changed.add(parse_domain("example.com"))
    with pytest.raises(ValueError, match="kept no keys"):
        changed.to_bytes()  # its text would not say what is filed


def test_keys_of_one_hash_file_their_domains_together():
    from typogate.domains.index import _by_hash

    assert hash(-1) == hash(-2)  # CPython's one collision of small ints
    filed: dict[int, int | list[int]] = {-1: 3, -2: [4, 3], 7: [1, 2]}
    assert _by_hash(filed) == {hash(-1): [3, 4], 7: [1, 2]}
    assert filed[-2] == [4, 3]  # the text's filing is left as it was


@pytest.mark.parametrize(
    "keys",
    [[""], ["a"], ["a", ""], ["", "a"], [f"key{n}" for n in range(20_000)] + [""]],
    ids=["one empty", "one", "empty last", "empty first", "past a slice, empty last"],
)
def test_the_keys_text_gives_a_hash_for_every_key(keys):
    from typogate.domains.index import _hashes

    assert _hashes("\n".join(keys)) == [hash(key) for key in keys]


def test_a_guard_from_the_kept_index_gives_every_verdict_the_built_one_gives(tmp_path):
    built = Guard()
    Guard(index_cache=tmp_path)  # keeps it
    (file,) = tmp_path.glob("*.index")
    inode = file.stat().st_ino
    read = Guard(index_cache=tmp_path)
    assert file.stat().st_ino == inode  # read, not built and kept again
    sample = [domain.unicode for domain in built._judge.index.domains[::7]]
    for text in slips_of(sample) + ["gmial.com", "army.ml", "chndell.com", "аrmy.mil"]:
        try:
            expected = built.judge_domain(text)
        except ValueError:
            with pytest.raises(ValueError):
                read.judge_domain(text)
            continue
        assert read.judge_domain(text) == expected, text


def test_typogate_check_keeps_its_index_and_reads_it_at_the_next_start(tmp_path):
    verdicts, _ = check(tmp_path, "john@army.ml", "jane@army.mil")
    assert verdicts == {"john@army.ml": "reject", "jane@army.mil": "allow"}
    (file,) = kept(tmp_path)
    assert file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "typogate").stat().st_mode & 0o777 == 0o700
    inode = file.stat().st_ino
    assert check(tmp_path, "john@army.ml", "jane@army.mil") == (verdicts, "")
    assert file.stat().st_ino == inode  # the same file, read: a build would replace it


def test_starts_at_once_each_keep_it_whole(tmp_path):
    # Four processes with nothing kept: each builds and writes; the last rename wins, and
    # the file it leaves is whole (read at the next start, no warning).
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    starting = [
        subprocess.Popen(
            [TYPOGATE, "check", "--json", "john@army.ml"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    for process in starting:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and err == "", err
        assert json.loads(out)["action"] == "reject"
    (file,) = kept(tmp_path)
    assert list((tmp_path / "typogate").glob("*.partial")) == []
    inode = file.stat().st_ino
    assert check(tmp_path, "john@army.ml") == ({"john@army.ml": "reject"}, "")
    assert file.stat().st_ino == inode


def test_a_unit_of_systemd_keeps_it_in_its_cache_directory(tmp_path):
    unit_folder = tmp_path / "var-cache-typogate-policy"  # what CacheDirectory= makes
    check(tmp_path, "john@army.ml", CACHE_DIRECTORY=str(unit_folder))
    assert len(list(unit_folder.glob("*.index"))) == 1 and kept(tmp_path) == []


def test_a_changed_list_is_never_answered_from_the_index_of_the_one_before(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("example-corp.com\n")
    args = ["--profile", "us-gov", "--protect", str(mine)]
    verdicts, _ = check(tmp_path, *args, "a@exmaple-corp.com", "b@otehr-corp.com")
    assert verdicts == {"a@exmaple-corp.com": "reject", "b@otehr-corp.com": "allow"}
    mine.write_text("other-corp.com\n")  # the same file, other contents
    verdicts, _ = check(tmp_path, *args, "a@exmaple-corp.com", "b@otehr-corp.com")
    assert verdicts == {"a@exmaple-corp.com": "allow", "b@otehr-corp.com": "reject"}
    assert len(kept(tmp_path)) == 2


def test_a_short_list_is_built_and_not_kept(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("army.mil\n")
    verdicts, _ = check(tmp_path, "--protect", str(mine), "john@army.ml")
    assert verdicts == {"john@army.ml": "reject"}
    assert kept(tmp_path) == []


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x20
    file.write_bytes(bytes(data))


def _cut_short(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-1000])


def _writable_by_all(file: Path) -> None:
    file.chmod(0o666)


def _someone_elses(file: Path) -> None:
    os.chown(file, 65534, 65534)


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (_flip_a_byte, "cannot be read (its checksum does not match"),
        (_cut_short, "cannot be read (its checksum does not match"),
        (_writable_by_all, "is not this user's alone; not read"),
        (_someone_elses, "is not this user's alone; not read"),
    ],
)
def test_a_damaged_or_foreign_index_is_not_read_and_is_built_again(tmp_path, spoil, said):
    if spoil is _someone_elses and os.geteuid() != 0:
        pytest.skip("giving a file to another user takes root")
    check(tmp_path, "john@army.ml")
    (file,) = kept(tmp_path)
    spoil(file)
    # Built again: every verdict right, and a sound file kept in its place.
    verdicts, stderr = check(tmp_path, "john@army.ml", "jane@army.mil", "x@gmial.com")
    assert verdicts == {"john@army.ml": "reject", "jane@army.mil": "allow", "x@gmial.com": "reject"}
    assert said in stderr
    (again,) = kept(tmp_path)
    assert again.stat().st_uid == os.geteuid() and again.stat().st_mode & 0o777 == 0o600
    assert check(tmp_path, "john@army.ml")[1] == ""  # and read at the next start


def test_a_link_in_place_of_the_index_is_not_followed(tmp_path):
    check(tmp_path, "john@army.ml")
    (file,) = kept(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    file.rename(elsewhere)
    file.symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    verdicts, _ = check(tmp_path, "john@army.ml")
    assert verdicts == {"john@army.ml": "reject"}
    assert not file.is_symlink() and elsewhere.read_bytes() == before  # replaced, not written


def test_no_place_to_keep_the_index_costs_no_verdict(tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder\n")
    verdicts, stderr = check(in_the_way, "john@army.ml", "jane@army.mil")
    assert verdicts == {"john@army.ml": "reject", "jane@army.mil": "allow"}
    assert "index cache: cannot keep the index in" in stderr


def test_a_full_disk_leaves_no_partial_file_and_costs_no_verdict():
    from disk import fill, small_disk

    with small_disk("1m") as folder:
        fill(folder)
        verdicts, stderr = check(folder, "john@army.ml")
        assert verdicts == {"john@army.ml": "reject"}
        assert "No space left on device" in stderr
        assert list(folder.glob("typogate/*")) == []


def test_the_least_recently_used_indexes_and_abandoned_writes_go(tmp_path):
    folder = tmp_path / "typogate"
    folder.mkdir(mode=0o700)
    old = []
    for age in range(KEEP + 2):  # other lists' indexes, each used an hour before the next
        stale = folder / f"{age:064x}.index"
        stale.write_bytes(b"an index of other lists")
        used = time.time() - 3600 * (age + 1)
        os.utime(stale, (used, used))
        old.append(stale)
    abandoned, being_written = folder / "left.partial", folder / "now.partial"
    abandoned.write_bytes(b"half an index")
    os.utime(abandoned, (time.time() - 7200, time.time() - 7200))
    being_written.write_bytes(b"half an index")  # by another process, at this moment
    config = Config()
    built_index(config, domain_lists(config), folder)
    remaining = set(folder.glob("*.index"))
    assert len(remaining) == KEEP
    assert set(old[: KEEP - 1]) < remaining  # the most recently used of the others stay
    assert list(folder.glob("*.partial")) == [being_written]
