"""One process per run: python py_peer.py PEER JOB.json -> one JSON line per case.

dnstwist: a case is flagged when it is among dnstwist's permutations of a protected domain
(the suggestion is the domain that generated it). symspellpy: max edit distance 2 over the
protected list, the whole domain as the term; flagged when the closest term is another one.
"""

import json
import sys


def dnstwist_judge(domains):
    import dnstwist

    origin = {}
    for domain in domains:
        try:
            fuzzer = dnstwist.Fuzzer(domain)
            fuzzer.generate()
        except Exception:  # a domain dnstwist cannot parse: no permutations
            continue
        for permutation in fuzzer.domains:
            name = permutation["domain"]
            if name != domain:
                origin.setdefault(name, domain)
    return lambda case: origin.get(case)


def symspell_judge(domains):
    from symspellpy import SymSpell, Verbosity

    speller = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    for domain in domains:
        speller.create_dictionary_entry(domain, 1)

    def judge(case):
        found = speller.lookup(case, Verbosity.CLOSEST, max_edit_distance=2)
        if found and found[0].distance > 0:
            return found[0].term
        return None

    return judge


def main():
    peer, job_path = sys.argv[1:3]
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    judge = {"dnstwist": dnstwist_judge, "symspellpy": symspell_judge}[peer](job["domains"])
    lines = []
    for case in job["cases"]:
        suggestion = judge(case)
        lines.append(
            json.dumps(
                {"domain": case, "flagged": suggestion is not None, "suggestion": suggestion}
            )
        )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
