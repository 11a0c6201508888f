"""Errors a broker answers by closing the channel or the connection, each on a fresh one. Prints
each case's exception class, reply code and reply text.

Usage: amqp_pika_errors.py PREFIX (names made from it are new to the broker)"""
import sys

from amqp_pika_common import connect, deadline, expect_closed, report

deadline(60)
prefix = sys.argv[1]
result = {}

connection = connect()
result["passive_missing_queue"] = expect_closed(lambda: connection.channel().queue_declare(queue=f"{prefix}-missing", passive=True))

# Exclusive to `connection`: another connection may neither declare nor consume it.
exclusive = f"{prefix}-exclusive"
connection.channel().queue_declare(queue=exclusive, exclusive=True)
other = connect()
result["exclusive_declare"] = expect_closed(lambda: other.channel().queue_declare(queue=exclusive, exclusive=True))
result["exclusive_passive"] = expect_closed(lambda: other.channel().queue_declare(queue=exclusive, passive=True))


def consume_exclusive():
    ch = other.channel()
    ch.basic_consume(queue=exclusive, on_message_callback=lambda *_: None)


result["exclusive_consume"] = expect_closed(consume_exclusive)
other.close()


def ack_unknown():
    ch = connection.channel()
    ch.basic_ack(delivery_tag=42)
    # basic.ack has no answer: a synchronous method after it meets the channel's close.
    ch.basic_qos(prefetch_count=1)


result["ack_unknown_tag"] = expect_closed(ack_unknown)

durable = f"{prefix}-durable"
connection.channel().queue_declare(queue=durable, durable=False)
result["inequivalent_durable"] = expect_closed(lambda: connection.channel().queue_declare(queue=durable, durable=True))
# The queue is as it was: a declare equal to the first still succeeds.
result["equivalent_redeclare"] = connection.channel().queue_declare(queue=durable, durable=False).method.queue
result["connection_open_after_channel_errors"] = connection.is_open
connection.close()

connection = connect()
result["tx_select"] = expect_closed(lambda: connection.channel().tx_select())
result["tx_select_connection_closed"] = connection.is_closed

connection = connect()
result["qos_prefetch_size"] = expect_closed(lambda: connection.channel().basic_qos(prefetch_size=1, prefetch_count=10))
result["qos_connection_closed"] = connection.is_closed
report(result)
