"""A raftmq client in Python: stubs generated from proto/ at run time with grpc_tools.

Usage: publish_consume.py PROTO_ROOT ADDRESS QUEUE COUNT
Declares QUEUE, publishes COUNT messages with confirms, consumes and acks them, and prints one
JSON line with what it saw.
"""
import importlib
import json
import os
import queue
import re
import sys
import tempfile

import grpc
from grpc_tools import protoc


def copy_without_optional(proto_root, names, dest):
    """Debian's grpc_tools bundles protoc 3.5, older than proto3 `optional`. The label changes only
    field presence, not the wire format, so the copy this client compiles leaves it out."""
    os.makedirs(os.path.join(dest, "raftmq", "v1"), exist_ok=True)
    for name in names:
        with open(os.path.join(proto_root, "raftmq", "v1", name), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(dest, "raftmq", "v1", name), "w", encoding="utf-8") as f:
            f.write(re.sub(r"^(\s*)optional\s+", r"\1", text, flags=re.MULTILINE))


def generate(proto_root, out_dir):
    names = ("types.proto", "broker.proto")
    files = [os.path.join("raftmq", "v1", f) for f in names]
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = os.path.join(out_dir, "proto")
    copy_without_optional(proto_root, names, protos)
    code = protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files])
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out_dir)
    return importlib.import_module("raftmq.v1.broker_pb2"), importlib.import_module("raftmq.v1.broker_pb2_grpc")


def main():
    proto_root, address, queue_name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with tempfile.TemporaryDirectory() as out:
        pb, rpc = generate(proto_root, out)
        channel = grpc.insecure_channel(address)
        stub = rpc.BrokerStub(channel)
        stub.DeclareQueue(pb.DeclareQueueRequest(name=queue_name, durable=True), timeout=15)
        acked = 0
        for i in range(count):
            res = stub.Publish(
                pb.PublishRequest(messages=[pb.OutboundMessage(routing_key=queue_name, body=str(i).encode(), producer_id="python", sequence=i + 1)]),
                timeout=15,
            )
            if res.confirms[0].status == pb.CONFIRM_STATUS_ACK:
                acked += 1

        try:
            stub.QueueInfo(pb.QueueInfoRequest(name="no-such-queue"), timeout=15)
            not_found = "none"
        except grpc.RpcError as err:
            not_found = err.code().name

        outgoing = queue.Queue()
        outgoing.put(pb.ConsumeRequest(subscribe=pb.Subscription(queue=queue_name, prefetch=50, consumer_tag="py")))

        def requests():
            while True:
                item = outgoing.get()
                if item is None:
                    return
                yield item

        received = []
        session = ""
        stream = stub.Consume(requests(), timeout=30)
        for response in stream:
            kind = response.WhichOneof("kind")
            if kind == "session":
                session = response.session.session_id
            elif kind == "delivery":
                received.append(int(response.delivery.body.decode()))
                outgoing.put(pb.ConsumeRequest(ack=pb.Settlement(consumer_tag="py", delivery_tag=response.delivery.delivery_tag)))
                if len(received) == count:
                    break
            elif kind == "error":
                raise SystemExit(f"consume error: {response.error.message}")
        outgoing.put(None)
        stream.cancel()
        print(json.dumps({"confirmed": acked, "received": received, "session": session, "not_found": not_found}))


if __name__ == "__main__":
    main()
