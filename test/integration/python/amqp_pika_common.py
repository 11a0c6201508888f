"""What the amqp_pika_*.py scripts share: where the node is, a deadline, and one JSON line out.

The node comes from the environment: AMQP_HOST, AMQP_PORT, AMQP_USER and AMQP_PASSWORD (a node
started with --insecure takes any user and password).
"""
import json
import logging
import os
import signal
import sys

import pika

# pika logs a channel or connection the broker closed as a warning; the scripts report those
# themselves, so stderr carries only what went wrong in the script.
logging.getLogger("pika").setLevel(logging.CRITICAL)


def deadline(seconds):
    """A script that hangs fails loudly instead of waiting for the test's timeout."""

    def expired(_signum, _frame):
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: still running after {seconds} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def parameters(**kwargs):
    return pika.ConnectionParameters(
        host=os.environ["AMQP_HOST"],
        port=int(os.environ["AMQP_PORT"]),
        credentials=pika.PlainCredentials(os.environ["AMQP_USER"], os.environ["AMQP_PASSWORD"]),
        **kwargs,
    )


def connect(**kwargs):
    return pika.BlockingConnection(parameters(**kwargs))


def confirmed_channel():
    """A new connection and a channel of it in confirm mode."""
    connection = connect()
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def queue_declarer(channel, prefix):
    """declare(name, **arguments) declares the queue PREFIX-name on `channel` and returns its name."""

    def declare(name, **kwargs):
        q = f"{prefix}-{name}"
        channel.queue_declare(queue=q, **kwargs)
        return q

    return declare


def closed_by_broker(err):
    """An exception's reply code and text, for comparing with RabbitMQ's."""
    if isinstance(err, (pika.exceptions.ChannelClosedByBroker, pika.exceptions.ConnectionClosedByBroker)):
        return {"kind": type(err).__name__, "code": err.reply_code, "text": err.reply_text}
    return {"kind": type(err).__name__, "code": None, "text": str(err)}


def expect_closed(action):
    """Runs `action`, which the broker should answer by closing the channel or the connection."""
    try:
        action()
    except pika.exceptions.AMQPError as err:
        return closed_by_broker(err)
    return {"kind": "no error", "code": None, "text": ""}


def typed(value):
    """A value with the Python type of everything in it, so a test compares types too."""
    if isinstance(value, dict):
        return ["dict", {k: typed(v) for k, v in sorted(value.items())}]
    if isinstance(value, list):
        return ["list", [typed(v) for v in value]]
    if isinstance(value, bytes):
        return ["bytes", value.hex()]
    if value is None or isinstance(value, (bool, str)):
        return [type(value).__name__, value]
    if isinstance(value, int):
        # pika decodes a 64-bit integer as pika.compat.long, its own subclass of int.
        return ["int", int(value)]
    return [type(value).__name__, str(value)]


def report(result):
    print(json.dumps(result, sort_keys=True), flush=True)
