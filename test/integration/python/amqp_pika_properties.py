"""Every basic property, and a header of every type pika encodes, sent and received back (pika
1.2.0 encodes no float: it raises UnsupportedAMQPFieldException for one).
Prints what was sent and what a consumer received, each value with its Python type.

Usage: amqp_pika_properties.py QUEUE [big-int]
With big-int, one header is an integer above 2^53 (exact in AMQP's 64-bit 'l', not in a double)."""
import datetime
import decimal
import os
import sys

import pika

from amqp_pika_common import closed_by_broker, connect, deadline, report, typed

deadline(30)
queue = sys.argv[1]
big_int = sys.argv[2:] == ["big-int"]

headers = {
    "str": "text with ünïcode",
    "bytes": b"\x00\x01\xfe\xff",
    "int": 42,
    "negative": -7,
    "int_above_2_31": 2**31 + 5,
    "true": True,
    "false": False,
    "decimal": decimal.Decimal("12.345"),
    # AMQP timestamps are whole seconds; pika decodes them as naive UTC datetimes.
    "datetime": datetime.datetime(2024, 2, 29, 13, 14, 15),
    "nested": {"inner": {"deep": 1, "s": "x"}, "list": [1, "two"]},
    "list": [1, "two", decimal.Decimal("-0.5"), True, None, {"k": "v"}, [b"\x01"], datetime.datetime(1999, 12, 31, 23, 59, 59)],
    "none": None,
}
if big_int:
    # pika encodes any int beyond 32 bits as a signed 64-bit 'l' but decodes 'l' as unsigned, so
    # only non-negative ones come back as sent (from RabbitMQ too).
    headers["int_above_2_53"] = 2**62 + 1
properties = pika.BasicProperties(
    content_type="application/json",
    content_encoding="gzip",
    headers=headers,
    delivery_mode=2,
    priority=7,
    correlation_id="corr-1",
    reply_to="replies",
    expiration="60000",
    message_id="msg-1",
    timestamp=1700000000,
    type="order.created",
    # RabbitMQ takes a user_id only when it names the connection's user.
    user_id=os.environ["AMQP_USER"],
    app_id="pika-test",
)
FIELDS = ("content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id")


def described(p):
    return {f: typed(getattr(p, f)) for f in FIELDS}


connection = connect()
channel = connection.channel()
channel.confirm_delivery()
channel.queue_declare(queue=queue)
channel.basic_publish(exchange="", routing_key=queue, body=b"payload", properties=properties)

received = []


def on_message(ch, method, props, body):
    received.append({"properties": described(props), "body": body.decode()})
    ch.basic_ack(method.delivery_tag)
    ch.stop_consuming()


channel.basic_consume(queue=queue, on_message_callback=on_message)
channel.start_consuming()

# A user_id naming someone else: RabbitMQ closes the channel with 406 PRECONDITION_FAILED.
try:
    channel.basic_publish(exchange="", routing_key=queue, body=b"foreign", properties=pika.BasicProperties(user_id="someone-else"))
    got = None
    for _ in range(50):
        method, props, _body = channel.basic_get(queue=queue, auto_ack=True)
        if method is not None:
            got = props.user_id
            break
        connection.sleep(0.1)
    foreign = {"kind": "delivered", "user_id": got}
except pika.exceptions.AMQPError as err:
    foreign = closed_by_broker(err)
connection.close()
report({"sent": described(properties), "received": received, "foreign_user_id": foreign})
