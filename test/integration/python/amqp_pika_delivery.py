"""Getting, settling and flow: basic.get, nack and reject with and without requeue, dead
lettering with x-death, basic.recover, prefetch, basic.cancel and a cancel the broker sends when
another connection deletes the queue. Prints one JSON line of what each case saw.

Usage: amqp_pika_delivery.py PREFIX (names made from it are new to the broker)"""
import calendar
import datetime
import sys
import time

import pika

from amqp_pika_common import confirmed_channel, connect, deadline, queue_declarer, report, typed

deadline(60)
prefix = sys.argv[1]
result = {}
connection, channel = confirmed_channel()
fresh_queue = queue_declarer(channel, prefix)


def publish(q, *bodies, **kwargs):
    for b in bodies:
        channel.basic_publish(exchange="", routing_key=q, body=b, **kwargs)


def depth(q):
    return channel.queue_declare(queue=q, passive=True).method.message_count


def pump(until, seconds=5.0):
    """Runs pika's I/O until `until()` holds or `seconds` passed."""
    end = time.monotonic() + seconds
    while not until() and time.monotonic() < end:
        connection.process_data_events(time_limit=0.05)
    return until()


# basic.get: get-ok carries how many messages remain; an empty queue answers get-empty.
q = fresh_queue("get")
publish(q, b"g1", b"g2", b"g3")
got = []
for _ in range(4):
    method, _props, body = channel.basic_get(queue=q, auto_ack=True)
    got.append(None if method is None else {"body": body.decode(), "message_count": method.message_count, "redelivered": method.redelivered})
result["get"] = got

# A got message not acked is the channel's to settle: nacked with requeue it is back, marked redelivered.
q = fresh_queue("get-nack")
publish(q, b"n1")
method, _props, _body = channel.basic_get(queue=q, auto_ack=False)
channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
method, _props, body = channel.basic_get(queue=q, auto_ack=True)
result["get_nack_requeue"] = None if method is None else {"body": body.decode(), "redelivered": method.redelivered}
# Neither acked nor nacked, it is requeued when its channel closes.
q = fresh_queue("get-close")
publish(q, b"c1")
other = connection.channel()
method, _props, _body = other.basic_get(queue=q, auto_ack=False)
other.close()
result["get_unacked_then_close"] = {"got": method is not None, "depth_after_close": depth(q)}


def consume_one_by_one(q, settle):
    """Consumes q with manual acks; `settle(ch, method, index)` decides what each delivery gets.
    Returns the deliveries seen once the queue is drained."""
    seen = []

    def on_message(ch, method, _props, body):
        seen.append({"body": body.decode(), "redelivered": method.redelivered})
        settle(ch, method, len(seen) - 1)

    tag = channel.basic_consume(queue=q, on_message_callback=on_message)
    pump(lambda: len(seen) >= 2)
    channel.basic_cancel(tag)
    return seen


q = fresh_queue("nack")
publish(q, b"x")
result["nack_requeue"] = consume_one_by_one(q, lambda ch, m, i: ch.basic_nack(m.delivery_tag, requeue=True) if i == 0 else ch.basic_ack(m.delivery_tag))
q = fresh_queue("reject")
publish(q, b"y")
result["reject_requeue"] = consume_one_by_one(q, lambda ch, m, i: ch.basic_reject(m.delivery_tag, requeue=True) if i == 0 else ch.basic_ack(m.delivery_tag))

# requeue=False with a dead-letter exchange: the message moves there with an x-death header.
dlx = f"{prefix}-dlx"
channel.exchange_declare(exchange=dlx, exchange_type="fanout")
dlq = fresh_queue("dead")
channel.queue_bind(queue=dlq, exchange=dlx)
dead = {}
for how in ("nack", "reject"):
    src = fresh_queue(f"dl-{how}", arguments={"x-dead-letter-exchange": dlx})
    publish(src, how.encode(), properties=pika.BasicProperties(headers={"mine": "kept"}))
    seen = []

    def on_message(ch, method, _props, body, how=how):
        seen.append(body.decode())
        if how == "nack":
            ch.basic_nack(method.delivery_tag, requeue=False)
        else:
            ch.basic_reject(method.delivery_tag, requeue=False)

    tag = channel.basic_consume(queue=src, on_message_callback=on_message)
    pump(lambda: seen and depth(dlq) > 0)
    channel.basic_cancel(tag)
    method, props, body = channel.basic_get(queue=dlq, auto_ack=True)
    headers = dict(props.headers or {}) if method is not None else {}
    deaths = headers.pop("x-death", [])
    death = dict(deaths[0]) if deaths else {}
    when = death.pop("time", None)
    dead[how] = {
        "body": None if body is None else body.decode(),
        "source_depth": depth(src),
        "x_death": typed(death),
        "x_death_entries": len(deaths),
        # pika decodes an AMQP timestamp as a naive datetime in UTC.
        "x_death_time_is_recent": isinstance(when, datetime.datetime) and abs(calendar.timegm(when.utctimetuple()) - time.time()) < 120,
        "other_headers": typed(headers),
    }
result["dead_letter"] = dead

# basic.recover(requeue=True): what the channel holds unacked is delivered again, redelivered.
q = fresh_queue("recover")
publish(q, b"r1", b"r2")
seen = []
tag = channel.basic_consume(queue=q, on_message_callback=lambda ch, m, p, b: seen.append({"body": b.decode(), "redelivered": m.redelivered, "tag": m.delivery_tag}))
pump(lambda: len(seen) >= 2)
channel.basic_recover(requeue=True)
pump(lambda: len(seen) >= 4)
for s in seen[2:]:
    channel.basic_ack(s["tag"])
channel.basic_cancel(tag)
result["recover"] = [{k: v for k, v in s.items() if k != "tag"} for s in seen]
result["recover_depth_after"] = depth(q)

# Prefetch 5: never more than five unacked deliveries at the consumer.
q = fresh_queue("prefetch")
publish(q, *[str(i).encode() for i in range(20)])
pch = connection.channel()
pch.basic_qos(prefetch_count=5)
held = []
pch.basic_consume(queue=q, on_message_callback=lambda ch, m, p, b: held.append(m.delivery_tag))
pump(lambda: len(held) > 5, seconds=1.5)
prefetch = {"unacked_at_first": len(held)}
pch.basic_ack(held[0])
pump(lambda: len(held) > 6, seconds=1.5)
prefetch["after_one_ack"] = len(held)
most = 0
while len(held) < 20:
    before = len(held)
    pch.basic_ack(held[-1], multiple=True)
    if not pump(lambda before=before: len(held) > before, seconds=2):
        break
    pump(lambda: False, seconds=0.2)
    most = max(most, len(held) - before)
pch.basic_ack(held[-1], multiple=True)
prefetch["most_after_a_multiple_ack"] = most
prefetch["total"] = len(held)
result["prefetch"] = prefetch
pch.close()

# basic.cancel: once cancel-ok is in, nothing more arrives; new messages stay in the queue.
q = fresh_queue("cancel")
seen = []
tag = channel.basic_consume(queue=q, on_message_callback=lambda ch, m, p, b: (seen.append(b.decode()), ch.basic_ack(m.delivery_tag)))
publish(q, b"before")
pump(lambda: len(seen) >= 1)
cancelled = channel.basic_cancel(tag)
publish(q, b"after")
pump(lambda: len(seen) >= 2, seconds=1)
result["cancel"] = {"seen": seen, "depth": depth(q), "returned": cancelled}

# The broker cancels a consumer whose queue another connection deletes (consumer_cancel_notify).
q = fresh_queue("server-cancel")
cancels = []
cch = connection.channel()
cch.add_on_cancel_callback(lambda frame: cancels.append(frame.method.consumer_tag))
ctag = cch.basic_consume(queue=q, on_message_callback=lambda *_: None)
deleter = connect()
deleter.channel().queue_delete(queue=q)
deleter.close()
pump(lambda: len(cancels) > 0)
result["server_cancel"] = {"cancelled": cancels, "expected": ctag, "channel_open": cch.is_open}
connection.close()
report(result)
