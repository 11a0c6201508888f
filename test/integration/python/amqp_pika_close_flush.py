"""Publishes without confirms, then closes at once: RabbitMQ routes every publish that came before
a channel.close or connection.close. Prints how many of COUNT reached the queue each way.

Usage: amqp_pika_close_flush.py PREFIX COUNT"""
import sys
import time

from amqp_pika_common import connect, deadline, report

deadline(30)
prefix, count = sys.argv[1], int(sys.argv[2])
result = {}
observer = connect()
observing = observer.channel()


def arrived(q):
    """The queue's depth once it stopped growing (or reached COUNT)."""
    depth, since = -1, time.monotonic()
    while time.monotonic() - since < 1.5:
        now = observing.queue_declare(queue=q, passive=True).method.message_count
        if now != depth:
            depth, since = now, time.monotonic()
        if depth >= count:
            break
        observer.sleep(0.1)
    return depth


q = f"{prefix}-connection-close"
observing.queue_declare(queue=q)
connection = connect()
channel = connection.channel()
for i in range(count):
    channel.basic_publish(exchange="", routing_key=q, body=str(i))
connection.close()
result["before_connection_close"] = arrived(q)

q = f"{prefix}-channel-close"
observing.queue_declare(queue=q)
channel = observer.channel()
for i in range(count):
    channel.basic_publish(exchange="", routing_key=q, body=str(i))
channel.close()
result["before_channel_close"] = arrived(q)
observer.close()
report(result)
