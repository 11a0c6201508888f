"""The tutorial's send.py: publishes "Hello World!" to the queue "hello" and exits."""
from amqp_pika_common import connect, deadline, report

deadline(10)

connection = connect()
channel = connection.channel()

channel.queue_declare(queue="hello")

channel.basic_publish(exchange="", routing_key="hello", body="Hello World!")
connection.close()
report({"sent": "Hello World!"})
