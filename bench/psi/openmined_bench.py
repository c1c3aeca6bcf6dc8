"""OpenMined PSI 2.0.6 in cardinality mode, both parties in one process (as `privet pjc local`).

Reads the identifier column of A.csv (server) and B.csv (client), runs server setup (a
Golomb-compressed set at false-positive rate 1e-9, OpenMined's recommended structure), client
request, server response and client size, and prints one JSON line: seconds of the protocol
(excluding CSV reading), the serialized bytes of each message, and the size found.
"""
import csv
import json
import sys
import time

import private_set_intersection.python as psi


def column(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        return [row[0] for row in r]


a = column(sys.argv[1])
b = column(sys.argv[2])
t0 = time.perf_counter()
server = psi.server.CreateWithNewKey(False)  # reveal_intersection=False: cardinality only
client = psi.client.CreateWithNewKey(False)
setup = server.CreateSetupMessage(1e-9, len(b), a, psi.DataStructure.GCS)
request = client.CreateRequest(b)
response = server.ProcessRequest(request)
size = client.GetIntersectionSize(setup, response)
seconds = time.perf_counter() - t0
print(json.dumps({
    "intersection_size": size,
    "seconds_protocol": seconds,
    "bytes_setup": len(setup.SerializeToString()),
    "bytes_request": len(request.SerializeToString()),
    "bytes_response": len(response.SerializeToString()),
}))
