"""Builds a sales report from an in-memory SQLite database: per-region totals, top
customers, monthly trends, over 100,000 generated orders.

The time goes to SQLite executing the queries, CPU in libsqlite3 inside the process (no
I/O: the database is in memory): host bound.
"""
import random
import sqlite3

from _timing import Clock, parse_args

QUERIES = [
    "SELECT region, COUNT(*), SUM(amount), AVG(amount) FROM orders GROUP BY region",
    "SELECT c.name, SUM(o.amount) AS total FROM orders o JOIN customers c ON c.id = o.customer"
    " GROUP BY c.id ORDER BY total DESC LIMIT 20",
    "SELECT substr(day, 1, 7) AS month, region, SUM(amount) FROM orders"
    " GROUP BY month, region ORDER BY month",
    "SELECT product, COUNT(DISTINCT customer) FROM orders WHERE amount > 50 GROUP BY product",
]


def load(db, rng):
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, region TEXT)")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, product TEXT,"
               " region TEXT, day TEXT, amount REAL)")
    regions = ["north", "south", "east", "west", "central"]
    db.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                   [(i, "customer-%d" % i, rng.choice(regions)) for i in range(5000)])
    db.executemany("INSERT INTO orders VALUES (NULL, ?, ?, ?, ?, ?)",
                   [(rng.randrange(5000), "p%d" % rng.randrange(300), rng.choice(regions),
                     "2024-%02d-%02d" % (rng.randrange(1, 13), rng.randrange(1, 29)),
                     round(rng.uniform(1, 200), 2)) for _ in range(100000)])
    db.commit()


def main():
    args = parse_args(__doc__)
    db = sqlite3.connect(":memory:")
    load(db, random.Random(4))
    clock = Clock()
    reports = rows = 0
    while clock.elapsed() < args.duration:
        with clock("host"):
            for query in QUERIES:
                rows += len(db.execute(query).fetchall())
        reports += 1
    db.close()
    clock.write(args.truth, expect="host", reports=reports, rows=rows)


if __name__ == "__main__":
    main()
