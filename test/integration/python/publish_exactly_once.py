"""A raftmq publisher in Python that follows docs/client-guide.md only: one producer id, increasing
sequences, a resend marked retry unless the failed attempt's outcome was not_applied or refused,
and the outcome read from the standard google.rpc.Status details of each error.

Usage: publish_exactly_once.py PROTO_ROOT GOOGLE_PROTO_ROOT ADDRESSES QUEUE COUNT PRODUCER_ID
ADDRESSES is a comma-separated list of the nodes' client addresses. Declares QUEUE, publishes
COUNT messages (bodies "0" .. COUNT-1, one per call), prints "progress N" after each confirm, and
at the end one JSON line: the sequences confirmed, those answered OUTCOME_UNKNOWN, how many
answers were duplicates, how many attempts were resent marked retry, and the outcomes met.
"""
import importlib
import json
import os
import re
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc


def copy_without_optional(root, names, dest):
    """Debian's grpc_tools bundles protoc 3.5, older than proto3 `optional`. The label changes only
    field presence, not the wire format, so the copy this client compiles leaves it out."""
    for name in names:
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        with open(os.path.join(root, name), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(dest, name), "w", encoding="utf-8") as f:
            f.write(re.sub(r"^(\s*)optional\s+", r"\1", text, flags=re.MULTILINE))


def generate(proto_root, google_root, out_dir):
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = os.path.join(out_dir, "proto")
    files = ["raftmq/v1/types.proto", "raftmq/v1/broker.proto"]
    copy_without_optional(proto_root, files, protos)
    code = protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files])
    if code != 0:
        raise SystemExit(f"protoc failed with {code} for raftmq")
    google_protos = os.path.join(out_dir, "google-proto")
    rpc_files = ["google/rpc/status.proto", "google/rpc/error_details.proto"]
    copy_without_optional(google_root, rpc_files, google_protos)
    code = protoc.main(["protoc", f"-I{google_protos}", f"-I{include}", f"--python_out={out_dir}", *rpc_files])
    if code != 0:
        raise SystemExit(f"protoc failed with {code} for google.rpc")
    sys.path.insert(0, out_dir)
    # google is the installed protobuf's package: google.rpc is found beside it in out_dir.
    import google

    google.__path__.append(os.path.join(out_dir, "google"))
    return (
        importlib.import_module("raftmq.v1.broker_pb2"),
        importlib.import_module("raftmq.v1.broker_pb2_grpc"),
        importlib.import_module("google.rpc.status_pb2"),
        importlib.import_module("google.rpc.error_details_pb2"),
    )


def error_info(err, status_pb2, details_pb2):
    """(outcome, leader) from the error's google.rpc.Status; ("unknown", "") when it has none."""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain == "raftmq.io":
                return info.metadata.get("outcome", "unknown"), info.metadata.get("leader", "")
    return "unknown", ""


def main():
    proto_root, google_root, addresses, queue_name, count, producer = sys.argv[1:7]
    addresses = addresses.split(",")
    count = int(count)
    with tempfile.TemporaryDirectory() as out:
        pb, rpc, status_pb2, details_pb2 = generate(proto_root, google_root, out)
        stubs = {a: rpc.BrokerStub(grpc.insecure_channel(a)) for a in addresses}
        current = addresses[0]
        stubs[current].DeclareQueue(pb.DeclareQueueRequest(name=queue_name, durable=True), timeout=15)
        confirmed, unknown, outcomes = [], [], {}
        duplicates = retries = 0
        for i in range(count):
            message = pb.OutboundMessage(routing_key=queue_name, body=str(i).encode(), producer_id=producer, sequence=i + 1)
            deadline = time.monotonic() + 60
            while True:
                if time.monotonic() > deadline:
                    raise SystemExit(f"message {i} not confirmed within 60 s")
                try:
                    res = stubs[current].Publish(pb.PublishRequest(messages=[message]), timeout=2)
                except grpc.RpcError as err:
                    outcome, leader = error_info(err, status_pb2, details_pb2)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    if outcome == "refused":
                        raise SystemExit(f"message {i} refused: {err.code().name} {err.details()}")
                    if outcome != "not_applied":
                        message.retry = True
                        retries += 1
                    current = leader if leader in stubs else addresses[(addresses.index(current) + 1) % len(addresses)]
                    time.sleep(0.05)
                    continue
                c = res.confirms[0]
                if c.status == pb.CONFIRM_STATUS_ACK:
                    confirmed.append(i)
                    duplicates += 1 if c.duplicate else 0
                elif c.status == pb.CONFIRM_STATUS_OUTCOME_UNKNOWN:
                    unknown.append(i)
                else:
                    raise SystemExit(f"message {i} nacked: {c.reason}")
                break
            print(f"progress {i + 1}", flush=True)
        print(json.dumps({"confirmed": confirmed, "unknown": unknown, "duplicates": duplicates, "retries": retries, "outcomes": outcomes}), flush=True)


if __name__ == "__main__":
    main()
