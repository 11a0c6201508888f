"""RabbitMQ's first tutorial, "Hello World!", as written: send.py, then receive.py stopped after
the first message, in one process. Prints one JSON line with what it received."""
from amqp_pika_common import connect, deadline, report

deadline(10)

# send.py
connection = connect()
channel = connection.channel()

channel.queue_declare(queue="hello")

channel.basic_publish(exchange="", routing_key="hello", body="Hello World!")
connection.close()

# receive.py
connection = connect()
channel = connection.channel()

channel.queue_declare(queue="hello")

received = []


def callback(ch, method, properties, body):
    received.append({"body": body.decode(), "routing_key": method.routing_key, "exchange": method.exchange, "redelivered": method.redelivered})
    ch.stop_consuming()


channel.basic_consume(queue="hello", on_message_callback=callback, auto_ack=True)

channel.start_consuming()
connection.close()
report({"received": received})
