"""Publisher confirms: COUNT messages each confirmed, a mandatory publish nobody can route
returned (pika raises UnroutableError), and a publish to a missing exchange closing the channel.

Usage: amqp_pika_confirms.py QUEUE COUNT"""
import sys
import time

import pika

from amqp_pika_common import closed_by_broker, confirmed_channel, deadline, report

deadline(60)
queue, count = sys.argv[1], int(sys.argv[2])
result = {}

connection, channel = confirmed_channel()
channel.queue_declare(queue=queue)
started = time.monotonic()
confirmed = 0
for i in range(count):
    # With confirms on, basic_publish returns once the broker acked the message, and raises otherwise.
    channel.basic_publish(exchange="", routing_key=queue, body=str(i))
    confirmed += 1
result["confirmed"] = confirmed
result["seconds"] = round(time.monotonic() - started, 3)
result["message_count"] = channel.queue_declare(queue=queue, passive=True).method.message_count

try:
    channel.basic_publish(exchange="", routing_key=f"{queue}-nobody-binds-this", body="lost", mandatory=True)
    result["unroutable"] = "no error"
except pika.exceptions.UnroutableError as err:
    result["unroutable"] = {"kind": "UnroutableError", "returned": [m.body.decode() for m in err.messages], "reply": [[m.method.reply_code, m.method.reply_text] for m in err.messages]}
# The channel stays open after a return.
channel.basic_publish(exchange="", routing_key=queue, body="after-return")
result["after_return"] = channel.queue_declare(queue=queue, passive=True).method.message_count

try:
    channel.basic_publish(exchange="no-such-exchange", routing_key=queue, body="x")
    result["missing_exchange"] = {"kind": "no error"}
except pika.exceptions.AMQPError as err:
    result["missing_exchange"] = closed_by_broker(err)
result["channel_closed"] = channel.is_closed
# Only the channel closed: the connection takes another.
result["connection_open"] = connection.is_open and connection.channel().queue_declare(queue=queue, passive=True).method.message_count == count + 1
connection.close()
report(result)
