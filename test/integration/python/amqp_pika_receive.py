"""The tutorial's receive.py, stopped after the first message. Prints "waiting" once it consumes
(so a sender can start), then one JSON line with what it received."""
from amqp_pika_common import connect, deadline, report

deadline(10)

connection = connect()
channel = connection.channel()

channel.queue_declare(queue="hello")

received = []


def callback(ch, method, properties, body):
    received.append(body.decode())
    ch.stop_consuming()


channel.basic_consume(queue="hello", on_message_callback=callback, auto_ack=True)

print("waiting", flush=True)
channel.start_consuming()
connection.close()
report({"received": received})
