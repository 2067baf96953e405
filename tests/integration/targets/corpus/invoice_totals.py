"""Totals invoices from CSV text with the standard library's csv.DictReader.

The CSV is generated once in memory; each round parses it row by row and adds up amounts
per customer and currency. CPU in the csv module and in Python, no file I/O: host bound.
"""
import csv
import io
import random
from collections import defaultdict
from decimal import Decimal

from _timing import Clock, parse_args


def make_csv(rng, rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["invoice", "customer", "currency", "amount", "note"])
    for i in range(rows):
        writer.writerow(["INV-%06d" % i, "cust-%d" % rng.randrange(800),
                         rng.choice(["EUR", "USD", "GBP"]), "%.2f" % rng.uniform(5, 5000),
                         rng.choice(["", "paid, late", 'said "urgent"', "partial"])])
    return out.getvalue()


def totals(text):
    sums = defaultdict(Decimal)
    for row in csv.DictReader(io.StringIO(text)):
        sums[row["customer"], row["currency"]] += Decimal(row["amount"])
    return sums


def main():
    args = parse_args(__doc__)
    text = make_csv(random.Random(9), 20000)
    clock = Clock()
    rounds = 0
    while clock.elapsed() < args.duration:
        with clock("host"):
            result = totals(text)
        rounds += 1
    clock.write(args.truth, expect="host", rounds=rounds, keys=len(result))


if __name__ == "__main__":
    main()
