"""Queues and exchanges: purge, conditional deletes, the four exchange types routing as RabbitMQ
routes, exchange-to-exchange bindings, server-named queues, x-message-ttl and x-max-length.
Prints one JSON line of what each case saw.

Usage: amqp_pika_topology.py PREFIX (names made from it are new to the broker)"""
import sys
import time

import pika

from amqp_pika_common import confirmed_channel, deadline, expect_closed, queue_declarer, report

deadline(60)
prefix = sys.argv[1]
result = {}
connection, channel = confirmed_channel()
queue = queue_declarer(channel, prefix)


def drain(q):
    bodies = []
    while True:
        method, _props, body = channel.basic_get(queue=q, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body.decode())


def routed(exchange, queues, publishes):
    """Publishes each (routing key, headers) to `exchange`; returns the bodies each queue got."""
    for key, headers in publishes:
        channel.basic_publish(exchange=exchange, routing_key=key, body=key if headers is None else str(sorted(headers.items())), properties=pika.BasicProperties(headers=headers))
    return {name: drain(q) for name, q in queues.items()}


q = queue("purge")
for i in range(3):
    channel.basic_publish(exchange="", routing_key=q, body=str(i))
result["purge"] = {"purged": channel.queue_purge(queue=q).method.message_count, "depth": channel.queue_declare(queue=q, passive=True).method.message_count}

# queue.delete: if-unused refused while a consumer is on it, if-empty while it holds messages.
q = queue("in-use")
consumer = connection.channel()
consumer.basic_consume(queue=q, on_message_callback=lambda *_: None)
result["delete_if_unused_in_use"] = expect_closed(lambda: connection.channel().queue_delete(queue=q, if_unused=True))
consumer.close()
result["delete_if_unused_unused"] = connection.channel().queue_delete(queue=q, if_unused=True).method.message_count
q = queue("not-empty")
channel.basic_publish(exchange="", routing_key=q, body=b"x")
result["delete_if_empty_not_empty"] = expect_closed(lambda: connection.channel().queue_delete(queue=q, if_empty=True))
result["delete_with_messages"] = connection.channel().queue_delete(queue=q).method.message_count
q = queue("empty")
result["delete_if_empty_empty"] = connection.channel().queue_delete(queue=q, if_empty=True).method.message_count

# direct
ex = f"{prefix}-direct"
channel.exchange_declare(exchange=ex, exchange_type="direct")
qs = {"a": queue("direct-a"), "b": queue("direct-b"), "a2": queue("direct-a2")}
channel.queue_bind(queue=qs["a"], exchange=ex, routing_key="a")
channel.queue_bind(queue=qs["a2"], exchange=ex, routing_key="a")
channel.queue_bind(queue=qs["b"], exchange=ex, routing_key="b")
result["direct"] = routed(ex, qs, [("a", None), ("b", None), ("c", None)])

# fanout: the routing key does not matter
ex = f"{prefix}-fanout"
channel.exchange_declare(exchange=ex, exchange_type="fanout")
qs = {"one": queue("fanout-1"), "two": queue("fanout-2")}
channel.queue_bind(queue=qs["one"], exchange=ex, routing_key="ignored")
channel.queue_bind(queue=qs["two"], exchange=ex)
result["fanout"] = routed(ex, qs, [("k1", None), ("", None)])

# topic: * is one word, # zero or more
ex = f"{prefix}-topic"
channel.exchange_declare(exchange=ex, exchange_type="topic")
patterns = {"a.*.c": "star", "a.#": "a-hash", "#": "hash", "a.b": "exact", "#.c": "hash-c", "*.*": "two-words", "a.#.c": "a-hash-c"}
qs = {}
for pattern, name in patterns.items():
    qs[pattern] = queue(f"topic-{name}")
    channel.queue_bind(queue=qs[pattern], exchange=ex, routing_key=pattern)
result["topic"] = routed(ex, qs, [(k, None) for k in ("a.b.c", "a", "a.b", "a.x.y.c", "b.b.c", "c", "a.c", "")])

# headers: x-match all and any
ex = f"{prefix}-headers"
channel.exchange_declare(exchange=ex, exchange_type="headers")
qs = {"all": queue("headers-all"), "any": queue("headers-any"), "default": queue("headers-default")}
channel.queue_bind(queue=qs["all"], exchange=ex, arguments={"x-match": "all", "format": "pdf", "type": "report"})
channel.queue_bind(queue=qs["any"], exchange=ex, arguments={"x-match": "any", "format": "pdf", "type": "report"})
# Without x-match, RabbitMQ matches all.
channel.queue_bind(queue=qs["default"], exchange=ex, arguments={"format": "pdf", "type": "report"})
result["headers"] = routed(
    ex,
    qs,
    [
        ("", {"format": "pdf", "type": "report"}),
        ("", {"format": "pdf", "type": "report", "extra": 1}),
        ("", {"format": "pdf"}),
        ("", {"format": "zip", "type": "log"}),
        ("", {}),
    ],
)

# exchange.bind: what reaches the source is routed onward by the destination.
source, destination = f"{prefix}-e2e-source", f"{prefix}-e2e-destination"
try:
    ch = connection.channel()
    ch.exchange_declare(exchange=source, exchange_type="topic")
    ch.exchange_declare(exchange=destination, exchange_type="direct")
    ch.exchange_bind(destination=destination, source=source, routing_key="orders.*")
    qs = {"k": queue("e2e")}
    channel.queue_bind(queue=qs["k"], exchange=destination, routing_key="orders.new")
    result["exchange_bind"] = routed(source, qs, [("orders.new", None), ("orders.old", None), ("other", None)])
    ch.exchange_unbind(destination=destination, source=source, routing_key="orders.*")
    result["exchange_unbind"] = routed(source, qs, [("orders.new", None)])
except pika.exceptions.AMQPError as err:
    result["exchange_bind"] = {"error": [getattr(err, "reply_code", None), getattr(err, "reply_text", str(err))]}
    channel = connection.channel()
    channel.confirm_delivery()

# A server-named queue
named = channel.queue_declare(queue="").method.queue
channel.basic_publish(exchange="", routing_key=named, body=b"to the generated name")
result["server_named"] = {"name": named, "got": drain(named)}
channel.queue_delete(queue=named)
# The usual reply queue: server-named and exclusive to this connection, which may get from it.
mine = channel.queue_declare(queue="", exclusive=True).method.queue
channel.basic_publish(exchange="", routing_key=mine, body=b"to my exclusive queue")


def get_own_exclusive():
    global channel
    try:
        return {"name": mine, "got": drain(mine)}
    except pika.exceptions.AMQPError as err:
        channel = connection.channel()
        channel.confirm_delivery()
        return {"name": mine, "error": [getattr(err, "reply_code", None), getattr(err, "reply_text", str(err))]}


result["server_named_exclusive"] = get_own_exclusive()

# x-message-ttl: a message older than the TTL is gone; so is one whose own expiration passed.
q = queue("ttl", arguments={"x-message-ttl": 300})
channel.basic_publish(exchange="", routing_key=q, body=b"short-lived")
fresh = channel.queue_declare(queue=q, passive=True).method.message_count
time.sleep(0.9)
result["message_ttl"] = {"depth_at_once": fresh, "after": drain(q)}
q = queue("expiration")
channel.basic_publish(exchange="", routing_key=q, body=b"expires", properties=pika.BasicProperties(expiration="300"))
channel.basic_publish(exchange="", routing_key=q, body=b"stays", properties=pika.BasicProperties(expiration="60000"))
time.sleep(0.9)
result["per_message_expiration"] = drain(q)

# x-max-length: the oldest messages are dropped (RabbitMQ's default overflow, drop-head).
q = queue("max-length", arguments={"x-max-length": 3})
for i in range(5):
    channel.basic_publish(exchange="", routing_key=q, body=str(i))
result["max_length"] = {"depth": channel.queue_declare(queue=q, passive=True).method.message_count, "kept": drain(q)}
connection.close()
report(result)
