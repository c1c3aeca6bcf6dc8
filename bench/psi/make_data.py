"""Writes the benchmark's two CSV files for N rows per side, half of them shared.

A.csv (server): email. B.csv (client): email,spend (integers 0..999). Rows are shuffled with a
fixed seed, so every run measures the same data.
"""
import random
import sys

n = int(sys.argv[1])
out = sys.argv[2]
rng = random.Random(20261206 + n)
a = [f"customer-{i}@example.org" for i in range(n)]
b = [f"customer-{i}@example.org" for i in range(n // 2, n // 2 + n)]
rng.shuffle(a)
rng.shuffle(b)
with open(f"{out}/A.csv", "w") as f:
    f.write("email\n")
    f.writelines(x + "\n" for x in a)
with open(f"{out}/B.csv", "w") as f:
    f.write("email,spend\n")
    f.writelines(f"{x},{rng.randrange(1000)}\n" for x in b)
