"""Connection tuning: heartbeat=2 with the client idle for IDLE seconds (pika answers the node's
heartbeats while it sleeps), then the connection still works; frame_max=4096 and a 1 MiB body
sent and received in 4 KiB frames. Prints one JSON line.

Usage: amqp_pika_tuning.py QUEUE IDLE_SECONDS"""
import hashlib
import os
import sys
import time

from amqp_pika_common import connect, deadline, report

deadline(60)
queue, idle = sys.argv[1], float(sys.argv[2])
result = {}

connection = connect(heartbeat=2)
channel = connection.channel()
channel.queue_declare(queue=queue)
result["heartbeat"] = connection._impl.params.heartbeat
started = time.monotonic()
# connection.sleep keeps pika's I/O running (heartbeats in and out) without any AMQP traffic.
connection.sleep(idle / 2)
end = started + idle
while time.monotonic() < end:
    connection.process_data_events(time_limit=min(0.5, end - time.monotonic()))
result["idled_seconds"] = round(time.monotonic() - started, 1)
result["open_after_idle"] = connection.is_open
# Both sides beat while idle: the node's heartbeats are what keeps pika from closing.
checker = connection._impl._heartbeat_checker
result["heartbeats"] = {"received": checker._heartbeat_frames_received, "sent": checker._heartbeat_frames_sent}
channel.confirm_delivery()
channel.basic_publish(exchange="", routing_key=queue, body=b"still here")
method, _props, body = channel.basic_get(queue=queue, auto_ack=True)
result["works_after_idle"] = None if method is None else body.decode()
connection.close()

connection = connect(frame_max=4096)
result["frame_max"] = connection._impl.params.frame_max
channel = connection.channel()
channel.confirm_delivery()
body = os.urandom(1 << 20)
channel.basic_publish(exchange="", routing_key=queue, body=body)
received = []


def on_message(ch, method, _props, b):
    received.append(b)
    ch.basic_ack(method.delivery_tag)
    ch.stop_consuming()


channel.basic_consume(queue=queue, on_message_callback=on_message)
channel.start_consuming()
got = received[0] if received else b""
result["large_body"] = {"sent_bytes": len(body), "received_bytes": len(got), "intact": hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()}
connection.close()
report(result)
