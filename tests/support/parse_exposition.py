"""Parses an exposition read from stdin with the Prometheus project's own
Python client (prometheus_client), an independent and strict parser.

usage: parse_exposition.py openmetrics|classic

Prints one line per family and per sample, tab-separated:
    family  <name>  <type>
    sample  <name>  <labels k=v,... sorted>  <value>  <labels as JSON>  [<exemplar trace_id>  <exemplar value>  <exemplar timestamp>]
and exits 1 with the parser's complaint on stderr if the text does not parse.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic


def clean(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def main():
    parse = {"openmetrics": parse_openmetrics, "classic": parse_classic}[sys.argv[1]]
    text = sys.stdin.buffer.read().decode("utf-8")
    out = []
    try:
        for family in parse(text):
            out.append("\t".join(["family", family.name, family.type]))
            for sample in family.samples:
                labels = ",".join(f"{k}={clean(v)}" for k, v in sorted(sample.labels.items()))
                fields = ["sample", sample.name, labels, repr(float(sample.value)), json.dumps(sample.labels, sort_keys=True)]
                if sample.exemplar is not None:
                    exemplar = sample.exemplar
                    timestamp = exemplar.timestamp
                    if timestamp is not None and hasattr(timestamp, "sec"):
                        timestamp = f"{timestamp.sec}.{timestamp.nsec:09d}"
                    fields += [clean(exemplar.labels.get("trace_id", "")), repr(float(exemplar.value)),
                               str(timestamp)]
                out.append("\t".join(fields))
    except Exception as error:  # the parser raises ValueError and friends
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
